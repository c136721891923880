"""C's strtol and int conversion, as glibc on x86-64 does them."""

from __future__ import annotations

import pytest

from xsactor.protocol.cnum import LONG_MAX, int32, strtol


@pytest.mark.parametrize(
    ("text", "base", "expected"),
    [("42", 10, (42, 2)), ("  -7x", 10, (-7, 4)), ("+010", 10, (10, 4)), ("", 10, (0, 0)),
     (" -", 10, (0, 0)), ("abc", 10, (0, 0)), ("0x1f", 10, (0, 1)),
     ("0x1f", 0, (31, 4)), ("010", 0, (8, 3)), ("08", 0, (0, 1)), ("0x", 0, (0, 1)),
     ("-0X10", 0, (-16, 5)),
     # saturated to a 64-bit long
     ("9" * 30, 10, (LONG_MAX, 30)), ("-" + "9" * 30, 0, (-LONG_MAX - 1, 31))],
)
def test_strtol(text: str, base: int, expected: tuple[int, int]) -> None:
    assert strtol(text, base) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (-1, -1), (2**31, -(2**31)), (2**32 + 3, 3), (LONG_MAX, -1), (-LONG_MAX - 1, 0)],
)
def test_int32(value: int, expected: int) -> None:
    assert int32(value) == expected

