"""The fake xenbus device itself (xsactor.testing.xenbus_device), file operation by file
operation, against the embedded daemon: what Linux's xenbus_dev_frontend.c does."""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor import Client, Mailbox, XenStoreError
from xsactor.daemon.config import DaemonConfig
from xsactor.daemon.quota import Quotas
from xsactor.daemon.server import Daemon
from xsactor.protocol import Decoder, Op, Packet
from xsactor.protocol.ops import HEADER
from xsactor.testing.xenbus_device import KERNEL_WATCHES, XenbusFile, XenbusKernel

from .conftest import GUEST, until


@pytest.fixture
def file(kernel: XenbusKernel) -> Iterator[XenbusFile]:
    f = kernel.open()
    yield f
    f.close()


def _write(file: XenbusFile, data: bytes) -> int:
    """write() as a program's thread does it (a write on the hub's thread is a violation)."""
    return int(gevent.get_hub().threadpool.apply(file.write, (data,)))


def _replies(file: XenbusFile, count: int) -> list[Packet]:
    decoder = Decoder(8192)
    out: list[Packet] = []

    def more() -> bool:
        with contextlib.suppress(BlockingIOError):
            out.extend(decoder.feed(file.read(65536)))
        return len(out) >= count
    until(more, what=f"{count} replies")
    return out


def _request(file: XenbusFile, op: int, *args: Any, req_id: int = 1, tx_id: int = 0) -> Packet:
    _write(file, Packet.request(op, *args, req_id=req_id, tx_id=tx_id).encode())
    return _replies(file, 1)[0]


def _watch(file: XenbusFile, path: str, token: str, req_id: int = 1) -> Packet:
    """WATCH: returns its first event, checking the OK (which may come after the event)."""
    _write(file, Packet.request(Op.WATCH, path, token, req_id=req_id).encode())
    got = _replies(file, 2)
    assert [p.payload for p in got if p.op == Op.WATCH] == [b"OK\0"]
    return next(p for p in got if p.op == Op.WATCH_EVENT)


def test_errors_fail_the_write(file: XenbusFile, kernel: XenbusKernel) -> None:
    with pytest.raises(OSError) as info:  # a header announcing 4081 bytes
        _write(file, HEADER.pack(Op.WRITE, 1, 0, 4081))
    assert info.value.errno == errno.E2BIG
    with pytest.raises(OSError) as info:  # more than the 4096-byte buffer
        _write(file, b"x" * 4097)
    assert info.value.errno == errno.EINVAL
    kernel.refuse_watches(errno.ENOSPC)
    with pytest.raises(OSError) as info:
        _write(file, Packet.request(Op.WATCH, "data", "t", req_id=3).encode())
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(BlockingIOError):  # no reply follows a failed write
        file.read(100)
    assert _request(file, Op.READ, "name").payload == b"guest5"


def test_byte_stream_reads_no_writability_no_end(file: XenbusFile) -> None:
    for req_id in (1, 2):
        _write(file, Packet.request(Op.READ, "name", req_id=req_id).encode())
    until(lambda: select.select([file.fileno()], [], [], 0)[0], what="readable")
    assert select.select([], [file.fileno()], [], 0)[1] == []  # never writable
    head = file.read(5)  # ends inside the first reply
    assert len(head) == 5
    until(lambda: len(file._read_buffers) == 2 * (16 + 6) - 5, what="second reply")
    rest = file.read(65536)  # spans both replies
    packets = Decoder().feed(head + rest)
    assert [(p.req_id, p.payload) for p in packets] == [(1, b"guest5"), (2, b"guest5")]
    with pytest.raises(BlockingIOError):  # empty: EAGAIN, never end of stream
        file.read(100)


def test_split_writes_are_buffered(file: XenbusFile, kernel: XenbusKernel) -> None:
    message = Packet.request(Op.READ, "name", req_id=9).encode()
    for piece in (message[:3], message[3:20], message[20:]):
        assert _write(file, piece) == len(piece)
    assert _replies(file, 1)[0].payload == b"guest5"
    assert kernel.violations == []
    two = message + Packet.request(Op.READ, "domid", req_id=10).encode()
    _write(file, two)  # the kernel acts on the first message and drops the rest
    assert [p.req_id for p in _replies(file, 1)] == [9]
    assert len(kernel.violations) == 1 and "dropped" in kernel.violations[0]
    kernel.violations.clear()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=6))
def test_any_split_of_a_message_is_one_request(file: XenbusFile, cuts: list[int]) -> None:
    message = Packet.request(Op.READ, "name", req_id=7).encode()  # 21 bytes
    points = sorted({c for c in cuts if c < len(message)})
    pieces = [message[a:b] for a, b in zip([0, *points], [*points, len(message)], strict=True)]
    for piece in pieces:
        assert _write(file, piece) == len(piece)
    assert [(p.req_id, p.payload) for p in _replies(file, 1)] == [(7, b"guest5")]


