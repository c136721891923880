"""Fixtures of the bus tests: daemons in-process on the test's gevent hub.

- ``server``: each test runs against the embedded daemon (``xsactor.daemon.server.Daemon``),
  directly and through the fault-injecting proxy of ``faultproxy.py`` (injecting nothing);
- ``proxy``: the proxy in front of the embedded daemon, for tests that need its hooks (gate,
  received packets, injection, dropped connections);
- ``embedded``: the embedded daemon only (domain lifecycle: ``set_domain_state``);
- ``kernel``: the fake xenbus device (``xsactor.testing.xenbus_device``) of guest ``GUEST``;
- ``client`` / ``guest_client``: :class:`xsactor.Client` connections (fast reconnect backoff).

Tests run in the main greenlet, whose mailbox outlives a test: it is emptied around each one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from xsactor import Client, mailbox_of
from xsactor.daemon.config import DaemonConfig
from xsactor.daemon.server import Daemon
from xsactor.testing.util import scratch_dir, wait_for
from xsactor.testing.watches import no_stray_watches
from xsactor.testing.xenbus_device import XenbusKernel

from .faultproxy import FaultProxy

GUEST = 5


def until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``condition`` (yielding to the hub) until it is true; fail after ``timeout``."""
    return wait_for(condition, timeout, what, error=AssertionError, sleep=gevent.sleep)


def stall_reads(proxy: FaultProxy, client: Client, count: int,
                path: str = "/local/domain/0/name") -> list[gevent.Greenlet]:
    """Close the proxy's gate and start ``count`` greenlets reading ``path``; return them once
    the proxy has received every request (no reply gets through until ``proxy.gate.set()``)."""
    base = len(proxy.all_received)
    proxy.gate.clear()
    readers = [gevent.spawn(client.read, path) for _ in range(count)]
    assert proxy.wait_received(base + count)
    return readers


def _embedded(rundir: str) -> Daemon:
    """The embedded daemon in-process; it has the proxy's driver interface (``socket_path``,
    ``start``, ``stop``, ``add_guest``)."""
    return Daemon(DaemonConfig(socket_path=os.path.join(rundir, "socket"),
                               guest_dir=os.path.join(rundir, "guests"))).start()


@pytest.fixture
def rundir() -> Iterator[str]:
    with scratch_dir("xsb-") as path:  # short: unix socket paths <= 107
        yield path


@pytest.fixture
def proxy(rundir: str) -> Iterator[FaultProxy]:
    daemon = _embedded(rundir)
    proxied = FaultProxy(daemon, rundir).start()
    yield proxied
    proxied.stop()
    daemon.stop()


@pytest.fixture
def embedded(rundir: str) -> Iterator[Daemon]:
    srv = _embedded(rundir)
    yield srv
    srv.stop()


@pytest.fixture
def kernel(embedded: Daemon) -> Iterator[XenbusKernel]:
    """The fake xenbus device of a guest of ``embedded``; no rule of the kernel may be broken
    (a test that breaks one on purpose clears ``violations``)."""
    k = XenbusKernel(embedded.add_guest(GUEST))
    yield k
    k.close()
    assert k.violations == []


@pytest.fixture(params=["embedded", "proxied"])
def server(request: pytest.FixtureRequest, rundir: str) -> Iterator[Any]:
    daemon = _embedded(rundir)
    srv = daemon if request.param == "embedded" else FaultProxy(daemon, rundir).start()
    yield srv
    srv.stop()
    daemon.stop()


def make_client(path: str, **options: Any) -> Client:
    options.setdefault("backoff_initial", 0.005)
    options.setdefault("backoff_max", 0.05)
    options.setdefault("default_timeout", 20.0)
    return Client(path, **options)


@pytest.fixture
def clients(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """Make clients that are closed at the end of the test, after checking that the daemon
    holds no watch of a dead subscriber."""
    made: list[Client] = []

    def make(path: str, **options: Any) -> Client:
        client = make_client(path, **options)
        made.append(client)
        return client
    yield make
    try:
        daemon = next((request.getfixturevalue(name) for name in ("server", "embedded", "proxy")
                       if name in request.fixturenames), None)
        if daemon is not None and made:
            no_stray_watches(daemon, made)
    finally:
        for client in made:
            client.close()


@pytest.fixture
def client(server: Any, clients: Callable[..., Client]) -> Client:
    return clients(server.socket_path)


@pytest.fixture
def guest_client(server: Any, clients: Callable[..., Client]) -> Client:
    return clients(server.add_guest(GUEST))


@pytest.fixture(autouse=True)
def _clean_main_mailbox() -> Iterator[None]:
    box = mailbox_of()
    box.purge(lambda m: True)
    yield
    box.purge(lambda m: True)


@pytest.fixture(autouse=True)
def _no_default_connection() -> Iterator[None]:
    import xsactor

    yield
    with contextlib.suppress(Exception):
        xsactor.close()
