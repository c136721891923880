"""The bus over the xenbus device: the fake Linux device of xsactor.testing.xenbus_device in
front of the embedded daemon. Every test ends with no violation of the kernel's rules.

Issue 8's points: 1 test_watch_waits_until_nothing_is_in_flight,
test_reaper_unwatch_waits_too; 2 test_watch_events_longer_than_4096; 3
test_unwatch_uses_the_registered_spelling; 4 test_blocking_writes_never_stall_the_hub,
test_watches_restored_after_a_reconnect; 5 test_eagain_from_write_fails_the_request;
6 test_resume_makes_transact_start_over, test_stale_transaction_write_is_eagain; 7
test_lost_reply_times_out_by_default, test_open_transactions_end_before_close; 8 the fake's
own tests in test_xenbus_device.py, and test_refused_watch_fails_only_that_request.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest

from xsactor import E2BIG, EAGAIN, EEXIST, ENOSPC, Client, mailbox_of
from xsactor.bus.errors import RequestTimeout
from xsactor.bus.transports import DEVICE_REQUEST_TIMEOUT, DeviceTransport
from xsactor.daemon.server import Daemon
from xsactor.protocol import Op
from xsactor.protocol.ops import HEADER
from xsactor.testing.xenbus_device import KERNEL_WATCHES, XenbusFile, XenbusKernel

from .conftest import GUEST, make_client, until

WATCH_TYPE = HEADER.pack(Op.WATCH, 0, 0, 0)[:4]
"""How a written WATCH message starts."""


@pytest.fixture
def device(kernel: XenbusKernel) -> Iterator[Callable[..., Client]]:
    """Make clients on new files of the fake device (closed at the end of the test)."""
    made: list[Client] = []

    def make(*, request_timeout: float = DEVICE_REQUEST_TIMEOUT, **options: Any) -> Client:
        client = make_client("unused", connector=lambda: kernel.transport(
            request_timeout=request_timeout), **options)
        made.append(client)
        return client
    yield make
    for client in made:
        client.close()


@pytest.fixture
def dev(device: Callable[..., Client]) -> Client:
    return device()


def file_of(client: Client) -> XenbusFile:
    transport = client.conn.transport
    assert isinstance(transport, DeviceTransport)
    return transport.file  # type: ignore[return-value]


def stall(kernel: XenbusKernel, client: Client, count: int) -> list[gevent.Greenlet]:
    """``count`` reads in flight in the kernel, their replies held."""
    kernel.hold_replies()
    readers = [gevent.spawn(client.read, "name") for _ in range(count)]
    until(lambda: file_of(client).outstanding == count, what="reads in flight")
    return readers


def test_api_over_the_device(dev: Client) -> None:
    assert dev.kind == "device"
    assert dev.domid() == GUEST
    dev.write("data/a", "1")
    assert dev.read("data/a") == b"1"
    assert dev.read(f"/local/domain/{GUEST}/data/a") == b"1"
    assert dev.list("data") == ["a"]
    tid = dev.transaction()
    dev.write("data/b", "2", tid)
    dev.commit(tid)
    assert dev.read("data/b") == b"2"
    assert dev.get_perms("data/a") == [f"n{GUEST}"]


def test_one_whole_message_per_write_reads_pipelined(dev: Client, kernel: XenbusKernel) -> None:
    file = file_of(dev)
    before = len(file.writes)
    readers = stall(kernel, dev, 50)  # 50 in flight at once: pipelined
    kernel.release_replies()
    gevent.joinall(readers, timeout=20, raise_error=True)
    writes = file.writes[before:]
    assert len(writes) == 50
    for record in writes:
        assert len(record) == 16 + HEADER.unpack_from(record)[3]


def test_4080_byte_limit(dev: Client) -> None:
    file = file_of(dev)
    before = len(file.writes)
    with pytest.raises(E2BIG):
        dev.write("data/big", b"v" * (4080 - len("data/big")))  # payload 4081
    with pytest.raises(E2BIG):
        dev.watch("data", "t" * (4080 - len("data\0\0") + 1))
    assert len(file.writes) == before
    token = "t" * (4080 - len("data\0\0"))
    dev.watch("data", token)
    assert HEADER.unpack_from(file.writes[-1])[3] == 4080
    assert dev.next_event(token, timeout=5) == ("data", token)


def test_watch_events_with_garbage_ids(dev: Client, kernel: XenbusKernel) -> None:
    token = dev.watch("data", "tok")
    assert dev.next_event(token, timeout=5) == ("data", "tok")
    for i in range(20):
        dev.write(f"data/e{i}", "x")  # each event carries random req_id / tx_id
    seen = {dev.next_event(token, timeout=5)[0] for _ in range(20)}
    assert seen == {f"data/e{i}" for i in range(20)}
    with pytest.raises(EEXIST):  # refused by the client: the kernel would make a second one
        dev.watch("data", "tok")
    dev.unwatch("data", "tok")
    assert file_of(dev).watches == []


# -- 1: WATCH / UNWATCH only when nothing else of the file is in flight --------------------

def test_watch_waits_until_nothing_is_in_flight(dev: Client, kernel: XenbusKernel) -> None:
    dev.domid()  # known: watch() sends nothing else first
    readers = stall(kernel, dev, 10)
    watcher = gevent.spawn(dev.watch, "data", "t", mailbox=mailbox_of())
    until(lambda: dev.conn._device and dev.conn._device.held, what="WATCH held back")
    more = [gevent.spawn(dev.read, "domid") for _ in range(5)]  # queued behind the WATCH
    until(lambda: len(dev.conn._device.held) == 6, what="reads queued behind")  # type: ignore
    assert not any(w.startswith(WATCH_TYPE) for w in file_of(dev).writes)
    kernel.release_replies()
    gevent.joinall([*readers, watcher, *more], timeout=10, raise_error=True)
    assert [r.value for r in more] == [str(GUEST).encode()] * 5
    assert dev.next_event("t", timeout=5) == ("data", "t")


def test_reaper_unwatch_waits_too(dev: Client, kernel: XenbusKernel) -> None:
    leave = gevent.event.Event()

    def subscriber() -> None:
        dev.watch("data", "gone")
        leave.wait()
    dev.domid()
    gone = gevent.spawn(subscriber)
    until(lambda: len(file_of(dev).watches) == 1, what="watch registered")
    readers = stall(kernel, dev, 10)
    leave.set()
    gone.join(timeout=5)  # the subscriber is dead: its UNWATCH waits for the reads
    until(lambda: dev.conn._device is not None and len(dev.conn._device.held) == 1,
          what="UNWATCH held back")
    kernel.release_replies()
    gevent.joinall(readers, timeout=10, raise_error=True)
    until(lambda: file_of(dev).watches == [], what="the reaper's UNWATCH")


# -- 2: long watch events ------------------------------------------------------------------

def test_watch_events_longer_than_4096(dev: Client) -> None:
    token = "t" * (4080 - len("data\0\0"))
    dev.watch("data", token)
    assert dev.next_event(token, timeout=5) == ("data", token)
    generation = dev.conn.generation
    node = "data/" + "n" * 1500
    dev.write(node, "")  # event payload: 1506 + 4075 bytes
    assert dev.next_event(token, timeout=5) == (node, token)
    assert dev.conn.generation == generation  # no reconnect


# -- 3: UNWATCH spelling -------------------------------------------------------------------

def test_unwatch_uses_the_registered_spelling(dev: Client, kernel: XenbusKernel) -> None:
    dev.watch("data", "t")
    dev.unwatch(f"/local/domain/{GUEST}/data", "t")
    assert file_of(dev).watches == []
    assert kernel.watch_count() == len(KERNEL_WATCHES)  # no kernel watch leaked


# -- 4: blocking writes --------------------------------------------------------------------

def test_blocking_writes_never_stall_the_hub(dev: Client, kernel: XenbusKernel,
                                             embedded: Daemon) -> None:
    # not the ``clients`` fixture: its stray-watch check cannot see the watches ``dev`` holds
    # through the kernel
    with make_client(embedded.socket_path) as dom0:
        _hub_runs_while_the_device_blocks(dev, kernel, dom0)


def _hub_runs_while_the_device_blocks(dev: Client, kernel: XenbusKernel, dom0: Client) -> None:
    dev.domid()
    kernel.hold_replies()  # the kernel's WATCH round trip blocks write()
    watcher = gevent.spawn(dev.watch, "data", "t", mailbox=mailbox_of())
    until(lambda: any(w.startswith(WATCH_TYPE) for w in file_of(dev).writes),
          what="WATCH written")
    assert dom0.read(f"/local/domain/{GUEST}/name") == b"guest5"  # the hub runs meanwhile
    assert not watcher.ready()
    kernel.release_replies()
    assert watcher.get(timeout=5) == "t"
    kernel.suspend()  # writes block until the resume
    writer = gevent.spawn(dev.write, "data/s", "1")
    assert dom0.read(f"/local/domain/{GUEST}/name") == b"guest5"
    assert not writer.ready()
    kernel.resume()
    writer.get(timeout=5)
    assert dev.read("data/s") == b"1"


def test_watches_restored_after_a_reconnect(dev: Client, kernel: XenbusKernel) -> None:
    tokens = [dev.watch(f"data/w{i}") for i in range(5)]
    for token in tokens:
        dev.next_event(token, timeout=5)
    old = file_of(dev)
    dev.conn.transport.close()  # type: ignore[union-attr]
    until(lambda: dev.conn.transport is not None and file_of(dev) is not old
          and len(file_of(dev).watches) == 5, what="watches restored on a new file")
    for token in tokens:
        assert dev.next_event(token, timeout=5)[1] == token


# -- 5: EAGAIN from write() ----------------------------------------------------------------

def test_eagain_from_write_fails_the_request(dev: Client, kernel: XenbusKernel) -> None:
    kernel.refuse_watches(errno.EAGAIN)
    with gevent.Timeout(5):
        with pytest.raises(EAGAIN):
            dev.watch("data", "t")
        assert dev.read("name") == b"guest5"
    assert dev.conn.watches() == []


def test_refused_watch_fails_only_that_request(dev: Client, kernel: XenbusKernel) -> None:
    kernel.refuse_watches(errno.ENOSPC)
    with pytest.raises(ENOSPC):
        dev.watch("data/refused")
    assert dev.conn.watches() == []
    assert dev.read("name") == b"guest5"  # still connected
    token = dev.watch("data")
    assert dev.next_event(token, timeout=5) == ("data", token)
    assert len(mailbox_of()) == 0


# -- 6: migration --------------------------------------------------------------------------

def test_resume_makes_transact_start_over(dev: Client, kernel: XenbusKernel) -> None:
    dev.write("data/n", "1")
    seen: list[Any] = []

    def bump(tid: int) -> int:
        value = dev.read("data/n", tid, default=None)
        seen.append(value)
        if len(seen) == 1:
            kernel.migrate()  # the transaction is gone on the new host
        again = dev.read("data/n", tid, default=None)  # a stale tx_id: ENOENT upstream
        seen.append(again)
        dev.write("data/n", int(again) + 1, tid)
        return int(again)

    assert dev.transact(bump) == 1
    assert None not in seen
    assert dev.read("data/n") == b"2"


def test_missing_node_in_a_live_transaction_is_still_the_default(dev: Client) -> None:
    tid = dev.transaction()
    assert dev.read("data/none", tid, default="d") == "d"  # the probe says: tx alive
    assert not dev.exists("data/none", tid)
    dev.commit(tid)


def test_stale_transaction_write_is_eagain(dev: Client, kernel: XenbusKernel) -> None:
    tid = dev.transaction()
    kernel.migrate()
    with pytest.raises(EAGAIN):
        dev.write("data/x", "1", tid)
    with pytest.raises(EAGAIN):
        dev.commit(tid)  # the kernel's own answer to END T of an old generation
    assert dev.read("data/x", default=None) is None


# -- 7: lost replies; transactions ended before close ---------------------------------------

def test_lost_reply_times_out_by_default(device: Callable[..., Client],
                                         kernel: XenbusKernel) -> None:
    assert device(default_timeout=None).conn._timeout == DEVICE_REQUEST_TIMEOUT
    client = device(default_timeout=None, request_timeout=0.3)
    kernel.drop_replies(1)
    with gevent.Timeout(5), pytest.raises(RequestTimeout):
        client.read("name")
    kernel.drop_replies(1)
    with gevent.Timeout(5), pytest.raises(RequestTimeout):
        client.read("name", timeout=None)  # None on the device is the device's timeout
    assert client.read("name") == b"guest5"


def test_open_transactions_end_before_close(device: Callable[..., Client],
                                            kernel: XenbusKernel) -> None:
    client = device()
    client.transaction()
    file = file_of(client)
    client.close()
    assert file.transactions == []  # ended by the bus, not by xenbus_worker



def test_the_plugin_fixture(xenbus_device: XenbusKernel) -> None:
    """Users' fixture: the fake device on the embedded daemon in a subprocess."""
    with Client(connector=xenbus_device.transport) as client:
        client.write("data/p", "1")
        assert client.transact(lambda tid: client.read("data/p", tid)) == b"1"
        xenbus_device.migrate()
        assert client.read("data/p") == b"1"