def test_the_kernels_own_replies(file: XenbusFile, kernel: XenbusKernel) -> None:
    other = kernel.open()
    try:
        started = _request(other, Op.TRANSACTION_START, "")
        tx_id = int(started.payload.rstrip(b"\0"))
        foreign = _request(file, Op.READ, "name", tx_id=tx_id)  # not this file's
        assert (foreign.op, foreign.payload) == (Op.ERROR, b"ENOENT\0")
        bad_end = _request(other, Op.TRANSACTION_END, "X", tx_id=tx_id)
        assert (bad_end.op, bad_end.payload) == (Op.ERROR, b"EINVAL\0")
        watch = _request(file, Op.WATCH, "data")  # one string only
        assert (watch.op, watch.payload) == (Op.ERROR, b"EINVAL\0")
        unknown = _request(file, Op.UNWATCH, "data", "never")
        assert (unknown.op, unknown.payload) == (Op.UNWATCH, b"OK\0")
        assert _request(other, Op.TRANSACTION_END, "F", tx_id=tx_id).payload == b"OK\0"
    finally:
        other.close()


def test_events_carry_the_callers_token_and_any_length(file: XenbusFile,
                                                       kernel: XenbusKernel) -> None:
    token = "t" * (4080 - len("data\0\0"))
    first = _watch(file, "data", token)
    assert first.args == [b"data", token.encode()]
    node = "data/" + "n" * 1500
    _write(file, Packet.write(node, "", req_id=2).encode())
    got = _replies(file, 2)
    event = next(p for p in got if p.op == Op.WATCH_EVENT)
    assert event.args == [node.encode(), token.encode()]
    assert len(event.payload) > 4096


def test_one_upstream_connection_shares_the_quota(rundir: str) -> None:
    quotas = Quotas(watches=8)
    daemon = Daemon(DaemonConfig(socket_path=os.path.join(rundir, "socket"),
                                 guest_dir=os.path.join(rundir, "guests"), quotas=quotas)).start()
    try:
        def accepted(watch: Any) -> int:
            count = 0
            while count < 20:
                try:
                    watch(f"w{count}")
                except (OSError, XenStoreError):
                    return count
                count += 1
            return count
        with Client(daemon.add_guest(6)) as plain:  # a guest of its own, no kernel
            alone = accepted(lambda t: plain.watch("data", t, mailbox=Mailbox()))
        kernel = XenbusKernel(daemon.add_guest(GUEST))
        a, b = kernel.open(), kernel.open()
        try:
            def watch_on(f: XenbusFile) -> Any:
                return lambda token: _watch(f, "data", token)
            assert accepted(watch_on(a)) == alone - len(KERNEL_WATCHES)
            with pytest.raises(OSError) as info:  # the other file shares the domain's quota
                _write(b, Packet.request(Op.WATCH, "data", "more", req_id=1).encode())
            assert info.value.errno == errno.E2BIG
        finally:
            a.close()
            b.close()
            kernel.close()
    finally:
        daemon.stop()


def test_watch_with_requests_outstanding_is_recorded(file: XenbusFile,
                                                     kernel: XenbusKernel) -> None:
    kernel.hold_replies()
    _write(file, Packet.request(Op.READ, "name", req_id=1).encode())
    watch = Packet.request(Op.WATCH, "data", "t", req_id=2).encode()
    writing = gevent.get_hub().threadpool.spawn(file.write, watch)
    until(lambda: any("outstanding" in v for v in kernel.violations), what="violation")
    kernel.release_replies()  # the READ's reply comes first: the real kernel deadlocks here
    assert writing.get(timeout=5) == len(watch)
    assert any("deadlock" in v for v in kernel.violations[1:])
    kernel.violations.clear()


def test_resume(file: XenbusFile, kernel: XenbusKernel) -> None:
    _watch(file, "data", "t")
    commit = int(_request(file, Op.TRANSACTION_START, "", req_id=2).payload.rstrip(b"\0"))
    abort = int(_request(file, Op.TRANSACTION_START, "", req_id=3).payload.rstrip(b"\0"))
    kernel.migrate()
    assert _replies(file, 1)[0].args == [b"data", b"t"]  # re-registered, fired again
    stale = _request(file, Op.READ, "name", req_id=4, tx_id=commit)
    assert (stale.op, stale.payload) == (Op.ERROR, b"ENOENT\0")  # from xenstored
    end = _request(file, Op.TRANSACTION_END, "T", req_id=5, tx_id=commit)
    assert (end.op, end.payload) == (Op.ERROR, b"EAGAIN\0")
    end = _request(file, Op.TRANSACTION_END, "F", req_id=6, tx_id=abort)
    assert (end.op, end.payload) == (Op.TRANSACTION_END, b"OK\0")
    assert file.transactions == []
    assert kernel.violations == []


def test_close_with_a_transaction_open_is_recorded(kernel: XenbusKernel) -> None:
    f = kernel.open()
    _request(f, Op.TRANSACTION_START, "")
    f.close()
    assert any("transaction" in v for v in kernel.violations)
    kernel.violations.clear()
