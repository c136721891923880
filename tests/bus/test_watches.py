"""Watch delivery into the subscriber's mailbox, and a reader that never dies or blocks."""

from __future__ import annotations

from typing import Any

import gevent
import gevent.event
import pytest

from xsactor import EEXIST, Client, ReceiveTimeout, mailbox_of
from xsactor.protocol import Op, Packet

from .conftest import GUEST, until
from .faultproxy import FaultProxy


def is_event(message: Any) -> bool:
    return type(message) is tuple and message[0] == "watch_event"


def test_watch_delivers_to_the_calling_greenlet(client: Client) -> None:
    client.write("/w/a/x", "0")
    ready = gevent.event.Event()
    done = gevent.event.Event()

    def subscriber() -> list[Any]:
        client.watch("/w/a", "sub")
        box = mailbox_of()
        got = [box.receive(5)]  # the first event, right after registration
        ready.set()
        got.append(box.receive(5))
        done.wait(5)
        return got

    g = gevent.spawn(subscriber)
    ready.wait(5)
    client.write("/w/a/x", "1")
    client.write("/w/b", "elsewhere")  # not below /w/a
    until(lambda: len(mailbox_of(g)) == 0, what="the subscriber to take the event")
    done.set()
    assert g.get(timeout=5) == [("watch_event", "/w/a", "sub"), ("watch_event", "/w/a/x", "sub")]
    assert not any(is_event(m) for m in [*_drain(mailbox_of())])  # nothing for the test


def _drain(box: Any) -> list[Any]:
    out = []
    while True:
        try:
            out.append(box.receive(0))
        except ReceiveTimeout:
            return out


def test_auto_token_unwatch_and_purge(client: Client) -> None:
    token = client.watch("/w/u")
    assert isinstance(token, str)
    assert client.next_event(token, timeout=5) == ("/w/u", token)
    client.write("/w/u", "1")
    client.get_domain_path(0)  # the event is queued before this reply
    assert len(mailbox_of()) == 1
    client.unwatch("/w/u", token)
    assert len(mailbox_of()) == 0  # queued events of a removed watch are dropped
    client.write("/w/u", "2")
    client.get_domain_path(0)
    assert len(mailbox_of()) == 0


def test_relative_watch_reports_relative_paths(guest_client: Client) -> None:
    token = guest_client.watch("data", "rel")
    assert guest_client.next_event(token, timeout=5) == ("data", "rel")
    guest_client.write("data/k", "v")
    assert guest_client.next_event(token, timeout=5) == ("data/k", "rel")


def test_same_token_two_paths_are_routed_by_path(client: Client) -> None:
    a_box: list[Any] = []
    b_box: list[Any] = []

    def sub(path: str, into: list[Any], ready: gevent.event.Event) -> None:
        client.watch(path, "shared")
        box = mailbox_of()
        into.append(box.receive(5))
        ready.set()
        into.append(box.receive(5))

    ra, rb = gevent.event.Event(), gevent.event.Event()
    ga = gevent.spawn(sub, "/w/s1", a_box, ra)
    gb = gevent.spawn(sub, "/w/s2", b_box, rb)
    ra.wait(5)
    rb.wait(5)
    client.write("/w/s1/k", "1")
    client.write("/w/s2/k", "2")
    gevent.joinall([ga, gb], timeout=5, raise_error=True)
    assert a_box == [("watch_event", "/w/s1", "shared"), ("watch_event", "/w/s1/k", "shared")]
    assert b_box == [("watch_event", "/w/s2", "shared"), ("watch_event", "/w/s2/k", "shared")]


def test_dead_subscriber_watch_removed_on_the_daemon(proxy: FaultProxy,
                                                     clients: Any) -> None:
    client = clients(proxy.socket_path)
    g = gevent.spawn(lambda: client.watch("/w/dead", "gone"))
    assert g.get(timeout=5) == "gone"
    # The greenlet finished: the bus UNWATCHes without waiting for an event.
    until(lambda: proxy.watch_count() == 0, what="the UNWATCH")
    assert client.conn.watches() == []


def test_dead_raw_greenlet_watch_removed_on_next_event(proxy: FaultProxy,
                                                       clients: Any) -> None:
    client = clients(proxy.socket_path)
    raw = gevent.spawn_raw(lambda: client.watch("/w/raw", "rawtok"))
    until(lambda: raw.dead and proxy.watch_count() == 1, what="the raw greenlet's watch")
    client.write("/w/raw", "x")  # the event finds no live subscriber
    until(lambda: proxy.watch_count() == 0, what="the UNWATCH")
    assert client.conn.watches() == []


