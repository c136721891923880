"""The API's edges: strict integers, errors that name the request's real problem, and waits
that end when the connection will not come back."""

from __future__ import annotations

from collections.abc import Callable

import gevent
import pytest
from gevent.event import Event
from hypothesis import given
from hypothesis import strategies as st

from xsactor import Client, ConnectionLost, Mailbox
from xsactor.bus import DomainGone, State
from xsactor.bus.client import parse_integer
from xsactor.daemon.server import Daemon
from xsactor.protocol.errors import EINVAL, ENOENT

from .conftest import GUEST, until


@pytest.mark.parametrize("text", [b"0", b"42", b"-7", b"+12", b"007", b"123456789012345678901"])
def test_integers_as_lings_list_to_integer(text: bytes) -> None:
    assert parse_integer(text) == int(text)


@pytest.mark.parametrize("text", [b"1_000", b" 12", b"12 ", b"", b"+", b"-", b"0x10", b"1e3",
                                  b"\xd9\xa3", b"1.0", b"--1", b"12\n", "\u0663".encode()])
def test_integers_refused(text: bytes) -> None:
    with pytest.raises(EINVAL, match="not an integer"):
        parse_integer(text)


@given(st.integers())
def test_every_integer_round_trips(value: int) -> None:
    assert parse_integer(str(value).encode()) == value


def test_read_integer_names_the_path(client: Client) -> None:
    client.write("/edge/n", "1_000")
    with pytest.raises(EINVAL, match="/edge/n") as info:
        client.read_integer("/edge/n")
    assert "1_000" in str(info.value)


def test_read_str_of_bytes_that_are_not_utf8(client: Client) -> None:
    client.write("/edge/bin", b"ok\xff")
    with pytest.raises(EINVAL, match=r"not UTF-8.*/edge/bin"):
        client.read_str("/edge/bin")


def test_unknown_transaction_is_named(client: Client) -> None:
    client.write("/edge/t", "v")
    with pytest.raises(ENOENT, match="unknown transaction 12345"):
        client.read("/edge/t", 12345)
    tid = client.transaction()
    client.commit(tid)
    with pytest.raises(ENOENT, match=f"unknown transaction {int(tid)}"):
        client.commit(tid)
    with pytest.raises(ENOENT, match="unknown transaction"):
        client.write("/edge/t", "w", tid)
    assert client.read("/edge/t") == b"v"


@pytest.mark.parametrize("tid", ["5", 1.5, True, b"1", [1]])
def test_bad_tid_type(client: Client, tid: object) -> None:
    with pytest.raises(TypeError, match="transaction id"):
        client.read("/local/domain/0/name", tid)  # type: ignore[arg-type]


def test_bad_permission_entry_is_named_with_its_path(client: Client) -> None:
    client.write("/edge/p", "v")
    with pytest.raises(EINVAL, match=r"'x5'.*/edge/p"):
        client.set_perms("/edge/p", ["n0", "x5"])
    assert client.get_perms("/edge/p") == ["n0"]


def test_next_event_ends_when_the_connection_will_not_reconnect(
        embedded: Daemon, clients: Callable[..., Client]) -> None:
    client = clients(embedded.socket_path, reconnect=False)
    token = client.watch("/edge/w")
    assert client.next_event(token, timeout=5) == ("/edge/w", token)
    embedded.stop()
    with pytest.raises(ConnectionLost):
        client.next_event(token, timeout=5)
    assert client.state is State.CLOSED
    with pytest.raises(ConnectionLost):  # and again, at once
        client.next_event(token, timeout=5)


def test_receive_in_a_subscriber_greenlet_gets_the_loss(
        embedded: Daemon, clients: Callable[..., Client]) -> None:
    client = clients(embedded.socket_path, reconnect=False)
    registered = Event()

    def subscriber() -> object:
        client.watch("/edge/r")
        client.receive(timeout=5)  # the registration event
        registered.set()
        try:
            client.receive(timeout=5)
        except ConnectionLost as exc:
            return exc
        return None

    greenlet = gevent.spawn(subscriber)
    assert registered.wait(timeout=5)
    embedded.stop()
    assert isinstance(greenlet.get(timeout=5), ConnectionLost)


def test_queued_events_come_before_the_loss(embedded: Daemon,
                                            clients: Callable[..., Client]) -> None:
    client = clients(embedded.socket_path, reconnect=False)
    box = Mailbox()
    token = client.watch("/edge/q", mailbox=box)
    until(lambda: len(box) == 1)
    embedded.stop()
    until(lambda: client.state is State.CLOSED)
    assert client.next_event(token, mailbox=box, timeout=1) == ("/edge/q", token)
    with pytest.raises(ConnectionLost):
        client.next_event(token, mailbox=box, timeout=1)


def test_client_of_a_destroyed_domain_is_told(embedded: Daemon,
                                              clients: Callable[..., Client]) -> None:
    guest = clients(embedded.add_guest(GUEST))
    token = guest.watch("data")
    assert guest.next_event(token, timeout=5)[1] == token
    assert guest.domid() == GUEST
    embedded.set_domain_state(GUEST, "gone")
    with pytest.raises(DomainGone, match=f"domain {GUEST}"):
        guest.next_event(token, timeout=5)
    assert guest.wait_connected(timeout=5) is False
    assert guest.state is State.CLOSED


def test_a_daemon_restart_is_not_a_destroyed_domain(rundir: str,
                                                    clients: Callable[..., Client]) -> None:
    """A stopped daemon leaves its guest sockets behind (connection refused): the guest's
    client keeps reconnecting, and is back once a new daemon introduces the guest again."""
    from .conftest import _embedded

    first = _embedded(rundir)
    guest = clients(first.add_guest(GUEST))
    assert guest.domid() == GUEST
    first.stop()
    until(lambda: guest.state is State.RECONNECTING)
    second = _embedded(rundir)
    try:
        second.add_guest(GUEST)
        assert guest.wait_connected(timeout=10)
        assert guest.read_integer("domid") == GUEST
    finally:
        second.stop()
