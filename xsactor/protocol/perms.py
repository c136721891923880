"""Permission entries: ``r24``, ``b0``, ``n5``, ``w3``, parsed and printed as xenstored does.

The first entry of an ACL names the owner; its letter is the access of every domain without
an entry of its own. Parsing follows ``xs_strings_to_perms`` (``strtol`` with base 0, so
``r0x10`` is ``r16`` and ``r-1`` is domid 0xffffffff, printed back as ``r-1``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .cnum import int32, strtol
from .errors import EINVAL


class Access(enum.IntFlag):
    NONE = 0
    READ = 1
    WRITE = 2
    BOTH = READ | WRITE


_LETTER_TO_ACCESS = {"n": Access.NONE, "r": Access.READ, "w": Access.WRITE, "b": Access.BOTH}
_ACCESS_TO_LETTER = {v: k for k, v in _LETTER_TO_ACCESS.items()}

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
        domid = text[1:]
        number, end = strtol(domid, 0)
        if access is None or not domid or end != len(domid):
            raise EINVAL(f"invalid permission {text!r} (want r/w/b/n and a domid, e.g. 'r5')")
        # xenstored keeps the unsigned 32-bit id and prints it as a signed int.
        return cls(access, int32(number))

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


def acl_payload(acl: Sequence[Perm], *, entry_max: int | None = None) -> bytes:
    """The wire form: each entry followed by NUL; ``entry_max`` cuts longer entries to that
    many characters (as xenstored's GET_PERMS reply does)."""
    return b"".join(str(p).encode()[:entry_max] + b"\0" for p in acl)
