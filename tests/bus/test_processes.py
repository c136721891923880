"""Bus and processes: a dying process's watches and transactions are released before its
EXIT/DOWN go out, so whoever learns of its death can take its place at once."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from xsactor import Client
from xsactor.actors import process as px
from xsactor.actors.mailbox import ReceiveTimeout
from xsactor.testing.watches import daemon_watch_count

from .conftest import until

PATH = "/svc/state"
TOKEN = "svc"


def _events(timeout: float = 0.2) -> list[Any]:
    """Every watch event that reaches the caller within ``timeout`` of the last one."""
    got = []
    while True:
        try:
            got.append(px.receive(lambda m: type(m) is tuple and m[0] == "watch_event",
                                  timeout=timeout))
        except ReceiveTimeout:
            return got


def _subscriber(client: Client) -> None:
    client.watch(PATH, TOKEN)
    px.receive(lambda m: m == "stop")  # never returns: it is killed


@pytest.mark.parametrize("reason", [px.KILL, "crashed"])
def test_a_restarted_subscriber_never_sees_an_event_of_its_previous_life(
        embedded: Any, clients: Any, reason: str) -> None:
    client = clients(embedded.socket_path)
    writer = clients(embedded.socket_path)
    writer.write(PATH, "0")
    baseline = daemon_watch_count(embedded)
    pid, ref = px.spawn_monitor(_subscriber, client)
    until_watching(client, 1)
    writer.write(f"{PATH}/queued", "x")
    client.get_domain_path(0)  # its event is queued in the subscriber's mailbox
    # More are in flight when it dies: the daemon sends their events before it handles the
    # UNWATCH the death queues behind these writes.
    for i in range(50):
        gevent.spawn(client.write, f"{PATH}/old{i}", "x")
    gevent.sleep(0)  # the writes are queued, not answered
    px.exit(pid, reason)
    down = px.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] is ref, timeout=5)
    assert client.conn.watches() == []  # released before the DOWN
    assert px.process_info(px.self_pid()) is not None
    client.watch(PATH, TOKEN)  # the DOWN receiver takes its place at once
    assert down[4] in (px.KILLED, "crashed")
    first = _events()
    assert first == [("watch_event", PATH, TOKEN)], first  # fresh, and nothing old
    writer.write(f"{PATH}/new", "y")
    assert _events() == [("watch_event", f"{PATH}/new", TOKEN)]
    client.unwatch(PATH, TOKEN)
    client.get_domain_path(0)
    assert daemon_watch_count(embedded) == baseline


def until_watching(client: Client, count: int) -> None:
    until(lambda: len(client.conn.watches()) == count, what=f"{count} watches")
    client.get_domain_path(0)


def test_a_dead_process_transactions_are_ended(embedded: Any, clients: Any) -> None:
    client = clients(embedded.add_guest(5))
    client.read("domid")
    started = []

    def holder() -> None:
        for _ in range(3):
            started.append(client.transaction())
        px.receive(lambda m: m == "stop")

    pid, ref = px.spawn_monitor(holder)
    until(lambda: len(started) == 3, what="three transactions")
    assert sum(len(c.transactions) for c in embedded.xs.connections.values()) == 3
    info = px.process_info(pid)
    assert info is not None and info["resources"]["transactions"] == 3
    px.exit(pid, px.KILL)
    px.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] is ref, timeout=5)
    client.get_domain_path(0)
    assert sum(len(c.transactions) for c in embedded.xs.connections.values()) == 0


def test_a_committed_transaction_is_not_ended_again(embedded: Any, clients: Any) -> None:
    client = clients(embedded.socket_path)

    def worker() -> None:
        tid = client.transaction()
        client.write("/tx/p", "1", tid)
        client.commit(tid)

    _pid, ref = px.spawn_monitor(worker)
    px.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] is ref, timeout=5)
    assert client.read("/tx/p") == b"1"
    assert client.conn.held_transactions() == 0


def test_process_info_shows_the_watches(embedded: Any, clients: Any) -> None:
    client = clients(embedded.socket_path)

    def watcher() -> None:
        client.watch("/info/a", "a")
        client.watch("/info/b", "b")
        px.receive(lambda m: m == "stop")

    pid = px.spawn(watcher)
    until_watching(client, 2)
    info = px.process_info(pid)
    assert info is not None
    assert sorted(info["resources"]["watches"]) == [("/info/a", "a"), ("/info/b", "b")]
    px.exit(pid, px.KILL)
    gevent.sleep(0)
    assert client.conn.watches() == []


def test_plain_greenlets_are_not_made_processes(embedded: Any, clients: Any) -> None:
    client = clients(embedded.socket_path)
    seen = []

    def watch_as_a_process() -> None:
        seen.append(px.pid_of())
        client.watch("/plain", "p")

    g = gevent.spawn(watch_as_a_process)
    g.join()
    assert seen == [None]
    assert px.processes() == []  # watching did not adopt it
    gevent.sleep(0)
    client.get_domain_path(0)
    assert client.conn.watches() == []  # the existing reaper still works


def test_killed_while_watching_then_watched_again_at_once(proxy: Any, clients: Any) -> None:
    """The process dies before its WATCH is answered; the DOWN receiver watches again with the
    same path and token: the daemon ends with exactly the new watch, which gets events."""
    client = clients(proxy.socket_path)
    base = len(proxy.all_received)
    proxy.gate.clear()
    pid, ref = px.spawn_monitor(_subscriber, client)
    assert proxy.wait_received(base + 1)  # its WATCH is out, unanswered
    px.exit(pid, px.KILL)
    px.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] is ref, timeout=5)
    proxy.gate.set()
    client.watch(PATH, TOKEN)
    assert _events() == [("watch_event", PATH, TOKEN)]
    client.get_domain_path(0)
    assert proxy.watch_count() == 1
    client.write(f"{PATH}/later", "z")
    assert _events() == [("watch_event", f"{PATH}/later", TOKEN)]
    client.unwatch(PATH, TOKEN)
