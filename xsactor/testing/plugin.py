"""pytest plugin for xsactor users: a xenstored per test, clients, domains, agents.

Loaded through the ``pytest11`` entry point ``xsactor`` when the package is installed. A test
suite that cannot rely on that (a source checkout) imports the fixtures into its conftest
instead of listing this module in ``pytest_plugins`` (which would register it twice)::

    from xsactor.testing.plugin import *  # noqa: F403

Fixtures for agent authors (see :class:`~xsactor.testing.sandbox.Sandbox`):

- ``xs``: a :class:`Sandbox` around a fresh daemon for the test: ``xs.dom0()``,
  ``xs.guest(5)`` (high-level :class:`~xsactor.Client` s), ``xs.create_domain(n)``,
  ``xs.shutdown(n)``, ``xs.crash(n)``, ``xs.destroy(n)``, ``xs.use_default()``, and
  ``xs.start(agent)`` to run an agent that is stopped after the test and checked for leftover
  greenlets and watches.
- ``xs_dom0``: ``xs.dom0()``; ``xs_default``: ``xs.use_default()`` (``xsactor.read`` ...
  talk to the test's daemon as dom0).

The daemon is in-process unless the test says otherwise: ``@pytest.mark.xsactor_daemons(
"inprocess", "reference")`` runs it once per kind, as do ``--xsactor-daemons=...`` and the ini
option ``xsactor_daemons``. Kinds: ``inprocess``, ``embedded`` (a subprocess), ``reference``
(Xen 4.17's C xenstored; skipped when it cannot be had, failed under
``XSACTOR_REQUIRE_REFERENCE=1``).

After every test the default connection is closed, so no test talks to another's daemon.

Lower level, for daemon tests: ``xenstored`` (the embedded daemon in a subprocess, a
:class:`~xsactor.testing.daemons.DaemonUnderTest` with wire-level clients) and
``xenstored_reference`` (the same over the C daemon); and ``xenbus_device``, a fake Linux
``/dev/xen/xenbus`` of guest :data:`XENBUS_GUEST` on the ``xenstored`` fixture's daemon
(:class:`~xsactor.testing.xenbus_device.XenbusKernel`:
``Client(connector=xenbus_device.transport)``); the test fails if the kernel's rules were
broken (``violations``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .daemons import DaemonUnderTest, running
from .sandbox import DAEMON_KINDS, Sandbox
from .xenbus_device import XenbusKernel

__all__ = ["xenbus_device", "xenstored", "xenstored_reference", "xs", "xs_daemon_kind",
           "xs_default", "xs_dom0", "xsactor_default_connection"]

XENBUS_GUEST = 5
"""The guest domain the ``xenbus_device`` fixture's kernel runs in."""

REFERENCE_MARKER = "reference: needs the reference C xenstored 4.17 (Debian packages)"
MARKERS = {
    "reference": REFERENCE_MARKER,
    "xsactor_daemons": "xsactor_daemons(*kinds): run the test's xs fixture once per daemon "
                       "kind (inprocess, embedded, reference)",
}


def register_markers(config: pytest.Config) -> None:
    """Declare the plugin's markers unless the project's ini already does."""
    declared = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for name, line in MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", line)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xsactor")
    group.addoption("--xsactor-daemons", default=None, metavar="KIND[,KIND]",
                    help=f"daemon kinds the xs fixture runs each test against {DAEMON_KINDS}")
    parser.addini("xsactor_daemons", "daemon kinds the xs fixture runs each test against",
                  type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)


def _kinds(metafunc: pytest.Metafunc) -> list[str]:
    marker = metafunc.definition.get_closest_marker("xsactor_daemons")
    if marker is not None:
        return list(marker.args)
    option = metafunc.config.getoption("--xsactor-daemons", None)
    if option:
        return [kind.strip() for kind in option.split(",") if kind.strip()]
    return list(metafunc.config.getini("xsactor_daemons"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xs_daemon_kind" not in metafunc.fixturenames:
        return
    kinds = _kinds(metafunc)
    for kind in kinds:
        if kind not in DAEMON_KINDS:
            raise pytest.UsageError(f"xsactor daemon kind {kind!r} is not one of {DAEMON_KINDS}")
    if kinds:
        metafunc.parametrize("xs_daemon_kind", [
            pytest.param(kind, marks=pytest.mark.reference) if kind == "reference" else kind
            for kind in kinds], indirect=True)


@pytest.fixture
def xs_daemon_kind(request: pytest.FixtureRequest) -> str:
    """The kind of daemon behind ``xs``: ``inprocess`` unless parametrised."""
    return str(getattr(request, "param", "inprocess"))


@pytest.fixture
def xs(xs_daemon_kind: str) -> Iterator[Sandbox]:
    """A :class:`Sandbox`: a fresh xenstored for this test, its clients and domains; agents
    started with ``xs.start`` are stopped afterwards and checked for leaks."""
    with Sandbox(xs_daemon_kind) as sandbox:
        yield sandbox


@pytest.fixture
def xs_dom0(xs: Sandbox) -> object:
    """A high-level dom0 :class:`~xsactor.Client` on the test's daemon."""
    return xs.dom0()


@pytest.fixture
def xs_default(xs: Sandbox) -> object:
    """xsactor's default connection (``xsactor.read`` ...) on the test's daemon as dom0."""
    return xs.use_default()


@pytest.fixture(autouse=True)
def xsactor_default_connection() -> Iterator[None]:
    """Close xsactor's default connection after every test: the next test must not talk to
    this test's (dead) daemon."""
    yield
    from ..bus.default import set_default

    set_default(None)


@pytest.fixture
def xenstored() -> Iterator[DaemonUnderTest]:
    """The embedded xenstored, in a subprocess of its own for this test."""
    with running("embedded") as daemon:
        yield daemon


@pytest.fixture
def xenstored_reference() -> Iterator[DaemonUnderTest]:
    """The real C xenstored 4.17 for this test (skip/fail per ``require_reference``)."""
    with running("reference") as daemon:
        yield daemon


@pytest.fixture
def xenbus_device(xenstored: DaemonUnderTest) -> Iterator[XenbusKernel]:
    """A fake ``/dev/xen/xenbus`` in guest :data:`XENBUS_GUEST` of ``xenstored``."""
    kernel = XenbusKernel(xenstored.add_guest(XENBUS_GUEST))
    try:
        yield kernel
    finally:
        kernel.close()
    if kernel.violations:
        pytest.fail("the xenbus device's rules were broken:\n" + "\n".join(kernel.violations))
