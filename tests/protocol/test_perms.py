"""Permission strings, parsed with 4.17's strtol rules (semantics §5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsactor.protocol.errors import EINVAL
from xsactor.protocol.perms import Access, Perm, acl_payload, parse_acl


@pytest.mark.parametrize(
    ("text", "printed"),
    [("r0x10", "r16"), ("r010", "r8"), ("r 5", "r5"), ("r-1", "r-1"),
     ("r4294967296", "r0"), ("b0", "b0"), ("n5", "n5"), ("w3", "w3"), ("r+7", "r7")],
)
def test_strtol_forms(text: str, printed: str) -> None:
    assert str(Perm.parse(text)) == printed


@pytest.mark.parametrize("text", ["R0", "r", "x0", "r5x", "r ", "r0x", "r08", ""])
def test_refused(text: str) -> None:
    with pytest.raises(EINVAL):
        Perm.parse(text)


def test_access_bits() -> None:
    assert Perm.parse("b3").access is Access.BOTH
    assert Perm.parse("r3").can_read and not Perm.parse("r3").can_write
    assert Perm.parse("w3").can_write and not Perm.parse("w3").can_read


def test_acl() -> None:
    acl = parse_acl(["n0", b"r5", Perm(Access.BOTH, 6)])
    assert acl_payload(acl) == b"n0\0r5\0b6\0"
    with pytest.raises(EINVAL):
        parse_acl([])


def test_acl_payload_cuts_long_entries() -> None:
    acl = (Perm.parse("r-2147483648"), Perm.parse("w5"))
    assert acl_payload(acl) == b"r-2147483648\0w5\0"
    assert acl_payload(acl, entry_max=11) == b"r-214748364\0w5\0"


@given(st.sampled_from("nrwb"), st.integers(-(2**31), 2**31 - 1))
def test_print_parse_roundtrip(letter: str, domid: int) -> None:
    perm = Perm.parse(f"{letter}{domid}")
    assert perm.domid == domid
    assert Perm.parse(str(perm)) == perm
