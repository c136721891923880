"""Request handling through the engine: §1 (framing-level replies, argument quirks,
DIRECTORY_PART), §2 (which error when), §3 (path length), §4 (paths)."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op

from .conftest import Client, Engine

OK = b"OK\0"


# -- §1 replies --------------------------------------------------------------------------------
def test_initial_tree_is_root_tool_xenstored_all_n0() -> None:
    bare = Engine.__new__(Engine)
    from xsactor.daemon.core import XenStore

    bare.xs = XenStore()
    c = Client(bare.xs)
    assert c.ls("/") == ["tool"]
    assert c.ls("/tool") == ["xenstored"]
    for path in ("/", "/tool", "/tool/xenstored"):
        assert c.perms(path) == ["n0"]
        assert c.read(path) == b""


def test_replies_copy_req_id_and_tx_id(dom0: Client) -> None:
    tx = dom0.start()
    reply = dom0.raw(Op.READ, b"/nonexistent\0", tx)
    assert reply.op == Op.ERROR and reply.tx_id == tx
    reply = dom0.raw(Op.WRITE, b"/x\0v", 0)
    assert (reply.op, reply.payload) == (Op.WRITE, OK)


def test_read_returns_raw_bytes_without_nul(dom0: Client) -> None:
    dom0.ok_write("/v", b"a\0b\xff")
    assert dom0.read("/v") == b"a\0b\xff"
    dom0.ok_write("/e", b"")
    assert dom0.request(Op.READ, "/e").payload == b""


@pytest.mark.parametrize("op", [15, 16, 20, 23, 99, 0xFFFF])
def test_unknown_types_are_enosys(dom0: Client, op: int) -> None:
    assert dom0.raw_err(op, b"/x\0") == "ENOSYS"


def test_transaction_start_reply_carries_request_tx_id(dom0: Client) -> None:
    reply = dom0.raw(Op.TRANSACTION_START, b"\0")
    assert reply.tx_id == 0 and reply.payload == b"1\0"


def test_reply_over_4096_is_e2big(dom0: Client) -> None:
    for i in range(200):
        dom0.ok_write(f"/big/child-with-a-long-name-{i:04d}")
    assert dom0.err(Op.DIRECTORY, "/big") == "E2BIG"


def test_write_event_queued_before_reply(dom0: Client) -> None:
    dom0.watch("/w")
    dom0.take_events()
    dom0.write("/w", "1")
    kinds = [p.op for p in dom0.received[-2:]]
    assert kinds == [Op.WATCH_EVENT, Op.WRITE]


def test_watch_reply_queued_before_initial_event(dom0: Client) -> None:
    dom0.watch("/w")
    kinds = [p.op for p in dom0.received[-2:]]
    assert kinds == [Op.WATCH, Op.WATCH_EVENT]


# -- §1.1 DIRECTORY_PART -------------------------------------------------------------------------
def part(c: Client, path: str, offset: bytes | str | int) -> tuple[bytes, bytes]:
    payload = c.call(Op.DIRECTORY_PART, path, offset)
    gen, _, rest = payload.partition(b"\0")
    return gen, rest


def test_directory_part_lists_with_final_double_nul(dom0: Client) -> None:
    for name in ("a", "bb", "ccc"):
        dom0.ok_write(f"/d/{name}")
    gen, rest = part(dom0, "/d", 0)
    assert gen.isdigit() and rest == b"a\0bb\0ccc\0\0"
    assert part(dom0, "/d", 2)[1] == b"bb\0ccc\0\0"
    assert part(dom0, "/d", 1)[1] == b"\0bb\0ccc\0\0"
    assert part(dom0, "/d", 100)[1] == b"\0"
    assert part(dom0, "/d", "x")[1] == b"a\0bb\0ccc\0\0"
    assert part(dom0, "/d", "-1")[1] == b"\0"


def test_directory_part_offset_inside_name_gives_tail(dom0: Client) -> None:
    dom0.ok_write("/d/abc")
    dom0.ok_write("/d/def")
    assert part(dom0, "/d", 1)[1] == b"bc\0def\0\0"


def test_directory_part_leaf(dom0: Client) -> None:
    dom0.ok_write("/leaf", "x")
    assert part(dom0, "/leaf", 0)[1] == b"\0"


@pytest.mark.parametrize("payload", [b"/d\0", b"/d\x000\0x\0", b"/d\x000", b""])
def test_directory_part_needs_two_strings(dom0: Client, payload: bytes) -> None:
    dom0.ok_write("/d/a")
    assert dom0.raw_err(Op.DIRECTORY_PART, payload) == "EINVAL"


def test_directory_part_chunks_end_on_name_boundaries(dom0: Client) -> None:
    names = [f"child-{i:04d}-" + "x" * 40 for i in range(150)]
    for name in names:
        dom0.ok_write(f"/big/{name}")
    full = b"".join(n.encode() + b"\0" for n in names)
    got = b""
    offset = 0
    gens = set()
    while True:
        gen, rest = part(dom0, "/big", offset)
        gens.add(gen)
        assert len(gen) + 1 + len(rest) <= 4096
        if rest.endswith(b"\0\0") or rest == b"\0":
            got += rest[:-1]
            break
        assert rest.endswith(b"\0")
        got += rest
        offset += len(rest)
    assert got == full and len(gens) == 1


def test_generation_changes_with_child_list_not_child_value(dom0: Client) -> None:
    dom0.ok_write("/g/a", "1")
    g1 = part(dom0, "/g", 0)[0]
    dom0.ok_write("/g/a", "2")
    assert part(dom0, "/g", 0)[0] == g1
    dom0.ok_write("/g/b", "1")
    g2 = part(dom0, "/g", 0)[0]
    assert g2 != g1
    dom0.chmod("/g", "n0", "r5")
    assert part(dom0, "/g", 0)[0] != g2


# -- §1.2 argument parsing ----------------------------------------------------------------------
@pytest.mark.parametrize("op", [Op.READ, Op.DIRECTORY, Op.GET_PERMS, Op.MKDIR, Op.RM,
                                Op.GET_DOMAIN_PATH, Op.IS_DOMAIN_INTRODUCED, Op.RELEASE,
                                Op.RESUME, Op.TRANSACTION_END])
@pytest.mark.parametrize("payload", [b"", b"/x", b"/x\0\0", b"/x\0y\0", b"\0/x"])
def test_single_argument_ops_need_exactly_one_trailing_nul(dom0: Client, op: int,
                                                           payload: bytes) -> None:
    assert dom0.raw_err(op, payload) == "EINVAL"


def test_watch_needs_exactly_two_strings(dom0: Client) -> None:
    assert dom0.raw_err(Op.WATCH, b"/w\0") == "EINVAL"
    assert dom0.raw_err(Op.WATCH, b"/w\0t\0 1\0") == "EINVAL"
    assert dom0.raw(Op.WATCH, b"/w\0t\0trailing").payload == OK
    assert dom0.raw_err(Op.UNWATCH, b"/w\0") == "EINVAL"
    assert dom0.raw(Op.UNWATCH, b"/w\0t\0junk").payload == OK


def test_set_perms_ignores_bytes_after_last_nul(dom0: Client) -> None:
    dom0.ok_write("/p")
    assert dom0.raw(Op.SET_PERMS, b"/p\0r0\0junk").payload == OK
    assert dom0.perms("/p") == ["r0"]


def test_write_without_nul_is_einval(dom0: Client) -> None:
    assert dom0.raw_err(Op.WRITE, b"/novalue") == "EINVAL"


def test_write_value_may_hold_nuls_and_be_empty(dom0: Client) -> None:
    assert dom0.raw(Op.WRITE, b"/v\0a\0b\0").payload == OK
    assert dom0.read("/v") == b"a\0b\0"
    assert dom0.raw(Op.WRITE, b"/v\0").payload == OK
    assert dom0.read("/v") == b""


def test_get_domain_path_uses_atoi(dom0: Client) -> None:
    assert dom0.call(Op.GET_DOMAIN_PATH, "abc") == b"/local/domain/0\0"
    assert dom0.call(Op.GET_DOMAIN_PATH, "-1") == b"/local/domain/4294967295\0"
    assert dom0.call(Op.GET_DOMAIN_PATH, "00007") == b"/local/domain/7\0"
    assert dom0.call(Op.GET_DOMAIN_PATH, " 12xyz") == b"/local/domain/12\0"


# -- §2 errors ---------------------------------------------------------------------------------
def test_error_table(dom0: Client) -> None:
    assert dom0.err(Op.READ, "/missing") == "ENOENT"
    assert dom0.err(Op.DIRECTORY, "/missing") == "ENOENT"
    assert dom0.err(Op.GET_PERMS, "/missing") == "ENOENT"
    dom0.ok_write("/a/b/c", "v")
    assert dom0.read("/a") == b"" and dom0.read("/a/b") == b""
    dom0.ok_write("/m", "keep")
    dom0.ok_write("/m/child")
    dom0.mkdir("/m")
    assert dom0.read("/m") == b"keep" and dom0.ls("/m") == ["child"]
    dom0.rm("/a/missing")
    assert dom0.err(Op.RM, "/nope/missing") == "ENOENT"
    assert dom0.err(Op.RM, "/") == "EINVAL"
    for bad in ("/a.b", "//a", "/a/", "", "/a b", "/\xe9"):
        assert dom0.err(Op.READ, bad) == "EINVAL", bad
    assert dom0.err(Op.READ, "@foo") == "EINVAL"
    assert dom0.err(Op.WRITE, "@foo", "x") == "EINVAL"
    assert dom0.err(Op.GET_PERMS, "@releaseDomain") == "EINVAL"
    assert dom0.err(Op.READ, "/x", tx_id=42) == "ENOENT"


def test_mkdir_existing_fires_nothing(dom0: Client) -> None:
    dom0.ok_write("/m")
    dom0.watch("/m")
    dom0.take_events()
    dom0.mkdir("/m")
    assert dom0.take_events() == []


@pytest.mark.parametrize("op", [Op.CONTROL, Op.INTRODUCE, Op.RELEASE, Op.RESUME,
                                Op.SET_TARGET, Op.IS_DOMAIN_INTRODUCED])
def test_privileged_ops_from_guest_are_eacces(engine: Engine, op: int) -> None:
    engine.add_guest(3)
    assert engine.guest(3).raw_err(op, b"3\0") == "EACCES"


def test_every_op_but_watch_checks_tx_id(dom0: Client) -> None:
    for op in (Op.GET_DOMAIN_PATH, Op.CONTROL, Op.RESET_WATCHES, Op.TRANSACTION_START):
        assert dom0.raw_err(op, b"0\0", 77) == "ENOENT"
    assert dom0.raw(Op.WATCH, b"/w\0t\0", 77).payload == OK
    assert dom0.raw(Op.UNWATCH, b"/w\0t\0", 77).payload == OK


# -- §3/§4 paths ---------------------------------------------------------------------------------
def test_path_length_outside_domain_home(dom0: Client) -> None:
    assert dom0.write("/" + "a" * 2047).payload == OK
    assert dom0.write("/" + "a" * 2048).payload == b"EINVAL\0"


def test_path_length_under_domain_home(dom0: Client) -> None:
    prefix = "/local/domain/7/"
    assert dom0.write(prefix + "a" * 2048).payload == OK
    assert dom0.write(prefix + "a" * 2049).payload == b"EINVAL\0"
    long_prefix = "/local/domain/123456/"
    rest = 2048 - len(long_prefix)
    assert dom0.write(long_prefix + "a" * rest).payload == OK
    assert dom0.write(long_prefix + "a" * (rest + 1)).payload == b"EINVAL\0"


def test_relative_paths_on_dom0_socket_go_to_domain_0(dom0: Client) -> None:
    dom0.ok_write("rel", "x")
    assert dom0.read("/local/domain/0/rel") == b"x"


def test_at_is_ordinary_inside_paths(dom0: Client) -> None:
    dom0.ok_write("/@foo", "1")
    dom0.ok_write("/a@b", "2")
    assert dom0.read("/@foo") == b"1" and dom0.read("/a@b") == b"2"


def test_path_max_quota_changes_limit(engine: Engine, dom0: Client) -> None:
    dom0.call(Op.CONTROL, "quota", "set", "path-max", "10")
    assert dom0.write("/" + "a" * 10).payload == b"EINVAL\0"
    assert dom0.write("/" + "a" * 9).payload == OK
