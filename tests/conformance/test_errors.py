"""§2 Errors: which error (or success) each situation gets."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op

from .conftest import STALE_ERRNO, Harness, embedded_only
from .util import assert_error, assert_ok, no_events, watch, wr


@pytest.mark.parametrize("op", [Op.READ, Op.DIRECTORY, Op.GET_PERMS])
def test_privileged_read_of_missing_node_is_enoent(daemon: Harness, op: int) -> None:
    c = daemon.dom0()
    assert_error(c.request(op, daemon.p("missing")), "ENOENT")
    assert_error(c.request(op, daemon.p("missing", "deeper", "still")), "ENOENT")


def test_write_creates_missing_ancestors_with_empty_values(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_ok(wr(c, daemon.p("a", "b", "c"), b"leaf"))
    assert c.read(daemon.p("a")) == b""
    assert c.read(daemon.p("a", "b")) == b""
    assert c.read(daemon.p("a", "b", "c")) == b"leaf"
    assert c.directory(daemon.p("a")) == [b"b"]


def test_mkdir_creates_missing_ancestors(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_ok(c.request(Op.MKDIR, daemon.p("x", "y")))
    assert c.directory(daemon.p("x")) == [b"y"]
    assert c.read(daemon.p("x", "y")) == b""


def test_mkdir_of_existing_node_changes_nothing(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("m"), b"value")
    c.write(daemon.p("m", "child"), b"c")
    watch(c, daemon.p("m"), "tok")
    assert_ok(c.request(Op.MKDIR, daemon.p("m")))
    assert c.read(daemon.p("m")) == b"value"
    assert c.directory(daemon.p("m")) == [b"child"]
    no_events(c)


def test_rm_of_missing_node_with_existing_parent_is_ok(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("parent"), b"")
    assert_ok(c.request(Op.RM, daemon.p("parent", "missing")))


def test_rm_of_missing_node_with_missing_parent_is_enoent(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.RM, daemon.p("nope", "missing")), "ENOENT")


def test_rm_root_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.RM, "/"), "EINVAL")
    assert c.directory("/")


def test_rm_is_recursive(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("r", "a", "b"), b"1")
    c.write(daemon.p("r", "c"), b"2")
    assert_ok(c.request(Op.RM, daemon.p("r")))
    for path in ("r", "r/a", "r/a/b", "r/c"):
        assert_error(c.request(Op.READ, daemon.p(path)), "ENOENT")


def test_rm_removes_name_from_parent(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("p", "a"), b"")
    c.write(daemon.p("p", "b"), b"")
    c.rm(daemon.p("p", "a"))
    assert c.directory(daemon.p("p")) == [b"b"]


def test_directory_of_large_node_is_e2big(daemon: Harness) -> None:
    c = daemon.dom0()
    for i in range(100):
        c.write(daemon.p("big", f"{i:03d}" + "x" * 45), b"")
    assert_error(c.request(Op.DIRECTORY, daemon.p("big")), "E2BIG")


def test_directory_just_under_the_limit_works(daemon: Harness) -> None:
    c = daemon.dom0()
    # 4096 bytes of names exactly: 64 names of 63 characters plus NUL
    names = [f"{i:02d}" + "y" * 61 for i in range(64)]
    for name in names:
        c.write(daemon.p("fit", name), b"")
    assert c.directory(daemon.p("fit")) == [n.encode() for n in names]
    c.write(daemon.p("fit", "z"), b"")
    assert_error(c.request(Op.DIRECTORY, daemon.p("fit")), "E2BIG")


def test_read_of_large_value_fitting_the_reply(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("v")
    value = b"q" * (4096 - len(path) - 1)
    c.write(path, value)
    assert c.read(path) == value


def test_control_unknown_command_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.CONTROL, "no-such-command"), "EINVAL")


def test_control_help_lists_commands(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.request(Op.CONTROL, "help")
    assert reply.op == Op.CONTROL, reply
    for command in (b"check", b"quota", b"log"):
        assert command in reply.payload


def test_control_check_is_ok(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_ok(c.request(Op.CONTROL, "check"))


def test_quota_errors_are_enospc_not_equota(daemon: Harness) -> None:
    g = daemon.guest()
    reply = g.request(Op.SET_PERMS, f"{g.home}/data", *(f"b{g.domid}",) * 6)
    assert reply.payload == b"ENOSPC\0"
    assert_error(g.request(Op.WRITE, f"{g.home}/name", "x"), "EACCES")


@pytest.mark.parametrize("args, reply", [
    (("print", "hello"), b"OK\0"), (("check", "x"), b"EINVAL\0"),
    (("help", "x"), b"EINVAL\0"), (("quota", "set", "nodes"), b"EINVAL\0"),
    (("quota-soft", "set", "nodes", "5"), b"EINVAL\0"),
])
def test_control_commands(daemon: Harness, args: tuple, reply: bytes) -> None:
    assert daemon.dom0().request(Op.CONTROL, *args).payload == reply


@embedded_only(STALE_ERRNO)
def test_control_memreport_is_einval(daemon: Harness) -> None:
    """4.17 answers memreport (built without talloc reports) from a stale errno."""
    assert_error(daemon.dom0().request(Op.CONTROL, "memreport"), "EINVAL")


def test_children_are_listed_in_creation_order(daemon: Harness) -> None:
    c = daemon.dom0()
    for name in ("b", "c", "a"):
        c.write(daemon.p("o", name), b"")
    assert c.directory(daemon.p("o")) == [b"b", b"c", b"a"]
    c.rm(daemon.p("o", "b"))
    c.write(daemon.p("o", "b"), b"")
    c.write(daemon.p("o", "c"), b"rewritten")
    assert c.directory(daemon.p("o")) == [b"c", b"a", b"b"]
