"""The xenbus device transport, through a fake kernel that enforces the device's rules."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from xsactor import E2BIG, EEXIST, EINVAL, Client, mailbox_of
from xsactor.bus.transports import DeviceTransport
from xsactor.protocol import Op
from xsactor.protocol.ops import HEADER

from .conftest import GUEST, make_client
from .fakekernel import FakeXenbusKernel


@pytest.fixture
def kernel(server: Any) -> Iterator[FakeXenbusKernel]:
    k = FakeXenbusKernel(server.add_guest(GUEST))
    yield k
    k.close()


@pytest.fixture
def dev(kernel: FakeXenbusKernel) -> Iterator[Client]:
    client = make_client("unused", transport=DeviceTransport(kernel.user_fd, "fake-xenbus",
                                                              owns_fd=False))
    yield client
    client.close()
    assert kernel.violations == []


def test_api_over_the_device(dev: Client, kernel: FakeXenbusKernel) -> None:
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


def test_one_whole_message_per_write(dev: Client, kernel: FakeXenbusKernel) -> None:
    before = len(kernel.writes)
    greenlets = [gevent.spawn(dev.write, f"data/k{i}", str(i)) for i in range(100)]
    gevent.joinall(greenlets, timeout=20, raise_error=True)
    writes = kernel.writes[before:]
    assert len(writes) == 100  # one write() per message, even when queued together
    for record in writes:
        _op, _req, _tx, length = HEADER.unpack_from(record)
        assert len(record) == 16 + length
    assert kernel.violations == []


def test_4080_byte_limit(dev: Client, kernel: FakeXenbusKernel) -> None:
    before = len(kernel.writes)
    path = "data/big"
    with pytest.raises(E2BIG):
        dev.write(path, b"v" * (4080 - len(path)))  # payload 4081: refused, nothing written
    with pytest.raises(E2BIG):
        dev.watch("data", "t" * (4080 - len("data\0\0") + 1))
    assert len(kernel.writes) == before
    # A payload of exactly 4080 goes through (a guest's node quota forbids such a value, so
    # a WATCH with a long token makes the message).
    token = "t" * (4080 - len("data\0\0"))
    dev.watch("data", token)
    assert HEADER.unpack_from(kernel.writes[-1])[3] == 4080
    assert dev.next_event(token, timeout=5) == ("data", token)


def test_watch_answered_by_the_kernel_events_with_garbage_ids(dev: Client,
                                                              kernel: FakeXenbusKernel) -> None:
    token = dev.watch("data", "tok")
    assert kernel.answered_watch_ops == 1
    assert dev.next_event(token, timeout=5) == ("data", "tok")
    for i in range(20):
        dev.write(f"data/e{i}", "x")  # each event carries random req_id / tx_id
    seen = {dev.next_event(token, timeout=5)[0] for _ in range(20)}
    assert seen == {f"data/e{i}" for i in range(20)}
    with pytest.raises(EEXIST):  # refused locally, as the socket daemon would
        dev.watch("data", "tok")
    dev.unwatch("data", "tok")
    assert kernel.answered_watch_ops == 2
    assert kernel.watches == {}


def test_first_event_before_the_ok(server: Any) -> None:
    kernel = FakeXenbusKernel(server.add_guest(GUEST), event_before_ok=True)
    client = make_client("unused", transport=DeviceTransport(kernel.user_fd, owns_fd=False))
    try:
        token = client.watch("data")
        assert client.next_event(token, timeout=5) == ("data", token)
        assert kernel.violations == []
    finally:
        client.close()
        kernel.close()


class RefusingDevice(DeviceTransport):
    """The real device fails write() with the daemon's errno when it refuses a WATCH."""

    def try_send(self, data: Any) -> int:
        if HEADER.unpack_from(data)[0] == Op.WATCH and b"refuse" in bytes(data):
            raise OSError(errno.EINVAL, "Invalid argument")
        return super().try_send(data)


def test_refused_write_fails_only_that_request(kernel: FakeXenbusKernel) -> None:
    client = make_client("unused", transport=RefusingDevice(kernel.user_fd, owns_fd=False))
    try:
        with pytest.raises(EINVAL):
            client.watch("data/refuse")
        assert client.conn.watches() == []
        assert client.read("name") == f"guest{GUEST}".encode()  # still connected
        token = client.watch("data")
        assert client.next_event(token, timeout=5) == ("data", token)
        assert len(mailbox_of()) == 0
    finally:
        client.close()
