"""Whole messages: the header, the payload, an encoder and an incremental decoder.

Pure: nothing here does I/O. Feed received bytes to a :class:`Decoder`, get :class:`Packet`
objects back; call :meth:`Packet.encode` and write the bytes yourself (as h11 does).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ProtocolError
from .ops import HEADER, HEADER_SIZE, PAYLOAD_MAX, Op, op_name

Arg = str | bytes | int


def to_bytes(arg: Arg) -> bytes:
    """One argument as wire bytes: str as UTF-8 (paths are ASCII), int as decimal."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bool):
        raise TypeError("a boolean is not a XenStore argument")
    if isinstance(arg, int):
        return str(arg).encode()
    if isinstance(arg, str):
        return arg.encode()
    raise TypeError(f"cannot send {type(arg).__name__} as a XenStore argument")


def join_args(*args: Arg) -> bytes:
    """Arguments as a payload, each followed by NUL (``path\\0token\\0``)."""
    return b"".join(to_bytes(a) + b"\0" for a in args)


def split_args(payload: bytes) -> list[bytes]:
    """The NUL-terminated strings of a payload; bytes after the last NUL are dropped."""
    parts = payload.split(b"\0")
    parts.pop()  # after the last NUL (or everything, when there is none)
    return parts


def encode(op: int, req_id: int, tx_id: int, payload: bytes) -> bytes:
    """One message as wire bytes (what :meth:`Packet.encode` does, without the object)."""
    return HEADER.pack(op, req_id, tx_id, len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Packet:
    """One XenStore message: header fields and the payload."""

    op: int
    req_id: int = 0
    tx_id: int = 0
    payload: bytes = b""

    @classmethod
    def request(cls, op: int, *args: Arg, req_id: int = 0, tx_id: int = 0) -> Packet:
        """A message whose payload is ``args``, each NUL-terminated."""
        return cls(op, req_id, tx_id, join_args(*args))

    @classmethod
    def write(cls, path: Arg, value: Arg, *, req_id: int = 0, tx_id: int = 0) -> Packet:
        """A WRITE: the path, a NUL, then the value bytes with no terminator."""
        return cls(Op.WRITE, req_id, tx_id, to_bytes(path) + b"\0" + to_bytes(value))

    def reply(self, payload: bytes, op: int | None = None) -> Packet:
        """A reply to this message: the same req_id and tx_id."""
        return Packet(self.op if op is None else op, self.req_id, self.tx_id, payload)

    def encode(self) -> bytes:
        """Header and payload as wire bytes."""
        return encode(self.op, self.req_id, self.tx_id, self.payload)

    @property
    def args(self) -> list[bytes]:
        """The NUL-terminated strings of the payload."""
        return split_args(self.payload)

    @property
    def is_error(self) -> bool:
        return self.op == Op.ERROR

    def __repr__(self) -> str:
        return (f"Packet({op_name(self.op)}, req_id={self.req_id}, tx_id={self.tx_id}, "
                f"payload={self.payload[:64]!r}{'...' if len(self.payload) > 64 else ''})")


class Decoder:
    """Incremental decoder: feed bytes as they arrive, take whole packets out.

    A header announcing more than ``max_payload`` bytes breaks the stream for good: framing
    is lost. :meth:`feed` still returns the whole packets that came before it, and sets
    :attr:`error`; the owner must then close the connection, as xenstored does. Feeding a
    broken decoder raises that error.
    """

    __slots__ = ("_buf", "error", "max_payload")

    def __init__(self, max_payload: int = PAYLOAD_MAX) -> None:
        self._buf = b""
        self.max_payload = max_payload
        self.error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole packet."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Add received bytes; return every packet now complete, in order."""
        return [Packet(*frame) for frame in self.frames(data)]

    def frames(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, int, bytes]]:
        """As :meth:`feed`, but each message as a plain ``(op, req_id, tx_id, payload)``
        tuple: the cheaper form for a hot loop such as the daemon's."""
        if self.error is not None:
            raise self.error
        if not isinstance(data, bytes):
            data = bytes(data)  # a bytearray or memoryview: copied once, payloads are bytes
        buf = self._buf
        if buf:
            buf += data
        else:
            buf = data
        out: list[tuple[int, int, int, bytes]] = []
        pos = 0
        end = len(buf)
        unpack = HEADER.unpack_from
        limit = self.max_payload
        while end - pos >= HEADER_SIZE:
            op, req_id, tx_id, length = unpack(buf, pos)
            if length > limit:
                self.error = ProtocolError(
                    f"{op_name(op)} announces a {length}-byte payload (at most {limit})")
                self._buf = b""
                return out
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            out.append((op, req_id, tx_id, buf[pos + HEADER_SIZE:stop]))
            pos = stop
        self._buf = buf[pos:] if pos else buf
        return out
