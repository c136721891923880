"""§1 Framing and message types: headers, reply payloads, ordering, payload limits."""

from __future__ import annotations

import pytest

from xsactor.protocol import HEADER_SIZE, Op, Packet
from xsactor.protocol.errors import ConnectionLost
from xsactor.protocol.ops import HEADER

from .conftest import Conn, Harness
from .util import OK, assert_error, assert_ok, quota_field, watch, wr


def test_reply_echoes_req_id_and_type(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a"), b"v")
    reply = c.exchange(Packet.request(Op.READ, daemon.p("a"), req_id=0xDEADBEEF))
    assert (reply.op, reply.req_id, reply.tx_id, reply.payload) == (Op.READ, 0xDEADBEEF, 0, b"v")


def test_error_reply_echoes_req_id(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.exchange(Packet.request(Op.READ, daemon.p("missing"), req_id=0xFFFFFFFF))
    assert (reply.op, reply.req_id, reply.tx_id) == (Op.ERROR, 0xFFFFFFFF, 0)
    assert reply.payload == b"ENOENT\0"


def test_error_reply_echoes_rejected_tx_id(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.exchange(Packet.request(Op.READ, daemon.p("a"), req_id=5, tx_id=0x12345678))
    assert (reply.op, reply.req_id, reply.tx_id, reply.payload) == (
        Op.ERROR, 5, 0x12345678, b"ENOENT\0")


def test_reply_echoes_valid_tx_id(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    reply = c.exchange(Packet.write(daemon.p("a"), b"1", req_id=77, tx_id=tx))
    assert (reply.op, reply.req_id, reply.tx_id, reply.payload) == (Op.WRITE, 77, tx, OK)


def test_transaction_start_reply_keeps_request_tx_id(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.exchange(Packet(Op.TRANSACTION_START, 9, 0, b"\0"))
    assert (reply.op, reply.req_id, reply.tx_id) == (Op.TRANSACTION_START, 9, 0)
    assert reply.payload.endswith(b"\0")
    assert int(reply.payload[:-1]) > 0


@pytest.mark.parametrize("op, args", [
    (Op.WRITE, ("w", b"x")),
    (Op.MKDIR, ("m",)),
    (Op.RM, ("w",)),
    (Op.SET_PERMS, ("w", "b0")),
    (Op.WATCH, ("w", "tok")),
    (Op.UNWATCH, ("w", "tok")),
    (Op.RESET_WATCHES, ()),
])
def test_success_without_data_is_ok_nul(daemon: Harness, op: int, args: tuple) -> None:
    c = daemon.dom0()
    c.write(daemon.p("w"), b"1")
    if op == Op.UNWATCH:
        c.watch(daemon.p("w"), "tok")
    if op == Op.WRITE:
        reply = wr(c, daemon.p(args[0]), args[1])
    else:
        first = (daemon.p(args[0]),) if args else ()
        reply = c.request(op, *first, *args[1:])
    assert (reply.op, reply.payload) == (op, OK)


def test_transaction_end_replies_ok_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    assert_ok(c.request(Op.TRANSACTION_END, "F", tx_id=tx), Op.TRANSACTION_END)


def test_error_payload_is_name_and_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.request(Op.READ, daemon.p("nope"))
    assert reply.op == Op.ERROR
    assert reply.payload == b"ENOENT\0"
    reply = c.request(Op.READ, daemon.p("bad.char"))
    assert reply.payload == b"EINVAL\0"


def test_read_returns_raw_bytes_without_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    value = b"\x00a\xffb\x00\x01 \n"
    c.write(daemon.p("raw"), value)
    reply = c.request(Op.READ, daemon.p("raw"))
    assert (reply.op, reply.payload) == (Op.READ, value)


def test_read_empty_value_has_zero_length(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("empty"), b"")
    c.send(Packet.request(Op.READ, daemon.p("empty"), req_id=3))
    reply = c.reply_to(3)
    assert (reply.op, reply.payload) == (Op.READ, b"")
    assert c.log[-1].payload == b""


def test_mkdir_node_reads_empty(daemon: Harness) -> None:
    c = daemon.dom0()
    c.mkdir(daemon.p("dir"))
    assert c.read(daemon.p("dir")) == b""


def test_write_value_is_everything_after_first_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("nul").encode()
    assert_ok(c.raw_request(Op.WRITE, path + b"\0a\0b\0"))
    assert c.read(path) == b"a\0b\0"


def test_write_empty_value(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("e"), b"old")
    assert_ok(c.raw_request(Op.WRITE, daemon.p("e").encode() + b"\0"))
    assert c.read(daemon.p("e")) == b""


def test_pipelined_replies_come_in_arrival_order(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a"), b"A")
    c.send(Packet.request(Op.READ, daemon.p("a"), req_id=7),
           Packet.request(Op.READ, daemon.p("missing"), req_id=3),
           Packet.request(Op.GET_DOMAIN_PATH, 5, req_id=9))
    got = [c.recv() for _ in range(3)]
    assert [p.req_id for p in got] == [7, 3, 9]
    assert [p.op for p in got] == [Op.READ, Op.ERROR, Op.GET_DOMAIN_PATH]
    assert [p.payload for p in got] == [b"A", b"ENOENT\0", b"/local/domain/5\0"]


def test_pipelined_writes_apply_in_order(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("seq")
    packets = [Packet.write(path, str(i), req_id=100 + i) for i in range(20)]
    packets.append(Packet.request(Op.READ, path, req_id=500))
    c.send(*packets)
    got = [c.recv() for _ in packets]
    assert [p.req_id for p in got] == [p.req_id for p in packets]
    assert got[-1].payload == b"19"


def test_header_split_across_writes(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("s"), b"split")
    data = Packet.request(Op.READ, daemon.p("s"), req_id=42).encode()
    for i in range(HEADER_SIZE):
        c.send_raw(data[i:i + 1])
    c.send_raw(data[HEADER_SIZE:])
    reply = c.recv()
    assert (reply.req_id, reply.payload) == (42, b"split")


def test_payload_split_across_writes(daemon: Harness) -> None:
    c = daemon.dom0()
    data = Packet.write(daemon.p("s"), b"abcdef", req_id=43).encode()
    c.send_raw(data[:HEADER_SIZE + 3])
    c.send_raw(data[HEADER_SIZE + 3:-2])
    c.send_raw(data[-2:])
    assert_ok(c.recv())
    assert c.read(daemon.p("s")) == b"abcdef"


def test_payload_of_exactly_4096_bytes_works(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("big").encode()
    value = b"v" * (4096 - len(path) - 1)
    payload = path + b"\0" + value
    assert len(payload) == 4096
    assert_ok(c.raw_request(Op.WRITE, payload))
    assert c.read(path) == value


def test_payload_over_4096_closes_the_socket(daemon: Harness) -> None:
    bystander = daemon.dom0()
    bystander.write(daemon.p("keep"), b"1")
    c = daemon.dom0()
    c.send(Packet(Op.WRITE, 1, 0, b"x" * 4097))
    assert c.is_closed(timeout=5)
    assert not any(p.req_id == 1 for p in c.log), "no reply to the oversized request"
    assert bystander.read(daemon.p("keep")) == b"1"
    fresh = daemon.dom0()
    assert fresh.read(daemon.p("keep")) == b"1"


def test_payload_over_4096_header_alone_closes(daemon: Harness) -> None:
    c = daemon.dom0()
    c.send_raw(HEADER.pack(Op.READ, 1, 0, 100000))
    assert c.is_closed(timeout=5)
    assert daemon.dom0().request(Op.GET_DOMAIN_PATH, 1).payload == b"/local/domain/1\0"


def test_guest_payload_over_4096_gets_no_reply(daemon: Harness) -> None:
    g = daemon.guest()
    g.send(Packet(Op.WRITE, 1, 0, b"x" * 5000))
    try:
        packet = g.recv(timeout=1.0)
    except (ConnectionLost, TimeoutError):
        pass
    else:
        pytest.fail(f"a reply to an oversized request: {packet!r}")
    other = daemon.guest()
    assert other.read(f"{other.home}/domid") == str(other.domid).encode()
    assert daemon.dom0().read(f"{g.home}/domid") == str(g.domid).encode()


def _refused(conn: Conn) -> bool:
    """Whether the daemon closes ``conn`` without answering a request sent on it."""
    try:
        conn.send(Packet.write("data/after", b"x", req_id=7))
    except OSError:
        return True  # closed before the request could even be sent
    return conn.is_closed(timeout=10) and not any(p.req_id == 7 for p in conn.log)


def test_guest_protocol_error_ignores_the_domain_for_good(daemon: Harness) -> None:
    """A guest is one ring. A frame announcing more than 4096 bytes makes 4.17 flag the ring
    (error 3) and ignore the domain for good: its watches and transactions are dropped,
    nothing it sends is answered again, not even after a re-INTRODUCE. The domain stays
    introduced, its nodes stay, and RELEASE still ends it."""
    g = daemon.guest()
    c = daemon.dom0()
    g.write("data/before", b"1")
    g.watch("data", "w1")
    g.watch("control", "w2")
    g.start()
    watch(c, "@releaseDomain", "rel")
    g.send_raw(HEADER.pack(Op.WRITE, 0xBAD, 0, 4097) + b"x" * 64)
    assert g.is_closed(timeout=10)
    assert not any(p.req_id == 0xBAD for p in g.log)
    assert _refused(daemon.connect(g.domid))
    usage = c.control("quota", g.domid).decode()
    assert quota_field(usage, "watches")[0] == "0"
    assert quota_field(usage, "transactions")[0] == "0"
    c.introduce(g.domid, 0, 1)
    assert _refused(daemon.connect(g.domid))
    assert c.call(Op.IS_DOMAIN_INTRODUCED, g.domid) == b"T\0"
    assert c.read(f"{g.home}/data/before") == b"1"
    assert_error(c.request(Op.READ, f"{g.home}/data/after"), "ENOENT")
    c.release(g.domid)
    assert c.next_event() == (b"@releaseDomain", b"rel")
    assert_error(c.request(Op.READ, f"{g.home}/data/before"), "ENOENT")


@pytest.mark.parametrize("op", [15, 16, 20, 23, 24, 100, 0xFFFF, 0xFFFFFFFF])
def test_unknown_message_types_get_enosys(daemon: Harness, op: int) -> None:
    c = daemon.dom0()
    reply = c.exchange(Packet(op, 31, 0, b"/x\0"))
    assert (reply.op, reply.req_id) == (Op.ERROR, 31)
    assert_error(reply, "ENOSYS")
    assert c.request(Op.GET_DOMAIN_PATH, 3).payload == b"/local/domain/3\0"


def test_unknown_message_type_from_guest_gets_enosys(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.exchange(Packet(20, 1, 0, b"")), "ENOSYS")


def test_watch_replies_ok_before_initial_event(daemon: Harness) -> None:
    c = daemon.dom0()
    c.send(Packet.request(Op.WATCH, daemon.p("w"), "tok", req_id=11))
    first, second = c.recv(), c.recv()
    assert (first.op, first.req_id, first.payload) == (Op.WATCH, 11, OK)
    assert (second.op, second.payload) == (Op.WATCH_EVENT, daemon.p("w").encode() + b"\0tok\0")


def test_event_header_has_zero_ids(daemon: Harness) -> None:
    c = daemon.dom0()
    c.send(Packet.request(Op.WATCH, daemon.p("w"), "tok", req_id=11, tx_id=0))
    c.recv()
    event = c.recv()
    assert (event.op, event.req_id, event.tx_id) == (Op.WATCH_EVENT, 0, 0)
    c.send(Packet.write(daemon.p("w"), b"x", req_id=12))
    event = c.recv()
    assert (event.op, event.req_id, event.tx_id) == (Op.WATCH_EVENT, 0, 0)


@pytest.mark.parametrize("op", [Op.WRITE, Op.RM, Op.SET_PERMS, Op.MKDIR])
def test_event_on_same_connection_precedes_reply(daemon: Harness, op: int) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    if op != Op.MKDIR:
        c.write(path, b"1")
    watch(c, path, "tok")
    if op == Op.WRITE:
        packet = Packet.write(path, b"2", req_id=21)
    elif op == Op.SET_PERMS:
        packet = Packet.request(op, path, "b0", req_id=21)
    else:
        packet = Packet.request(op, path, req_id=21)
    c.send(packet)
    first, second = c.recv(), c.recv()
    assert (first.op, first.payload) == (Op.WATCH_EVENT, path.encode() + b"\0tok\0")
    assert (second.op, second.req_id, second.payload) == (op, 21, OK)


def test_event_to_other_connection(daemon: Harness) -> None:
    watcher, writer = daemon.dom0(), daemon.dom0()
    path = daemon.p("w")
    watch(watcher, path, "t")
    writer.write(path, b"1")
    assert watcher.next_event() == (path.encode(), b"t")


def test_header_is_16_bytes_little_endian(daemon: Harness) -> None:
    c = daemon.dom0()
    payload = b"7\0"
    c.send_raw((10).to_bytes(4, "little") + (0x01020304).to_bytes(4, "little")
               + (0).to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload)
    reply = c.recv()
    assert (reply.op, reply.req_id, reply.payload) == (Op.GET_DOMAIN_PATH, 0x01020304,
                                                       b"/local/domain/7\0")
    assert c.log[-1].encode()[:4] == (10).to_bytes(4, "little")
