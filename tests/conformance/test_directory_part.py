"""§1.1 DIRECTORY_PART: generation-stamped, offset-addressed chunks of a child list."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op, split_args

from .conftest import Conn, Harness
from .util import assert_error, assert_success


def part(c: Conn, path: str, offset: int | str, tx_id: int = 0) -> tuple[bytes, bytes]:
    """(generation, rest of the payload after the generation's NUL)."""
    payload = assert_success(c.request(Op.DIRECTORY_PART, path, offset, tx_id=tx_id))
    gen, _, rest = payload.partition(b"\0")
    assert gen.isdigit(), payload
    return gen, rest


def make_children(c: Conn, parent: str, names: list[str]) -> None:
    for name in names:
        c.write(f"{parent}/{name}", b"")


def test_lists_children_with_final_double_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "bb", "ccc"])
    _, rest = part(c, daemon.p("d"), 0)
    assert rest == b"a\0bb\0ccc\0\0"


def test_leaf_gives_generation_and_empty_list(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("leaf"), b"x")
    _, rest = part(c, daemon.p("leaf"), 0)
    assert rest == b"\0"


def test_offset_past_end_gives_empty_list(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "b"])
    assert part(c, daemon.p("d"), 4)[1] == b"\0"
    assert part(c, daemon.p("d"), 1000)[1] == b"\0"


def test_offset_is_a_byte_offset(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "bb", "ccc"])
    assert part(c, daemon.p("d"), 2)[1] == b"bb\0ccc\0\0"
    assert part(c, daemon.p("d"), 5)[1] == b"ccc\0\0"


def test_offset_inside_a_name_returns_its_tail(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["abc", "def"])
    assert part(c, daemon.p("d"), 1)[1] == b"bc\0def\0\0"


@pytest.mark.parametrize("offset", ["x", "", "0x10"])
def test_offset_parsed_with_atoi(daemon: Harness, offset: str) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "b"])
    assert part(c, daemon.p("d"), offset)[1] == b"a\0b\0\0"


def test_offset_with_leading_digits(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "b"])
    assert part(c, daemon.p("d"), "2zz")[1] == b"b\0\0"


@pytest.mark.parametrize("payload", [b"PATH\0", b"PATH\x000\0extra\0", b"PATH\x000", b""])
def test_needs_exactly_two_strings(daemon: Harness, payload: bytes) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    assert_error(c.raw_request(Op.DIRECTORY_PART, payload.replace(b"PATH", daemon.p("d").encode())),
                 "EINVAL")


def test_missing_node_is_enoent(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.DIRECTORY_PART, daemon.p("none"), 0), "ENOENT")


def test_same_generation_across_calls(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    assert part(c, daemon.p("d"), 0)[0] == part(c, daemon.p("d"), 0)[0]


def test_generation_changes_when_a_child_is_added(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    before = part(c, daemon.p("d"), 0)[0]
    c.write(daemon.p("d", "b"), b"")
    assert part(c, daemon.p("d"), 0)[0] != before


def test_generation_changes_when_a_child_is_removed(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a", "b"])
    before = part(c, daemon.p("d"), 0)[0]
    c.rm(daemon.p("d", "b"))
    assert part(c, daemon.p("d"), 0)[0] != before


def test_generation_changes_with_own_value_and_perms(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    gen1 = part(c, daemon.p("d"), 0)[0]
    c.write(daemon.p("d"), b"new value")
    gen2 = part(c, daemon.p("d"), 0)[0]
    c.set_perms(daemon.p("d"), ["b0"])
    gen3 = part(c, daemon.p("d"), 0)[0]
    assert len({gen1, gen2, gen3}) == 3


def test_generation_unchanged_by_a_childs_value(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    before = part(c, daemon.p("d"), 0)[0]
    c.write(daemon.p("d", "a"), b"changed")
    c.write(daemon.p("d", "a", "grandchild"), b"")
    assert part(c, daemon.p("d"), 0)[0] == before


def test_large_directory_is_chunked_on_name_boundaries(daemon: Harness) -> None:
    c = daemon.dom0()
    names = [f"child-{i:03d}-" + "n" * 40 for i in range(200)]
    make_children(c, daemon.p("big"), names)
    assert_error(c.request(Op.DIRECTORY, daemon.p("big")), "E2BIG")
    full = b"".join(n.encode() + b"\0" for n in names)
    offset, collected, chunks = 0, b"", 0
    gen0 = None
    while True:
        gen, rest = part(c, daemon.p("big"), offset)
        gen0 = gen0 or gen
        assert gen == gen0
        maxlen = 4096 - (len(gen) + 1) - 1
        chunks += 1
        if rest.endswith(b"\0\0"):
            assert len(rest) <= maxlen + 1
            collected += rest[:-1]
            break
        assert rest.endswith(b"\0")
        assert len(rest) <= maxlen
        next_name = full[offset + len(rest):].split(b"\0", 1)[0]
        assert len(rest) + len(next_name) + 1 > maxlen, "a chunk holds as many names as fit"
        collected += rest
        offset += len(rest)
    assert chunks >= 3
    assert collected == full
    assert split_args(collected) == [n.encode() for n in names]


def test_inside_a_transaction_sees_its_own_children(daemon: Harness) -> None:
    c = daemon.dom0()
    make_children(c, daemon.p("d"), ["a"])
    tx = c.start()
    c.write(daemon.p("d", "b"), b"", tx_id=tx)
    assert part(c, daemon.p("d"), 0, tx_id=tx)[1] == b"a\0b\0\0"
    assert part(c, daemon.p("d"), 0)[1] == b"a\0\0"
    c.end(tx, commit=False)


def test_guest_needs_read_permission(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.DIRECTORY_PART, f"/libxl/{g.domid}", 0), "EACCES")
    _, rest = part(g, f"{g.home}/control", 0)
    assert b"shutdown\0" in rest
