"""Fixtures of the conformance suite: every case runs against the embedded daemon and the C
reference (xenstored 4.17).

Starting a daemon per case is too slow, so ``daemon`` shares one daemon per module and kind,
and isolates each case by a unique path prefix (``daemon.prefix``, e.g. ``/t/17``) and by fresh
guest domains (a new domid every time). Cases that change global state (quota settings, the
ACLs of special paths, watches on ``/``) take ``fresh_daemon``: a daemon of their own.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from xsactor.daemon.toolstack import GuestSpec
from xsactor.protocol.paths import home_path
from xsactor.testing.daemons import DaemonUnderTest, require_reference, running, start_daemon
from xsactor.testing.util import short_tempdir
from xsactor.testing.wire import WireClient

KINDS = ["embedded", pytest.param("reference", marks=pytest.mark.reference)]


def embedded_only(why: str) -> pytest.MarkDecorator:
    """Run a case against the embedded daemon only.

    For the requests where 4.17's answer is undefined: it crashes, trips an assertion, or
    answers from a stale global errno (``why`` names the 4.17 bug; docs/testing.md lists them
    all). A conformance case never rests on such behaviour, so the embedded daemon's intended
    answer is pinned here, and the reference variant of the case does not exist at all (it is
    not collected, rather than skipped).
    """
    assert why, "say which 4.17 bug makes the reference's answer undefined"
    return pytest.mark.parametrize("daemon_kind", ["embedded"], indirect=True, scope="module")

# The 4.17 bugs behind the embedded-only cases (reference-daemon-notes.md, docs/testing.md).
STALE_ERRNO = ("4.17 answers from a stale global errno, and asserts and dies when that errno "
               "is 0")
RESET_IN_TRANSACTION = ("4.17 deletes the transaction RESET_WATCHES itself runs in: it answers "
                        "OK on some machines and aborts on others (xenstored_transaction.c:654)")

_prefixes = itertools.count(1)


class Conn(WireClient):
    """A WireClient that knows which domain it speaks for."""

    def __init__(self, path: str, domid: int, timeout: float = 10.0) -> None:
        super().__init__(path, timeout)
        self.domid = domid
        self.home = home_path(domid)


class SharedDaemon:
    """One daemon for a module, restarted if a case killed it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rundir = short_tempdir(f"xs-{kind[:3]}-")
        self.generation = 0
        self.daemon: DaemonUnderTest | None = None
        self.domids = itertools.count(1)

    def get(self) -> DaemonUnderTest:
        if self.daemon is not None and not self.daemon.alive():
            self.daemon.stop()
            self.daemon = None
        if self.daemon is None:
            self.generation += 1
            self.daemon = start_daemon(self.kind, f"{self.rundir}/{self.generation}")
        return self.daemon

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        shutil.rmtree(self.rundir, ignore_errors=True)


class Harness:
    """What a case uses: connections as dom0 or as fresh guests, and a private path prefix."""

    def __init__(self, kind: str, daemon: DaemonUnderTest, domids: Iterator[int]) -> None:
        self.kind = kind
        self.daemon = daemon
        self.domids = domids
        self.prefix = f"/t/{next(_prefixes)}"
        self.conns: list[WireClient] = []

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"

    def p(self, *parts: str) -> str:
        """A path under this case's prefix."""
        return "/".join((self.prefix, *parts))

    @property
    def component(self) -> str:
        """This case's prefix as one path component (``t_17``), for its own relative paths
        and paths outside the prefix."""
        return self.prefix[1:].replace("/", "_")

    def dom0(self) -> Conn:
        conn = Conn(self.daemon.socket_path, 0)
        self.conns.append(conn)
        return conn

    def new_domid(self) -> int:
        return next(self.domids)

    def spec(self, domid: int | None = None, **fields: Any) -> GuestSpec:
        """A guest's description (a fresh domid unless given)."""
        number = self.new_domid() if domid is None else domid
        return GuestSpec(number, **fields)

    def add_guest(self, spec: GuestSpec | None = None, **fields: Any) -> int:
        """Build and introduce a fresh guest (no connection yet); return its domid."""
        if spec is None:
            spec = self.spec(**fields)
        self.daemon.add_guest(spec)
        return spec.domid

    def connect(self, domid: int) -> Conn:
        """The (one) connection of an added guest."""
        conn = Conn(self.daemon.guest_sockets[domid], domid)
        self.conns.append(conn)
        return conn

    def guest(self, **fields: Any) -> Conn:
        """A fresh guest domain, connected."""
        return self.connect(self.add_guest(**fields))

    def set_domain_state(self, domid: int, state: str) -> None:
        self.daemon.set_domain_state(domid, state)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()


@pytest.fixture(scope="module", params=KINDS)
def daemon_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "reference":
        require_reference()
    return request.param


@pytest.fixture(scope="module")
def shared_daemon(daemon_kind: str) -> Iterator[SharedDaemon]:
    shared = SharedDaemon(daemon_kind)
    yield shared
    shared.close()


def _check_survived(harness: Harness) -> None:
    harness.close()
    assert harness.daemon.alive(), f"the {harness.kind} daemon died during the case"


@pytest.fixture
def daemon(shared_daemon: SharedDaemon) -> Iterator[Harness]:
    """A module-wide daemon, isolated by a unique prefix and fresh guests."""
    harness = Harness(shared_daemon.kind, shared_daemon.get(), shared_daemon.domids)
    yield harness
    _check_survived(harness)


@pytest.fixture
def fresh_daemon(daemon_kind: str) -> Iterator[Harness]:
    """A daemon of the case's own, for cases that change global state."""
    with running(daemon_kind, prefix=f"xs-{daemon_kind[:3]}-") as started:
        harness = Harness(daemon_kind, started, itertools.count(1))
        try:
            yield harness
            _check_survived(harness)
        finally:
            harness.close()
