"""A supervised tree on a real bus: a daemon restart is not a crash storm, and declared
watches are registered for each new instance (the runner's gate and registrar)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from xsactor.actors import process as proc
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.bus.client import Client
from xsactor.bus.connection import State
from xsactor.runner import ConnectionGate, watch_registrar
from xsactor.testing.daemons import DaemonUnderTest


@pytest.fixture
def client(xenstored: DaemonUnderTest) -> Iterator[Client]:
    proc.trap_exit(True)
    client = Client(xenstored.socket_path, backoff_initial=0.01, backoff_max=0.1)
    previous = sup.set_watch_registrar(watch_registrar(client))
    try:
        yield client
    finally:
        sup.set_watch_registrar(previous)
        client.close()


def subscriber(client: Client, owner: proc.Pid) -> None:
    """Tell the owner of each watch event; read on request (a request fails when the bus is
    not connected: the subscriber then dies of ConnectionLost)."""
    while True:
        message = proc.receive()
        if message[0] == "watch_event":
            proc.send(owner, ("event", proc.self_pid(), message[2]))
        elif message[0] == "read":
            client.read("/data/x", default=b"")


def start_subscriber(client: Client, owner: proc.Pid) -> proc.Pid:
    return proc.spawn_link(subscriber, client, owner)


def event(timeout: float = 10.0) -> tuple[proc.Pid, Any]:
    message = proc.receive(("event", proc.ANY, proc.ANY), timeout)
    return message[1], message[2]


def test_a_daemon_restart_does_not_use_up_the_intensity(
        client: Client, xenstored: DaemonUnderTest) -> None:
    owner = proc.self_pid()
    spec = ChildSpec("sub", lambda: start_subscriber(client, owner),
                     watches=[("/data/x", "x-token")])
    s = sup.start_link(SupFlags(intensity=0, gate=ConnectionGate(client)), [spec])
    first, token = event()
    assert token == "x-token"  # the registration event reached the child's own mailbox
    assert len(client.conn.watches()) == 1

    xenstored.stop()
    assert client.conn.wait_state(State.RECONNECTING, timeout=10)
    down = proc.monitor(first)
    proc.send(first, ("read",))
    reason = proc.receive(("DOWN", down, "process", first, proc.ANY), 5)[4]
    assert type(reason).__name__ == "ConnectionLost"
    # intensity 0, yet no give-up: the death does not count, the restart waits for the bus
    assert sup.which_children(s) == [sup.ChildInfo("sub", sup.RESTARTING, "worker")]

    xenstored.start()
    second, token = event()
    assert second is not first and token == "x-token"
    assert proc.is_alive(s)
    assert sup.describe(s)["restarts_in_window"] == 0
    # one watch: the dead instance's was released, the new one's registered
    assert [(w.path, w.token) for w in client.conn.watches()] == [("/data/x", "x-token")]
    proc.exit(s, "shutdown")
    assert proc.receive(("EXIT", s, proc.ANY), 10)[2] == "shutdown"
    assert client.conn.watches() == []


def test_a_restarted_subscriber_gets_a_fresh_first_event_and_nothing_from_before(
        client: Client) -> None:
    owner = proc.self_pid()
    spec = ChildSpec("sub", lambda: start_subscriber(client, owner),
                     watches=[("/data/y", "y-token")])
    s = sup.start_link(SupFlags(), [spec])
    first, _ = event()
    down = proc.monitor(first)
    proc.exit(first, "boom")
    proc.receive(("DOWN", down, "process", first, proc.ANY), 5)
    second, token = event()
    assert second is not first and token == "y-token"
    client.write("/data/y", "1")
    assert event() == (second, "y-token")
    with pytest.raises(proc.ReceiveTimeout):
        event(timeout=0.1)  # exactly one event per change, all to the live instance
    proc.exit(s, "shutdown")
    proc.receive(("EXIT", s, proc.ANY), 10)
