"""A representative subset of the bus tests against the real C xenstored 4.17: dom0 on its
socket, a guest through the harness's ring bridge.

Skipped, with the reason, when the reference daemon cannot be installed here; failed instead
when ``XSACTOR_REQUIRE_REFERENCE=1``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from xsactor import (
    EACCES,
    EAGAIN,
    EINVAL,
    ENOENT,
    Client,
    ConnectionLost,
    State,
    mailbox_of,
)
from xsactor.testing.daemons import DaemonUnderTest, running

from .conftest import make_client, until

pytestmark = pytest.mark.reference

_domids = itertools.count(11)


@pytest.fixture(scope="module")
def reference() -> Iterator[DaemonUnderTest]:
    with running("reference", prefix="xsb-ref-") as daemon:
        yield daemon


@pytest.fixture
def dom0(reference: DaemonUnderTest, clients: Callable[..., Client]) -> Client:
    return clients(reference.socket_path)


@pytest.fixture
def guest(reference: DaemonUnderTest, clients: Callable[..., Client]) -> tuple[int, Client]:
    domid = next(_domids)
    return domid, clients(reference.add_guest(domid))


def test_dom0_basics(dom0: Client) -> None:
    assert dom0.domid() == 0
    dom0.write("/ref/a", "1")
    dom0.write("/ref/b", b"\x00x")
    assert dom0.read("/ref/a") == b"1"
    assert dom0.read("/ref/b") == b"\x00x"
    assert sorted(dom0.list("/ref")) == ["a", "b"]
    dom0.set_perms("/ref/a", ["n0", "r7"])
    assert dom0.get_perms("/ref/a") == ["n0", "r7"]
    assert dom0.get_domain_path(7) == "/local/domain/7"
    with pytest.raises(ENOENT):
        dom0.read("/ref/missing")
    with pytest.raises(EINVAL):
        dom0.delete("/")
    dom0.delete("/ref")
    assert not dom0.exists("/ref/a")


def test_watches_and_special_watches(dom0: Client, reference: DaemonUnderTest) -> None:
    token = dom0.watch("/refw")
    assert dom0.next_event(token, timeout=5) == ("/refw", token)
    dom0.write("/refw/x", "1")
    assert dom0.next_event(token, timeout=5) == ("/refw/x", token)
    dom0.unwatch("/refw", token)

    intro = dom0.watch_introduce_domain()
    release = dom0.watch_release_domain()
    assert dom0.next_event(intro, timeout=5) == ("@introduceDomain", intro)
    assert dom0.next_event(release, timeout=5) == ("@releaseDomain", release)
    domid = next(_domids)
    reference.add_guest(domid)
    assert dom0.next_event(intro, timeout=5) == ("@introduceDomain", intro)
    reference.set_domain_state(domid, "shutdown")
    assert dom0.next_event(release, timeout=5) == ("@releaseDomain", release)


def test_transactions(dom0: Client, reference: DaemonUnderTest,
                      clients: Callable[..., Client]) -> None:
    other = clients(reference.socket_path)
    dom0.write("/reft/c", "0")
    tid = dom0.transaction()
    dom0.read("/reft/c", tid)
    dom0.write("/reft/c", "1", tid)
    other.write("/reft/c", "5")
    with pytest.raises(EAGAIN):
        dom0.commit(tid)
    attempts = []

    def body(t: int) -> None:
        attempts.append(t)
        value = dom0.read_integer("/reft/c", t)
        if len(attempts) == 1:
            other.write("/reft/c", str(value + 100))
        dom0.write("/reft/c", str(value + 1), t)

    dom0.transact(body)
    assert len(attempts) == 2
    assert dom0.read("/reft/c") == b"106"


def test_directory_part(dom0: Client) -> None:
    names = [f"a-rather-long-child-name-{i:04d}" for i in range(200)]
    tid = dom0.transaction()
    for name in names:
        dom0.write(f"/refd/{name}", "", tid)
    dom0.commit(tid)
    assert sorted(dom0.list("/refd")) == names


def test_pipelined_greenlets(dom0: Client) -> None:
    def worker(n: int) -> None:
        for i in range(20):
            dom0.write(f"/refp/{n}", f"{n}.{i}")
            assert dom0.read(f"/refp/{n}") == f"{n}.{i}".encode()

    gevent.joinall([gevent.spawn(worker, n) for n in range(64)], timeout=30, raise_error=True)


def test_guest_through_the_ring_bridge(guest: tuple[int, Client], dom0: Client) -> None:
    domid, client = guest
    assert client.domid() == domid
    assert client.read("name") == f"guest{domid}".encode()
    client.write("data/x", "1")
    assert dom0.read(f"/local/domain/{domid}/data/x") == b"1"
    with pytest.raises(EACCES):
        client.read("/local/domain/0/name")
    token = client.watch("data", "rel")
    assert client.next_event(token, timeout=5) == ("data", "rel")
    dom0.write(f"/local/domain/{domid}/data/y", "2")
    assert client.next_event(token, timeout=5) == ("data/y", "rel")
    result: Any = gevent.spawn(client.wait_for, lambda: client.read("data/z", default=None), 10)
    dom0.write(f"/local/domain/{domid}/data/z", "3")
    assert result.get(timeout=10) == b"3"


def test_dead_subscriber_unwatched_on_the_c_daemon(guest: tuple[int, Client],
                                                    dom0: Client) -> None:
    from .test_watches import watch_quota

    domid, client = guest
    g = gevent.spawn(lambda: [client.watch(f"data/{i}") for i in range(3)])
    g.join(timeout=5)
    assert g.successful()
    until(lambda: watch_quota(dom0, domid) == 0, what="the daemon to drop the watches")
    assert client.conn.watches() == []


def test_restart_of_the_c_daemon_under_load() -> None:
    with running("reference", prefix="xsb-ref-") as daemon:
        client = make_client(daemon.socket_path)
        try:
            token = client.watch("/refr")
            client.next_event(token, timeout=5)
            tid = client.transaction()
            outcomes: list[str] = []

            def worker(n: int) -> None:
                for i in range(200):
                    try:
                        client.write(f"/refr/{n}", str(i))
                        outcomes.append("ok")
                    except ConnectionLost:
                        outcomes.append("lost")
                        if not client.wait_connected(10):
                            return

            workers = [gevent.spawn(worker, n) for n in range(16)]
            until(lambda: len(outcomes) > 100, what="load")
            daemon.stop()
            assert client.conn.wait_state(State.RECONNECTING, timeout=10)
            daemon.start()
            gevent.joinall(workers, timeout=30, raise_error=True)
            assert "lost" in outcomes and outcomes[-1] == "ok"
            again = ("watch_event", "/refr", token)  # the first event again: re-registered
            assert mailbox_of().receive(5, match=lambda m: m == again) == again
            with pytest.raises(EAGAIN):
                client.commit(tid)
            assert client.transact(lambda t: client.read("/refr/0", t)) == b"199"
        finally:
            client.close()
