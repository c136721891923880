"""Losing the daemon: pending requests fail at once, the bus reconnects, watches come back,
old transactions end in EAGAIN so retry loops just work."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import gevent
import gevent.event
import pytest

from xsactor import EAGAIN, BusClosed, Client, ConnectionLost, State, mailbox_of
from xsactor.actors import Mailbox, ReceiveTimeout

from .conftest import stall_reads, until
from .faultproxy import FaultProxy


def restart(server: Any, client: Client) -> None:
    """Stop the daemon, see the client notice, start it again, see the client reconnect."""
    generation = client.conn.generation
    server.stop()
    assert client.conn.wait_state(State.RECONNECTING, timeout=5)
    server.start()
    assert client.wait_connected(timeout=5)
    assert client.conn.generation == generation + 1


def test_restart_under_load(server: Any, clients: Any) -> None:
    client = clients(server.socket_path)
    stop = gevent.event.Event()
    outcomes: Counter[str] = Counter()

    def worker(n: int) -> None:
        while not stop.is_set():
            try:
                client.write(f"/rc/{n}", str(outcomes["ok"]))
                client.read(f"/rc/{n}")
                outcomes["ok"] += 1
            except ConnectionLost:
                outcomes["lost"] += 1
                client.wait_connected(timeout=5)

    events: dict[int, list[Any]] = {}
    registered = gevent.event.Event()

    def subscriber(i: int) -> None:
        client.watch(f"/rc/w{i}", f"tok{i}")
        if len(events) == 9:
            registered.set()
        box = mailbox_of()
        got = events.setdefault(i, [])
        while not stop.is_set():
            with contextlib.suppress(ReceiveTimeout):
                got.append(box.receive(0.05))

    subscribers = [gevent.spawn(subscriber, i) for i in range(10)]
    assert registered.wait(5)
    workers = [gevent.spawn(worker, n) for n in range(50)]
    until(lambda: outcomes["ok"] >= 300, what="load before the restart")

    states = Mailbox()
    client.conn.subscribe_state(states)
    restart(server, client)
    before = outcomes["ok"]
    until(lambda: outcomes["ok"] >= before + 300, what="load after the restart")
    for i in range(10):
        client.write(f"/rc/w{i}/after", "x")
    until(lambda: all(("watch_event", f"/rc/w{i}/after", f"tok{i}") in events.get(i, [])
                      for i in range(10)), what="events after the restart")
    stop.set()
    gevent.joinall(workers + subscribers, timeout=10, raise_error=True)  # nothing hangs
    assert outcomes["lost"] > 0  # requests were in flight when the daemon went away

    for i, got in events.items():
        assert all(event[2] == f"tok{i}" and event[1].startswith(f"/rc/w{i}") for event in got)
        # The first event on registration, and again on re-registration: "re-read".
        assert got.count(("watch_event", f"/rc/w{i}", f"tok{i}")) >= 2
    assert states.receive(0)[2] is State.RECONNECTING
    assert states.receive(0)[2] is State.CONNECTED
    assert client.read("/rc/0") is not None


def test_pending_requests_fail_at_once(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path, default_timeout=None)
    waiting = stall_reads(proxy, client, 20)
    proxy.drop_connections()
    gevent.joinall(waiting, timeout=5)
    assert all(g.ready() for g in waiting)
    assert all(isinstance(g.exception, ConnectionLost) for g in waiting)
    proxy.gate.set()
    assert client.wait_connected(5)
    assert client.read("/local/domain/0/name") == b"Domain-0"


def test_requests_fail_fast_while_disconnected(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    proxy.stop()
    assert client.conn.wait_state(State.RECONNECTING, timeout=5)
    with pytest.raises(ConnectionLost):
        client.read("/local/domain/0/name")
    with pytest.raises(ConnectionLost):
        client.watch("/x")
    assert client.conn.watches() == []
    proxy.start()
    assert client.wait_connected(5)
    assert client.read("/local/domain/0/name") == b"Domain-0"


def test_watches_are_re_registered(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    tokens = [client.watch(f"/rw/{i}") for i in range(5)]
    for token in tokens:
        client.next_event(token, timeout=5)
    restart(proxy, client)
    until(lambda: proxy.watch_count() == 5, what="the watches to be back")
    assert sorted(proxy.watch_tokens()) == sorted(t.encode() for t in tokens)
    for i, token in enumerate(tokens):
        assert client.next_event(token, timeout=5) == (f"/rw/{i}", token)


def test_open_transaction_fails_at_commit_with_eagain(server: Any, clients: Any) -> None:
    client = clients(server.socket_path)
    tid = client.transaction()
    client.write("/rc/tx/a", "1", tid)
    restart(server, client)
    with pytest.raises(EAGAIN):
        client.write("/rc/tx/b", "1", tid)  # nothing sent: the id would mean another tx
    with pytest.raises(EAGAIN):
        client.commit(tid)
    client.rollback(tid)  # a no-op for a dead transaction
    assert not client.exists("/rc/tx/a")


def test_transact_succeeds_across_a_restart(server: Any, clients: Any) -> None:
    client = clients(server.socket_path)
    client.write("/rc/t", "0")
    attempts = []

    def body(tid: int) -> int:
        attempts.append(tid)
        value = client.read_integer("/rc/t", tid)
        if len(attempts) == 1:
            restart(server, client)
        client.write("/rc/t", str(value + 1), tid)
        return value + 1

    assert client.transact(body) == 1
    assert len(attempts) == 2
    assert client.read("/rc/t") == b"1"


def test_close_fails_pending_and_later_calls(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    [waiting] = stall_reads(proxy, client, 1)
    client.close()
    with pytest.raises(BusClosed):
        waiting.get(timeout=5)
    assert client.state is State.CLOSED
    with pytest.raises(BusClosed):
        client.read("/local/domain/0/name")
    proxy.gate.set()


def test_no_reconnect_when_disabled(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path, reconnect=False)
    client.domid()  # the proxy has accepted the connection
    proxy.drop_connections()
    assert client.conn.wait_state(State.CLOSED, timeout=5)
    with pytest.raises(ConnectionLost):
        client.read("/local/domain/0/name")


def test_state_listener_callback(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    seen: list[State] = []
    client.conn.subscribe_state(lambda conn, state: seen.append(state))
    restart(proxy, client)
    assert seen == [State.RECONNECTING, State.CONNECTED]
    client.close()
    assert seen[-1] is State.CLOSED


def test_broken_framing_from_the_daemon_reconnects(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    token = client.watch("/rc/frame")
    client.next_event(token, timeout=5)
    generation = client.conn.generation
    proxy.inject_raw(b"\x02\0\0\0\x01\0\0\0\0\0\0\0\x88\x13\0\0")  # a READ reply of 5000 bytes
    until(lambda: client.conn.generation == generation + 1 and client.state is State.CONNECTED,
          what="the reconnect")
    assert client.read("/local/domain/0/name") == b"Domain-0"
    assert client.next_event(token, timeout=5) == ("/rc/frame", token)  # re-registered
