"""Fixtures of the interop suite: Xen's own libxenstore clients (the ``xenstore-*`` tools and
the ``xen.lowlevel.xs`` binding, from the reference install) against our daemon.

The cases target the embedded daemon; they also run against the C xenstored, which checks
that the expected outputs are what the real tools print with the real daemon.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
from collections.abc import Iterator

import pytest

from xsactor.testing.daemons import DaemonUnderTest, require_reference, running
from xsactor.testing.reference import ReferenceInstall
from xsactor.testing.util import spawned
from xsactor.testing.wire import WireClient

KINDS = ["embedded", pytest.param("reference", marks=pytest.mark.reference)]
TIMEOUT = 20.0

_prefixes = itertools.count(1)
_domids = itertools.count(1)


class Clients:
    """Runs libxenstore clients on one daemon, under a per-case path prefix."""

    def __init__(self, kind: str, install: ReferenceInstall, daemon: DaemonUnderTest) -> None:
        self.kind = kind
        self.install = install
        self.daemon = daemon
        self.env = install.client_env(daemon.socket_path)
        self.prefix = f"/i/{next(_prefixes)}"
        self.conns: list[WireClient] = []

    def p(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def dom0(self) -> WireClient:
        conn = self.daemon.dom0()
        self.conns.append(conn)
        return conn

    def tool(self, name: str) -> str:
        return str(self.install.clients_dir / name)

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``xenstore-<name>`` (or ``xenstore`` when name is empty) to completion."""
        exe = self.tool(f"xenstore-{name}" if name else "xenstore")
        return subprocess.run([exe, *args], env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)

    def ok(self, name: str, *args: str) -> str:
        """stdout of a client that must succeed."""
        result = self.run(name, *args)
        assert result.returncode == 0, (name, args, result.returncode, result.stderr)
        assert result.stderr == "", result.stderr
        return result.stdout

    def spawn(self, name: str, *args: str) -> contextlib.AbstractContextManager[
            subprocess.Popen[str]]:
        """``xenstore-<name>`` in the background, killed on exit if still running."""
        return spawned([self.tool(f"xenstore-{name}"), *args], env=self.env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def python(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with CPython 3.11 and ``xen.lowlevel.xs`` on the daemon's socket."""
        return subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)

    def add_guest(self) -> int:
        domid = 20000 + next(_domids)
        self.daemon.add_guest(domid)
        return domid

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


@pytest.fixture(scope="session")
def reference_install() -> ReferenceInstall:
    return require_reference()


@pytest.fixture(scope="module", params=KINDS)
def interop_daemon(request: pytest.FixtureRequest, reference_install: ReferenceInstall
                   ) -> Iterator[tuple[str, DaemonUnderTest]]:
    with running(request.param, prefix=f"xs-io-{request.param[:3]}-") as daemon:
        yield request.param, daemon


@pytest.fixture
def clients(interop_daemon: tuple[str, DaemonUnderTest], reference_install: ReferenceInstall
            ) -> Iterator[Clients]:
    kind, daemon = interop_daemon
    assert daemon.alive(), f"the {kind} daemon is not running"
    harness = Clients(kind, reference_install, daemon)
    yield harness
    harness.close()
    assert daemon.alive(), f"the {kind} daemon died during the case"
