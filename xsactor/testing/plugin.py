"""pytest plugin for xsactor users: a xenstored per test.

Loaded through the ``pytest11`` entry point ``xsactor`` when the package is installed. A test
suite that cannot rely on that (a source checkout) imports the fixtures into its conftest
instead of listing this module in ``pytest_plugins`` (which would register it twice)::

    from xsactor.testing.plugin import xenbus_device, xenstored, xenstored_reference  # noqa: F401

Fixtures:

- ``xenstored``: the embedded daemon in a subprocess, fresh for the test
  (a :class:`~xsactor.testing.daemons.DaemonUnderTest`: ``dom0()``, ``add_guest(domid)``,
  ``guest(domid)``, ``set_domain_state(domid, state)``).
- ``xenstored_reference``: the same over the real C xenstored 4.17; skipped when it cannot be
  installed, failed instead when ``XSACTOR_REQUIRE_REFERENCE=1``.
- ``xenbus_device``: a fake Linux ``/dev/xen/xenbus`` of guest :data:`XENBUS_GUEST` on the
  ``xenstored`` fixture's daemon (:class:`~xsactor.testing.xenbus_device.XenbusKernel`:
  ``Client(connector=xenbus_device.transport)``); the test fails if the kernel's rules were
  broken (``violations``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .daemons import DaemonUnderTest, running
from .xenbus_device import XenbusKernel

XENBUS_GUEST = 5
"""The guest domain the ``xenbus_device`` fixture's kernel runs in."""

REFERENCE_MARKER = "reference: needs the reference C xenstored 4.17 (Debian packages)"


def register_markers(config: pytest.Config) -> None:
    """Declare the ``reference`` marker unless the project's ini already does."""
    if not any(line.split(":")[0].strip() == "reference" for line in config.getini("markers")):
        config.addinivalue_line("markers", REFERENCE_MARKER)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)


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
