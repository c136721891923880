"""Permission entries: ``r24``, ``b0``, ``n5``, ``w3``, parsed and printed as xenstored does.

The first entry of an ACL names the owner; its letter is the access of every domain without
an entry of its own. Parsing follows ``xs_strings_to_perms`` (``strtol`` with base 0, so
``r0x10`` is ``r16`` and ``r-1`` is domid 0xffffffff, printed back as ``r-1``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import EINVAL


class Access(enum.IntFlag):
    NONE = 0
    READ = 1
    WRITE = 2
    BOTH = READ | WRITE


_LETTER_TO_ACCESS = {"n": Access.NONE, "r": Access.READ, "w": Access.WRITE, "b": Access.BOTH}
_ACCESS_TO_LETTER = {v: k for k, v in _LETTER_TO_ACCESS.items()}

_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_LONG_MAX = 2**63 - 1


def _strtol_whole(text: str) -> int | None:
    """``strtol(text, &end, 0)`` when it consumes all of ``text``; None otherwise."""
    match = _STRTOL.match(text)
    if match is None or match.end() != len(text):
        return None
    sign, digits = match.groups()
    value = int(digits, 0) if not digits.startswith("0") or len(digits) == 1 or digits[1] in "xX" \
        else int(digits, 8)
    value = min(value, _LONG_MAX + (1 if sign == "-" else 0))  # strtol saturates
    return -value if sign == "-" else value


def _as_domid(value: int) -> int:
    """Truncate to the unsigned 32-bit id xenstored stores, seen as signed (as it prints)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(frozen=True, slots=True)
class Perm:
    """One ACL entry: an access letter for a domain."""

    access: Access
    domid: int

    @classmethod
    def parse(cls, text: str | bytes) -> Perm:
        """Parse ``"r24"``; raises :class:`EINVAL` for what xenstored refuses."""
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        access = _LETTER_TO_ACCESS.get(text[:1])
        number = _strtol_whole(text[1:]) if access is not None and len(text) > 1 else None
        if access is None or number is None:
            raise EINVAL(f"invalid permission {text!r} (want r/w/b/n and a domid, e.g. 'r5')")
        return cls(access, _as_domid(number))

    @property
    def letter(self) -> str:
        return _ACCESS_TO_LETTER[self.access]

    def __str__(self) -> str:
        return f"{self.letter}{self.domid}"

    @property
    def can_read(self) -> bool:
        return bool(self.access & Access.READ)

    @property
    def can_write(self) -> bool:
        return bool(self.access & Access.WRITE)


ACL = tuple[Perm, ...]


def parse_acl(entries: Iterable[str | bytes | Perm]) -> ACL:
    """An ACL from strings (or Perms); raises :class:`EINVAL` if empty or malformed."""
    acl = tuple(e if isinstance(e, Perm) else Perm.parse(e) for e in entries)
    if not acl:
        raise EINVAL("a permission list needs at least the owner entry")
    return acl


def format_acl(acl: Sequence[Perm]) -> list[str]:
    return [str(p) for p in acl]


def acl_payload(acl: Sequence[Perm]) -> bytes:
    """The wire form: each entry followed by NUL."""
    return b"".join(str(p).encode() + b"\0" for p in acl)
