"""§7 Transactions: ids, isolation, unknown ids, END rules, and 4.17's per-node conflict
detection (every row of the verified table)."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op, Packet

from .conftest import Conn, Harness
from .util import OK, assert_error, assert_ok, assert_success, watch, wr

# -- ids ------------------------------------------------------------------------------------


def test_ids_count_from_one_per_connection(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    assert [a.start(), a.start(), a.start()] == [1, 2, 3]
    assert b.start() == 1


def test_ids_are_not_reused(daemon: Harness) -> None:
    c = daemon.dom0()
    first = c.start()
    c.end(first, commit=False)
    second = c.start()
    c.end(second)
    assert (first, second, c.start()) == (1, 2, 3)


def test_guest_ids_count_from_one(daemon: Harness) -> None:
    g = daemon.guest()
    assert g.start() == 1
    assert g.start() == 2


def test_start_reply_payload(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.request(Op.TRANSACTION_START, "ignored", "args")
    assert (reply.op, reply.payload) == (Op.TRANSACTION_START, b"1\0")


def test_other_connections_id_is_enoent(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    a.start()
    a.start()
    tx = a.start()
    assert_error(b.request(Op.READ, daemon.p(), tx_id=tx), "ENOENT")
    assert_error(wr(b, daemon.p("x"), b"", tx_id=tx), "ENOENT")


UNKNOWN_TX_OPS = [
    (Op.READ, ("P",)), (Op.WRITE, ("P", "v")), (Op.MKDIR, ("P",)), (Op.RM, ("P",)),
    (Op.DIRECTORY, ("P",)), (Op.GET_PERMS, ("P",)), (Op.SET_PERMS, ("P", "n0")),
    (Op.DIRECTORY_PART, ("P", "0")), (Op.GET_DOMAIN_PATH, ("0",)), (Op.CONTROL, ("check",)),
    (Op.RESET_WATCHES, ()), (Op.IS_DOMAIN_INTRODUCED, ("0",)),
    (Op.TRANSACTION_START, ("",)), (Op.TRANSACTION_END, ("T",)),
    # these would be EINVAL with a valid tx_id: the tx_id is checked first
    (Op.RESUME, ("0",)), (Op.RELEASE, ("0",)), (Op.SET_TARGET, ("0", "0")),
    (Op.INTRODUCE, ("0", "0", "0")),
]


@pytest.mark.parametrize("op, args", UNKNOWN_TX_OPS, ids=[Op(o).name for o, _ in UNKNOWN_TX_OPS])
def test_unknown_tx_id_is_enoent(daemon: Harness, op: int, args: tuple) -> None:
    c = daemon.dom0()
    c.write(daemon.p(), b"keep")
    watch_path = daemon.p()
    watch(c, watch_path, "t")
    args = tuple(daemon.p() if a == "P" else a for a in args)
    reply = c.exchange(Packet.request(op, *args, req_id=3, tx_id=999))
    assert (reply.op, reply.req_id, reply.tx_id) == (Op.ERROR, 3, 999)
    assert reply.payload == b"ENOENT\0"
    assert c.read(daemon.p()) == b"keep"
    c.write(daemon.p(), b"again")
    assert c.next_event() == (watch_path.encode(), b"t"), "the watch survived"


@pytest.mark.parametrize("op, args, error", [
    (Op.CONTROL, ("check",), "EACCES"), (Op.RELEASE, ("1",), "EACCES"),
    (Op.READ, ("domid",), "ENOENT"), (Op.TRANSACTION_START, ("",), "ENOENT"),
])
def test_guest_unknown_tx_id_after_privilege_check(daemon: Harness, op: int, args: tuple,
                                                   error: str) -> None:
    g = daemon.guest()
    reply = g.exchange(Packet.request(op, *args, req_id=1, tx_id=99))
    assert (reply.tx_id, reply.payload) == (99, error.encode() + b"\0")


def test_start_inside_transaction_is_ebusy(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    assert_error(c.request(Op.TRANSACTION_START, "", tx_id=tx), "EBUSY")
    c.end(tx)


# -- isolation ------------------------------------------------------------------------------

def test_writes_are_invisible_until_commit(daemon: Harness) -> None:
    c, o = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("a"), b"old")
    tx = c.start()
    c.write(daemon.p("a"), b"new", tx_id=tx)
    c.write(daemon.p("b"), b"created", tx_id=tx)
    assert c.read(daemon.p("a"), tx_id=tx) == b"new"
    assert c.read(daemon.p("a")) == b"old"
    assert o.read(daemon.p("a")) == b"old"
    assert_error(o.request(Op.READ, daemon.p("b")), "ENOENT")
    assert_error(c.request(Op.READ, daemon.p("b")), "ENOENT")
    c.end(tx)
    assert o.read(daemon.p("a")) == b"new"
    assert o.read(daemon.p("b")) == b"created"


def test_abort_discards_writes(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a"), b"old")
    tx = c.start()
    c.write(daemon.p("a"), b"new", tx_id=tx)
    c.rm(daemon.p("a"), tx_id=tx)
    c.end(tx, commit=False)
    assert c.read(daemon.p("a")) == b"old"


def test_rm_inside_transaction(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a", "b"), b"x")
    tx = c.start()
    c.rm(daemon.p("a"), tx_id=tx)
    assert_error(c.request(Op.READ, daemon.p("a", "b"), tx_id=tx), "ENOENT")
    assert c.read(daemon.p("a", "b")) == b"x"
    c.end(tx)
    assert_error(c.request(Op.READ, daemon.p("a")), "ENOENT")


def test_directory_inside_transaction(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("d", "a"), b"")
    tx = c.start()
    c.write(daemon.p("d", "b"), b"", tx_id=tx)
    c.rm(daemon.p("d", "a"), tx_id=tx)
    assert c.directory(daemon.p("d"), tx_id=tx) == [b"b"]
    assert c.directory(daemon.p("d")) == [b"a"]
    c.end(tx)
    assert c.directory(daemon.p("d")) == [b"b"]


def test_perms_inside_transaction(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("a"), b"")
    tx = c.start()
    c.set_perms(daemon.p("a"), ["r0", "w1"], tx_id=tx)
    assert c.get_perms(daemon.p("a"), tx_id=tx) == ["r0", "w1"]
    assert c.get_perms(daemon.p("a")) == ["n0"]
    c.end(tx)
    assert c.get_perms(daemon.p("a")) == ["r0", "w1"]


def test_create_and_delete_within_transaction(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p(), b"")
    tx = c.start()
    c.write(daemon.p("tmp", "x"), b"1", tx_id=tx)
    c.rm(daemon.p("tmp"), tx_id=tx)
    c.end(tx)
    assert c.directory(daemon.p()) == []


def test_untouched_node_reads_current_value(daemon: Harness) -> None:
    c, o = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("a"), b"0")
    tx = c.start()
    o.write(daemon.p("a"), b"1")
    assert c.read(daemon.p("a"), tx_id=tx) == b"1"
    c.write(daemon.p("b"), b"x", tx_id=tx)
    c.end(tx)


def test_empty_transaction_commits(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    assert_ok(c.request(Op.TRANSACTION_END, "T", tx_id=tx))


def test_guest_transaction_commits(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    g.write("data/a", b"1", tx_id=tx)
    assert_error(daemon.dom0().request(Op.READ, f"{g.home}/data/a"), "ENOENT")
    g.end(tx)
    assert daemon.dom0().read(f"{g.home}/data/a") == b"1"


def test_guest_transaction_permission_errors(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    assert_error(wr(g, f"{g.home}/name", b"x", tx_id=tx), "EACCES")
    assert_error(g.request(Op.READ, f"/libxl/{g.domid}", tx_id=tx), "EACCES")
    g.write("data/ok", b"1", tx_id=tx)
    g.end(tx)
    assert g.read("data/ok") == b"1"


# -- END ------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"X\0", b"t\0", b"TRUE\0", b"\0", b"", b"T", b"1\0"])
def test_end_payload_checked_first(daemon: Harness, payload: bytes) -> None:
    c = daemon.dom0()
    c.write(daemon.p(), b"")
    assert_error(c.request(Op.READ, daemon.p("nope")), "ENOENT")
    assert_error(c.raw_request(Op.TRANSACTION_END, payload, 0), "EINVAL")


@pytest.mark.parametrize("what", ["T", "F"])
def test_end_without_transaction_is_enoent(daemon: Harness, what: str) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.TRANSACTION_END, what), "ENOENT")
    assert_error(c.request(Op.TRANSACTION_END, what, tx_id=12345), "ENOENT")


def test_end_twice_is_enoent(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    assert_ok(c.request(Op.TRANSACTION_END, "T", tx_id=tx))
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")
    tx = c.start()
    assert_ok(c.request(Op.TRANSACTION_END, "F", tx_id=tx))
    assert_error(c.request(Op.TRANSACTION_END, "F", tx_id=tx), "ENOENT")
    assert_error(c.request(Op.READ, daemon.p(), tx_id=tx), "ENOENT")


def test_failed_commit_ends_the_transaction(daemon: Harness) -> None:
    c, o = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("a"), b"0")
    tx = c.start()
    c.read(daemon.p("a"), tx_id=tx)
    o.write(daemon.p("a"), b"1")
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "EAGAIN")
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")
    assert_error(c.request(Op.READ, daemon.p("a"), tx_id=tx), "ENOENT")


def test_end_reply_echoes_tx_id(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    reply = c.exchange(Packet.request(Op.TRANSACTION_END, "T", req_id=8, tx_id=tx))
    assert (reply.op, reply.req_id, reply.tx_id, reply.payload) == (Op.TRANSACTION_END, 8, tx, OK)


def test_failed_requests_do_not_spoil_the_transaction(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    c.write(daemon.p("a"), b"1", tx_id=tx)
    assert_error(c.request(Op.READ, daemon.p("missing"), tx_id=tx), "ENOENT")
    assert_error(wr(c, daemon.p("bad.path"), b"", tx_id=tx), "EINVAL")
    assert_error(c.request(Op.RM, "/", tx_id=tx), "EINVAL")
    assert_error(c.request(Op.SET_PERMS, daemon.p("missing"), "n0", tx_id=tx), "ENOENT")
    assert_error(c.request(Op.SET_PERMS, daemon.p("a"), "x0", tx_id=tx), "EINVAL")
    assert_ok(c.request(Op.TRANSACTION_END, "T", tx_id=tx))
    assert c.read(daemon.p("a")) == b"1"


def test_dom0_has_many_concurrent_transactions(daemon: Harness) -> None:
    c = daemon.dom0()
    for i in range(16):
        c.write(daemon.p(f"n{i}"), b"")
    ids = [c.start() for _ in range(16)]
    for i, tx in enumerate(ids):
        c.write(daemon.p(f"n{i}"), str(i), tx_id=tx)
    for tx in ids:
        c.end(tx)
    assert [c.read(daemon.p(f"n{i}")) for i in range(16)] == [str(i).encode() for i in range(16)]


# -- conflicts ------------------------------------------------------------------------------

Step = tuple[str, ...]


def run(c: Conn, prefix: str, steps: list[Step], tx_id: int = 0) -> None:
    """w path value | r path | d path | rm path | gp path | sp path perm | mk path."""
    for kind, path, *rest in steps:
        full = f"{prefix}/{path}"
        if kind == "w":
            reply = wr(c, full, rest[0], tx_id=tx_id)
        elif kind == "sp":
            reply = c.request(Op.SET_PERMS, full, *rest, tx_id=tx_id)
        else:
            op = {"r": Op.READ, "d": Op.DIRECTORY, "rm": Op.RM, "gp": Op.GET_PERMS,
                  "mk": Op.MKDIR}[kind]
            reply = c.request(op, full, tx_id=tx_id)
        if kind != "r":
            assert_success(reply)


CONFLICTS = [
    ("read-A-write-B/write-A", [("w", "A", "0")], [("r", "A"), ("w", "B", "1")],
     [("w", "A", "x")], "EAGAIN"),
    ("blind-write-A/same-value", [("w", "A", "0")], [("w", "A", "1")], [("w", "A", "0")],
     "EAGAIN"),
    ("create-child/create-sibling", [("mk", "c")], [("w", "c/new", "1")],
     [("w", "c/other", "1")], "EAGAIN"),
    ("read-A/write-unrelated", [("w", "A", "0"), ("w", "z", "0")], [("r", "A")],
     [("w", "z", "1")], "OK"),
    ("read-missing/create-it", [("mk", "c")], [("r", "c/m")], [("w", "c/m", "1")], "EAGAIN"),
    ("write-A/sibling-value", [("w", "A", "0"), ("w", "A2", "0")], [("w", "A", "1")],
     [("w", "A2", "1")], "OK"),
    ("only-read-A/write-A", [("w", "A", "0")], [("r", "A")], [("w", "A", "1")], "EAGAIN"),
    ("directory/add-child", [("w", "c/a", "0")], [("d", "c")], [("w", "c/b", "0")], "EAGAIN"),
    ("directory/child-value", [("w", "c/a", "0")], [("d", "c")], [("w", "c/a", "1")], "OK"),
    ("rm-child/write-it", [("w", "c/a", "0")], [("rm", "c/a")], [("w", "c/a", "1")], "EAGAIN"),
    ("rm-parent/write-child", [("w", "c/a", "0"), ("w", "c/a2", "0")], [("rm", "c")],
     [("w", "c/a2", "1")], "EAGAIN"),
    ("get-perms/set-perms", [("w", "A", "0")], [("gp", "A")], [("sp", "A", "n0")], "EAGAIN"),
    ("read-A/mkdir-existing", [("w", "A", "0")], [("r", "A")], [("mk", "A")], "OK"),
    ("read-A/rm-missing", [("w", "A", "0")], [("r", "A")], [("rm", "missing")], "OK"),
    ("write-A/create-sub", [("w", "A", "0")], [("w", "A", "1")], [("w", "A/sub", "1")],
     "EAGAIN"),
    ("read-A/write-and-back", [("w", "A", "0")], [("r", "A")],
     [("w", "A", "1"), ("w", "A", "0")], "EAGAIN"),
    ("read-A/set-perms-unrelated", [("w", "A", "0"), ("w", "B", "0")], [("r", "A")],
     [("sp", "B", "r0")], "OK"),
    ("write-A/rm-A", [("w", "A", "0")], [("w", "A", "1")], [("rm", "A")], "EAGAIN"),
    ("read-parent/write-child", [("w", "c/a", "0")], [("r", "c")], [("w", "c/a", "1")], "OK"),
    ("create-deep/create-intermediate", [("mk", "c")], [("w", "c/x/y", "1")],
     [("w", "c/x", "1")], "EAGAIN"),
]


@pytest.mark.parametrize("setup, inside, outside, expected",
                         [row[1:] for row in CONFLICTS], ids=[row[0] for row in CONFLICTS])
def test_conflict_table(daemon: Harness, setup: list[Step], inside: list[Step],
                        outside: list[Step], expected: str) -> None:
    c, o = daemon.dom0(), daemon.dom0()
    run(c, daemon.prefix, setup)
    tx = c.start()
    run(c, daemon.prefix, inside, tx_id=tx)
    run(o, daemon.prefix, outside)
    reply = c.request(Op.TRANSACTION_END, "T", tx_id=tx)
    if expected == "OK":
        assert_ok(reply)
    else:
        assert_error(reply, expected)


def test_outside_change_by_same_connection_conflicts(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("A"), b"0")
    tx = c.start()
    c.read(daemon.p("A"), tx_id=tx)
    c.write(daemon.p("B"), b"1", tx_id=tx)
    c.write(daemon.p("A"), b"2")
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "EAGAIN")
    assert_error(c.request(Op.READ, daemon.p("B")), "ENOENT")


def test_two_transactions_first_commit_wins(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    a.write(daemon.p("A"), b"0")
    a.write(daemon.p("B"), b"0")
    t1, t2 = a.start(), b.start()
    a.read(daemon.p("A"), tx_id=t1)
    a.write(daemon.p("B"), b"1", tx_id=t1)
    b.read(daemon.p("B"), tx_id=t2)
    b.write(daemon.p("A"), b"2", tx_id=t2)
    assert_ok(a.request(Op.TRANSACTION_END, "T", tx_id=t1))
    assert_error(b.request(Op.TRANSACTION_END, "T", tx_id=t2), "EAGAIN")
    assert (a.read(daemon.p("A")), a.read(daemon.p("B"))) == (b"0", b"1")


def test_two_transactions_on_one_connection(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("A"), b"0")
    t1, t2 = c.start(), c.start()
    c.write(daemon.p("A"), b"1", tx_id=t1)
    c.write(daemon.p("A"), b"2", tx_id=t2)
    assert c.read(daemon.p("A"), tx_id=t1) == b"1"
    assert c.read(daemon.p("A"), tx_id=t2) == b"2"
    assert_ok(c.request(Op.TRANSACTION_END, "T", tx_id=t2))
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=t1), "EAGAIN")
    assert c.read(daemon.p("A")) == b"2"


def test_disjoint_transactions_both_commit(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    a.write(daemon.p("A"), b"0")
    a.write(daemon.p("B"), b"0")
    t1, t2 = a.start(), b.start()
    a.write(daemon.p("A"), b"1", tx_id=t1)
    b.write(daemon.p("B"), b"1", tx_id=t2)
    a.end(t1)
    b.end(t2)
    assert (a.read(daemon.p("A")), a.read(daemon.p("B"))) == (b"1", b"1")


def test_rm_in_tx_of_child_created_outside_under_tx_created_parent(daemon: Harness) -> None:
    """4.17 quirk (reference notes): EIO."""
    c, o = daemon.dom0(), daemon.dom0()
    c.write(daemon.p(), b"")
    tx = c.start()
    c.write(daemon.p("c", "new"), b"", tx_id=tx)
    o.write(daemon.p("c", "x"), b"")
    assert_error(c.request(Op.RM, daemon.p("c", "x"), tx_id=tx), "EIO")


@pytest.mark.parametrize("chown, end, commit", [
    ("from", "gone", "ENOMEM"),
    ("to", "gone", "ENOMEM"),
    ("from", "release", "EAGAIN"),
    ("to", "release", "OK"),
])
def test_commit_after_a_domain_it_counted_nodes_for_is_gone(daemon: Harness, chown: str,
                                                           end: str, commit: str) -> None:
    """Differential finding: a commit moves the node counts the transaction changed; when
    one of those domains has vanished for good (no record, and the hypervisor does not know
    it) 4.17 answers ENOMEM, before any conflict. After RELEASE the hypervisor still knows
    the domain: the commit goes on (and conflicts if the released domain's nodes went)."""
    g = daemon.guest()
    c, ctl = daemon.dom0(), daemon.dom0()
    mine, other = daemon.p("mine"), daemon.p("other")
    c.write(mine, b"")
    c.set_perms(mine, [f"n{g.domid}"])
    c.write(other, b"")
    tx = c.start()
    if chown == "from":
        assert_ok(c.request(Op.SET_PERMS, mine, "n0", tx_id=tx))
    else:
        assert_ok(c.request(Op.SET_PERMS, other, f"n{g.domid}", tx_id=tx))
    if end == "release":
        ctl.release(g.domid)
    else:
        daemon.set_domain_state(g.domid, end)
    reply = c.request(Op.TRANSACTION_END, "T", tx_id=tx)
    if commit == "OK":
        assert_ok(reply)
    else:
        assert_error(reply, commit)


@pytest.mark.parametrize("create", ["mkdir", "write"])
def test_a_child_made_again_under_a_stale_parent_is_listed_twice(daemon: Harness,
                                                                 create: str) -> None:
    """Differential finding (narrow seed 6284): a transaction's copy of a parent still lists a
    child removed outside since; making that child again in the transaction appends its name
    again, as 4.17 appends a new child's name without looking. DIRECTORY and DIRECTORY_PART
    show it twice; RM takes the first occurrence; an RM of the parent meets the second as a
    child it cannot read (EIO), its walk stopped where it was; the commit conflicts."""
    c, outside = daemon.dom0(), daemon.dom0()
    parent = daemon.p("parent")
    c.write(parent + "/c", b"v")
    c.write(parent + "/z", b"v")
    tx = c.start()
    assert_ok(c.request(Op.SET_PERMS, parent, "n0", "r1", tx_id=tx))  # the copy lists c
    assert_ok(outside.request(Op.RM, parent + "/c"))
    if create == "mkdir":
        assert_ok(c.request(Op.MKDIR, parent + "/c", tx_id=tx))
    else:
        assert_ok(wr(c, parent + "/c", b"w", tx_id=tx))

    def listing() -> bytes:
        return assert_success(c.request(Op.DIRECTORY, parent, tx_id=tx))

    assert listing() == b"c\0z\0c\0"
    part = assert_success(c.request(Op.DIRECTORY_PART, parent, "0", tx_id=tx))
    assert part.split(b"\0", 1)[1] == b"c\0z\0c\0\0"
    assert_ok(c.request(Op.RM, parent + "/c", tx_id=tx))
    assert listing() == b"z\0c\0"
    assert_ok(c.request(Op.MKDIR, parent + "/c", tx_id=tx))
    assert_ok(c.request(Op.MKDIR, parent + "/d", tx_id=tx))
    assert listing() == b"z\0c\0c\0d\0"
    assert_error(c.request(Op.RM, parent, tx_id=tx), "EIO")
    assert listing() == b"c\0d\0"  # z and the first c went before the walk stopped
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "EAGAIN")
    assert c.directory(parent) == [b"z"]
