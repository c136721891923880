"""The C string handling 4.17 applies to request payloads: ``atoi``, NUL counting, onearg."""

from __future__ import annotations

import re

_STRTOL10 = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]*)")
_LONG_MAX = 2**63 - 1


def atoi(text: bytes) -> int:
    """C's ``atoi`` on glibc/x86-64: ``(int)strtol(text, NULL, 10)`` (signed 32 bits)."""
    match = _STRTOL10.match(text)
    assert match is not None
    sign, digits = match.groups()
    if not digits:
        return 0
    value = min(int(digits), _LONG_MAX + (1 if sign == b"-" else 0))
    if sign == b"-":
        value = -value
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def atou(text: bytes) -> int:
    """``atoi`` stored into an ``unsigned int`` (as 4.17 does for domids and offsets)."""
    return atoi(text) & 0xFFFFFFFF


def onearg(payload: bytes) -> bytes | None:
    """The single argument of a one-argument request (exactly one NUL, at the very end)."""
    end = len(payload) - 1
    if end >= 0 and payload.find(b"\0") == end:
        return payload[:end]
    return None


def strings(payload: bytes) -> list[bytes]:
    """The NUL-terminated strings of a payload (``get_strings``); trailing bytes dropped."""
    parts = payload.split(b"\0")
    parts.pop()
    return parts
