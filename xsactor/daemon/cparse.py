"""The C string handling 4.17 applies to request payloads: ``atoi`` and onearg."""

from __future__ import annotations

from ..protocol.cnum import int32, strtol


def atoi(text: bytes) -> int:
    """C's ``atoi`` on glibc/x86-64: ``(int)strtol(text, NULL, 10)`` (signed 32 bits)."""
    return int32(strtol(text.decode("latin-1"))[0])


def atou(text: bytes) -> int:
    """``atoi`` stored into an ``unsigned int`` (as 4.17 does for domids and offsets)."""
    return atoi(text) & 0xFFFFFFFF


def onearg(payload: bytes) -> bytes | None:
    """The single argument of a one-argument request (exactly one NUL, at the very end)."""
    end = len(payload) - 1
    if end >= 0 and payload.find(b"\0") == end:
        return payload[:end]
    return None
