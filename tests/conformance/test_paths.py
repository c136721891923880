"""§4 Paths: characters, slashes, relative paths from sockets and guests, ``@`` paths, the
initial tree."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op

from .conftest import Harness
from .util import assert_error, assert_ok, watch, wr

BAD_CHARACTERS = [".", ":", " ", "\xe9", "*", "+", "~", "\t", "%", "$", "!"]


@pytest.mark.parametrize("char", BAD_CHARACTERS)
def test_invalid_character_is_einval(daemon: Harness, char: str) -> None:
    c = daemon.dom0()
    path = daemon.p(f"a{char}b").encode("latin-1")
    assert_error(c.raw_request(Op.WRITE, path + b"\0v"), "EINVAL")
    assert_error(c.raw_request(Op.READ, path + b"\0"), "EINVAL")
    assert_error(c.request(Op.READ, daemon.p()), "ENOENT")


def test_utf8_byte_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("caf").encode() + "é".encode()
    assert_error(c.raw_request(Op.WRITE, path + b"\0v"), "EINVAL")


@pytest.mark.parametrize("name", ["ABCxyz", "0123456789", "a-b_c", "-", "_", "@", "a@b",
                                  "@foo"])
def test_allowed_characters(daemon: Harness, name: str) -> None:
    c = daemon.dom0()
    assert_ok(wr(c, daemon.p(name), b"v"))
    assert c.read(daemon.p(name)) == b"v"
    assert name.encode() in c.directory(daemon.p())


def test_double_slash_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(wr(c, daemon.p("a") + "//b"), "EINVAL")
    assert_error(c.request(Op.READ, "//"), "EINVAL")


def test_trailing_slash_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a"), b"")
    assert_error(wr(c, daemon.p("a") + "/"), "EINVAL")
    assert_error(c.request(Op.READ, daemon.p("a") + "/"), "EINVAL")
    assert_error(c.request(Op.DIRECTORY, daemon.p("a") + "/"), "EINVAL")


def test_root_itself_is_valid(daemon: Harness) -> None:
    c = daemon.dom0()
    assert c.read("/") == b""
    assert b"local" in c.directory("/")
    assert c.get_perms("/") == ["n0"]


def test_empty_path_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.READ, ""), "EINVAL")
    assert_error(wr(c, ""), "EINVAL")


def test_relative_path_from_socket_is_under_dom0_home(daemon: Harness) -> None:
    c = daemon.dom0()
    rel = daemon.component
    assert_ok(wr(c, rel, b"x"))
    assert c.read(f"/local/domain/0/{rel}") == b"x"
    assert c.read(rel) == b"x"
    c.rm(rel)
    assert_error(c.request(Op.READ, f"/local/domain/0/{rel}"), "ENOENT")


def test_relative_path_from_guest_is_under_its_home(daemon: Harness) -> None:
    g = daemon.guest()
    assert_ok(wr(g, "data/rel", b"y"))
    assert g.read(f"{g.home}/data/rel") == b"y"
    assert g.read("data/rel") == b"y"
    assert g.read("domid") == str(g.domid).encode()
    assert daemon.dom0().read(f"{g.home}/data/rel") == b"y"


def test_relative_path_rules_apply_after_prefixing(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(wr(g, "data/"), "EINVAL")
    assert_error(wr(g, "data//x"), "EINVAL")
    assert_error(wr(g, "data/x.y"), "EINVAL")


def test_relative_directory_and_perms(daemon: Harness) -> None:
    g = daemon.guest()
    assert b"shutdown" in g.directory("control")
    assert g.get_perms("data") == [f"n{g.domid}"]


@pytest.mark.parametrize("op", [Op.READ, Op.DIRECTORY, Op.MKDIR, Op.RM])
def test_special_path_is_einval_outside_watches(daemon: Harness, op: int) -> None:
    c = daemon.dom0()
    assert_error(c.request(op, "@foo"), "EINVAL")
    assert_error(c.request(op, "@releaseDomain"), "EINVAL")


def test_write_of_special_path_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(wr(c, "@foo", b"x"), "EINVAL")
    assert_error(wr(c, "@introduceDomain", b"x"), "EINVAL")


def test_get_perms_of_special_path_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.GET_PERMS, "@releaseDomain"), "EINVAL")
    assert_error(c.request(Op.GET_PERMS, "@introduceDomain"), "EINVAL")


@pytest.mark.parametrize("path", ["@", "@foo", "@foo.bar:baz", "@releaseDomain/22", "@a//b/"])
def test_watch_accepts_any_special_path(daemon: Harness, path: str) -> None:
    c = daemon.dom0()
    watch(c, path, "tok")
    assert_ok(c.request(Op.UNWATCH, path, "tok"))


def test_watch_of_invalid_plain_path_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.WATCH, daemon.p("a.b"), "t"), "EINVAL")
    assert_error(c.request(Op.WATCH, daemon.p("a") + "/", "t"), "EINVAL")
    assert_error(c.request(Op.WATCH, "", "t"), "EINVAL")
    assert c.drain_events() == []


def test_set_perms_on_special_names_from_dom0(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", "n0"))
    assert_ok(c.request(Op.SET_PERMS, "@releaseDomain", "n0"))


def test_initial_tree(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert sorted(c.directory("/")) == [b"local", b"tool"]
    assert c.directory("/tool") == [b"xenstored"]
    assert c.directory("/tool/xenstored") == []
    for path in ("/", "/tool", "/tool/xenstored"):
        assert c.read(path) == b""
        assert c.get_perms(path) == ["n0"]


def test_dom0_boot_entries(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert c.read("/local/domain/0/domid") == b"0"
    assert c.read("/local/domain/0/name") == b"Domain-0"
    assert c.read("/local/pool/0/name") == b"Pool-0"
    assert sorted(c.directory("/local")) == [b"domain", b"pool"]
    assert c.get_perms("/local/domain/0") == ["n0"]
