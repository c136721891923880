"""C's string-to-number rules as xenstored applies them (glibc, x86-64).

Pure. Permission entries are read with ``strtol`` base 0 (:mod:`.perms`); the daemon reads
numeric request arguments with ``atoi``, i.e. ``strtol`` base 10 stored into an ``int``
(:mod:`xsactor.daemon.cparse`).
"""

from __future__ import annotations

import re

_NUMBER = {
    0: re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)"),
    10: re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)"),
}
LONG_MAX = 2**63 - 1


def strtol(text: str, base: int = 10) -> tuple[int, int]:
    """``strtol(text, &end, base)`` for base 10 or 0 (``0x`` hex, ``0`` octal): the value,
    saturated to a 64-bit ``long``, and how many characters it read (0 when no number)."""
    match = _NUMBER[base].match(text)
    if match is None:
        return 0, 0
    sign, digits = match.groups()
    octal = base == 0 and len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX"
    value = min(int(digits, 8 if octal else base), LONG_MAX + (sign == "-"))
    return (-value if sign == "-" else value), match.end()


def int32(value: int) -> int:
    """A ``long`` stored into a 32-bit ``int``: the low 32 bits, two's complement."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
