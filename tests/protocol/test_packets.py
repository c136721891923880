"""The packet codec: encoding, incremental decoding, framing errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsactor.protocol import Decoder, Op, Packet, ProtocolError, join_args, split_args
from xsactor.protocol.ops import HEADER_SIZE, PAYLOAD_MAX, op_name

u32 = st.integers(min_value=0, max_value=2**32 - 1)
packets = st.builds(Packet, u32, u32, u32, st.binary(max_size=PAYLOAD_MAX))


def test_header_is_four_little_endian_u32() -> None:
    data = Packet(Op.WRITE, 7, 3, b"/a\0b").encode()
    assert data[:HEADER_SIZE] == struct.pack("<IIII", 11, 7, 3, 4)
    assert data[HEADER_SIZE:] == b"/a\0b"


def test_request_terminates_every_argument() -> None:
    assert Packet.request(Op.WATCH, "/a", b"tok").payload == b"/a\0tok\0"
    assert Packet.request(Op.GET_DOMAIN_PATH, 7).payload == b"7\0"


def test_write_value_has_no_terminator() -> None:
    assert Packet.write("/a", b"x\0y").payload == b"/a\0x\0y"
    assert Packet.write("/a", 5).payload == b"/a\x005"


def test_reply_copies_ids() -> None:
    reply = Packet(Op.READ, 9, 4, b"/a\0").reply(b"ENOENT\0", Op.ERROR)
    assert (reply.op, reply.req_id, reply.tx_id) == (Op.ERROR, 9, 4)


def test_bool_is_not_an_argument() -> None:
    with pytest.raises(TypeError):
        join_args(True)


@given(st.lists(st.binary(max_size=20).filter(lambda b: b"\0" not in b), max_size=6))
def test_split_inverts_join(args: list[bytes]) -> None:
    assert split_args(join_args(*args)) == args


def test_split_drops_bytes_after_last_nul() -> None:
    assert split_args(b"p\0r0\0junk") == [b"p", b"r0"]
    assert split_args(b"nonul") == []


@given(st.lists(packets, max_size=8), st.lists(st.integers(1, 600), max_size=50))
def test_decoder_reassembles_any_split(msgs: list[Packet], cuts: list[int]) -> None:
    stream = b"".join(m.encode() for m in msgs)
    decoder = Decoder()
    out: list[Packet] = []
    pos = 0
    for cut in cuts:
        out += decoder.feed(stream[pos:pos + cut])
        pos += cut
    out += decoder.feed(stream[pos:])
    assert out == msgs
    assert decoder.pending == 0


def test_decoder_accepts_exactly_the_maximum() -> None:
    packet = Packet(Op.WRITE, 1, 0, b"x" * PAYLOAD_MAX)
    assert Decoder().feed(packet.encode()) == [packet]


def test_decoder_refuses_oversized_but_keeps_what_came_before() -> None:
    good = Packet(Op.READ, 1, 0, b"/a\0")
    bad_header = struct.pack("<IIII", Op.WRITE, 2, 0, PAYLOAD_MAX + 1)
    decoder = Decoder()
    assert decoder.feed(good.encode() + bad_header) == [good]
    assert isinstance(decoder.error, ProtocolError)
    with pytest.raises(ProtocolError):
        decoder.feed(good.encode())


def test_partial_header_waits() -> None:
    decoder = Decoder()
    data = Packet(Op.READ, 1, 0, b"/a\0").encode()
    assert decoder.feed(data[:5]) == []
    assert decoder.feed(data[5:]) == [Packet(Op.READ, 1, 0, b"/a\0")]


def test_op_names() -> None:
    assert op_name(22) == "DIRECTORY_PART"
    assert op_name(99) == "OP99"
    assert [op.value for op in Op] == list(range(23))