def test_bad_packets_never_kill_the_reader(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    token = client.watch("/w/bad")
    client.next_event(token, timeout=5)
    proxy.inject(Packet(Op.READ, 0xDEAD, 0, b"stray reply"))          # unknown req_id
    proxy.inject(Packet(Op.WATCH_EVENT, 0, 0, b"/w/bad\0unknown\0"))  # unknown token
    proxy.inject(Packet(Op.WATCH_EVENT, 0, 0, b"no-nul-at-all"))      # malformed
    proxy.inject(Packet(Op.WATCH_EVENT, 0, 0, b"/w/bad\0" + token.encode() + b"\0"))
    assert client.next_event(token, timeout=5) == ("/w/bad", token)
    assert client.read("/local/domain/0/name") == b"Domain-0"
    assert len(mailbox_of()) == 0


def test_events_never_block_the_reader_and_coalesce(client: Client) -> None:
    token = client.watch("/w/flood")
    client.next_event(token, timeout=5)
    for i in range(300):  # nobody receives meanwhile
        client.write(f"/w/flood/k{i % 3}", str(i))
    assert client.read("/w/flood/k0") == b"297"  # requests still flow
    client.get_domain_path(0)
    events = _drain(mailbox_of())
    # Identical queued events are coalesced: one per distinct path here.
    assert sorted(events) == [("watch_event", f"/w/flood/k{i}", token) for i in range(3)]


def test_watch_to_an_explicit_mailbox(client: Client) -> None:
    owner = gevent.spawn(gevent.sleep, 30)
    box = mailbox_of(owner)
    token = client.watch("/w/box", mailbox=box)
    assert box.receive(5) == ("watch_event", "/w/box", token)
    assert len(mailbox_of()) == 0
    owner.kill()


def test_domain_watches_fire_on_the_embedded_daemon(embedded: Any, clients: Any) -> None:
    client = clients(embedded.socket_path)
    intro = client.watch_introduce_domain()
    client.next_event(intro, timeout=5)
    embedded.add_guest(9)
    assert client.next_event(intro, timeout=5) == ("@introduceDomain", intro)
    release = client.watch_release_domain()
    client.next_event(release, timeout=5)
    embedded.set_domain_state(9, "shutdown")
    assert client.next_event(release, timeout=5) == ("@releaseDomain", release)


def test_relative_and_absolute_forms_are_one_watch(guest_client: Client) -> None:
    token = guest_client.watch("data/rel", "same")
    guest_client.next_event(token, timeout=5)
    with pytest.raises(EEXIST):
        guest_client.watch(f"/local/domain/{GUEST}/data/rel", "same")
    guest_client.unwatch(f"/local/domain/{GUEST}/data/rel", "same")
    assert guest_client.conn.watches() == []


def watch_quota(dom0: Client, domid: int) -> int:
    """The daemon's own count of a domain's watches (``CONTROL quota <domid>``)."""
    text = dom0.conn.call(Op.CONTROL, b"quota\0%d\0" % domid).decode()
    return int(text.split("watches")[1].split(":")[1].split()[0])


def test_dead_subscriber_unwatched_on_the_embedded_daemon(embedded: Any, clients: Any) -> None:
    dom0 = clients(embedded.socket_path)
    guest = clients(embedded.add_guest(GUEST))
    g = gevent.spawn(lambda: [guest.watch(f"data/{i}") for i in range(3)])
    g.join(timeout=5)
    assert g.successful()
    until(lambda: watch_quota(dom0, GUEST) == 0, what="the daemon to drop the watches")
    assert guest.conn.watches() == []


def test_unwatch_nowait_stops_at_once_and_unwatches_in_the_background(
        proxy: FaultProxy) -> None:
    with Client(proxy.socket_path) as client:
        client.watch("/w/n", "n")
        assert client.next_event("n", timeout=5) == ("/w/n", "n")
        assert client.unwatch_nowait("/w/n", "n") is True  # no reply waited for
        assert client.unwatch_nowait("/w/n", "n") is False
        client.watch("/w/n", "n")  # the same token again at once: no EEXIST
        until(lambda: [p.op for p in proxy.all_received].count(Op.UNWATCH) == 1,
              what="the UNWATCH on the wire")
        ops = [p.op for p in proxy.all_received if p.op in (Op.WATCH, Op.UNWATCH)]
        assert ops == [Op.WATCH, Op.UNWATCH, Op.WATCH]  # sent in order
        assert client.next_event("n", timeout=5) == ("/w/n", "n")


def test_a_subscriber_that_stops_reading_has_a_bounded_mailbox(client: Client) -> None:
    """Distinct events beyond the limit merge into one event on the watched path: the bus
    never blocks and the mailbox stays bounded; the subscriber re-reads the whole subtree."""
    client.conn.max_queued_events = 20
    box = mailbox_of()
    client.watch("/slow", "slow")
    assert client.next_event("slow", timeout=5) == ("/slow", "slow")
    writes = [gevent.spawn(client.write, f"/slow/k{i}", "v") for i in range(200)]
    gevent.joinall(writes, timeout=10, raise_error=True)
    client.get_domain_path(0)  # every event is in
    assert len(box) == 21  # 20 distinct events, then one overflow event
    got = _drain(box)
    assert len(set(got)) == 21
    assert all(path.startswith("/slow/k") for _kind, path, _token in got[:20])
    assert got[-1] == ("watch_event", "/slow", "slow")  # the overflow event
    client.write("/slow/k0", "again")  # room again: events are exact again
    assert client.next_event("slow", timeout=5) == ("/slow/k0", "slow")


def test_a_bounded_mailbox_gets_the_overflow_event_past_its_bound(client: Client) -> None:
    from xsactor.actors import Mailbox

    box = Mailbox(bound=3)
    client.watch("/bounded", "b", mailbox=box)
    assert box.receive(5) == ("watch_event", "/bounded", "b")
    for i in range(10):
        client.write(f"/bounded/k{i}", "v")
    client.get_domain_path(0)
    assert len(box) == 4 and box.dropped == 7
    assert _drain(box) == [("watch_event", f"/bounded/k{i}", "b") for i in range(3)] + [
        ("watch_event", "/bounded", "b")]
    client.unwatch("/bounded", "b")
