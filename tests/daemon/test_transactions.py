"""§7 transactions: ids, END rules, isolation, and every row of the conflict table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xsactor.daemon.toolstack import GUEST_OWNED_NODES
from xsactor.protocol import Op

from .conftest import Client, Engine


def test_ids_are_per_connection_and_never_reused(dom0: Client) -> None:
    other = Client(dom0.xs)
    assert [dom0.start(), dom0.start()] == [1, 2]
    assert other.start() == 1
    dom0.end(1)
    assert dom0.start() == 3
    assert other.err(Op.READ, "/tool", tx_id=2) == "ENOENT"


def test_start_inside_transaction_is_ebusy(dom0: Client) -> None:
    tx = dom0.start()
    assert dom0.raw_err(Op.TRANSACTION_START, b"\0", tx) == "EBUSY"
    assert dom0.raw_err(Op.TRANSACTION_START, b"\0", 99) == "ENOENT"


def test_end_rules(dom0: Client) -> None:
    assert dom0.raw_err(Op.TRANSACTION_END, b"X\0", 0) == "EINVAL"
    assert dom0.raw_err(Op.TRANSACTION_END, b"T", 0) == "EINVAL"
    assert dom0.raw_err(Op.TRANSACTION_END, b"T\0", 0) == "ENOENT"
    tx = dom0.start()
    assert dom0.end(tx).payload == b"OK\0"
    assert dom0.end(tx).payload == b"ENOENT\0"


def test_isolation(dom0: Client) -> None:
    other = Client(dom0.xs)
    tx = dom0.start()
    dom0.ok_write("/iso", "in-tx", tx)
    assert dom0.read("/iso", tx) == b"in-tx"
    assert dom0.err(Op.READ, "/iso") == "ENOENT"
    assert other.err(Op.READ, "/iso") == "ENOENT"
    assert dom0.end(tx).payload == b"OK\0"
    assert other.read("/iso") == b"in-tx"


def test_failed_requests_do_not_spoil_the_transaction(dom0: Client) -> None:
    tx = dom0.start()
    assert dom0.err(Op.READ, "/missing", tx_id=tx) == "ENOENT"
    assert dom0.err(Op.RM, "/", tx_id=tx) == "EINVAL"
    assert dom0.raw_err(Op.READ, b"bad.path\0", tx) == "EINVAL"
    dom0.ok_write("/after", "1", tx)
    assert dom0.end(tx).payload == b"OK\0"


Step = Callable[[Client, int], object]  # what a step returns is not looked at


def _read(path: str) -> Step:
    return lambda c, tx: c.raw(Op.READ, path.encode() + b"\0", tx) and None


def _write(path: str, value: str = "v") -> Step:
    return lambda c, tx: c.ok_write(path, value, tx)


def _rm(path: str) -> Step:
    return lambda c, tx: c.rm(path, tx)


def _op(op: int, path: str, *extra: str) -> Step:
    return lambda c, tx: c.call(op, path, *extra, tx_id=tx) and None


SETUP = {"/c/a": "1", "/c/a2": "1", "/A": "1", "/B": "1", "/z": "1"}

# (what the transaction did, what happened outside, expected commit reply)
TABLE: list[tuple[str, list[Step], list[Step], str]] = [
    ("read A, write B / write A", [_read("/A"), _write("/B")], [_write("/A", "2")], "EAGAIN"),
    ("blind write A / same value", [_write("/A", "x")], [_write("/A", "1")], "EAGAIN"),
    ("create /c/new / create sibling", [_write("/c/new")], [_write("/c/other")], "EAGAIN"),
    ("read A / write unrelated", [_read("/A")], [_write("/z", "2")], "OK"),
    ("read missing / create it", [_read("/c/m")], [_write("/c/m")], "EAGAIN"),
    ("write A / sibling value", [_write("/c/a", "x")], [_write("/c/a2", "2")], "OK"),
    ("only read A / write A", [_read("/A")], [_write("/A", "2")], "EAGAIN"),
    ("DIRECTORY /c / add child", [_op(Op.DIRECTORY, "/c")], [_write("/c/new2")], "EAGAIN"),
    ("DIRECTORY /c / child value", [_op(Op.DIRECTORY, "/c")], [_write("/c/a", "2")], "OK"),
    ("RM /c/a / write /c/a", [_rm("/c/a")], [_write("/c/a", "2")], "EAGAIN"),
    ("RM /c / write /c/a2", [_rm("/c")], [_write("/c/a2", "2")], "EAGAIN"),
    ("GET_PERMS A / SET_PERMS A", [_op(Op.GET_PERMS, "/A")],
     [lambda c, tx: c.chmod("/A", "n0")], "EAGAIN"),
    ("read A / MKDIR existing A", [_read("/A")], [lambda c, tx: c.mkdir("/A")], "OK"),
    ("read A / RM missing", [_read("/A")], [_rm("/c/missing")], "OK"),
    ("write A / create A/sub", [_write("/A", "x")], [_write("/A/sub")], "EAGAIN"),
    ("read A / write A and back", [_read("/A")], [_write("/A", "2"), _write("/A", "1")],
     "EAGAIN"),
]


@pytest.mark.parametrize(("inside", "outside", "expected"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
@pytest.mark.parametrize("same_connection", [False, True])
def test_conflict_table(dom0: Client, inside: list[Step], outside: list[Step],
                        expected: str, same_connection: bool) -> None:
    for path, value in SETUP.items():
        dom0.ok_write(path, value)
    actor = dom0 if same_connection else Client(dom0.xs)
    tx = dom0.start()
    for step in inside:
        step(dom0, tx)
    for step in outside:
        step(actor, 0)
    reply = dom0.end(tx)
    assert reply.payload.rstrip(b"\0").decode() == expected


def test_two_transactions_first_commit_wins(dom0: Client) -> None:
    dom0.ok_write("/A", "a")
    dom0.ok_write("/B", "b")
    other = Client(dom0.xs)
    t1 = dom0.start()
    t2 = other.start()
    dom0.read("/A", t1)
    other.read("/B", t2)
    dom0.ok_write("/B", "1", t1)
    other.ok_write("/A", "2", t2)
    assert dom0.end(t1).payload == b"OK\0"
    assert other.end(t2).payload == b"EAGAIN\0"
    assert dom0.read("/A") == b"a" and dom0.read("/B") == b"1"


def test_conflicted_commit_changes_nothing(dom0: Client) -> None:
    dom0.ok_write("/A", "a")
    before = dom0.xs.store.dump()
    tx = dom0.start()
    dom0.read("/A", tx)
    dom0.ok_write("/new/deep", "x", tx)
    Client(dom0.xs).ok_write("/A", "b")
    before = dom0.xs.store.dump()
    assert dom0.end(tx).payload == b"EAGAIN\0"
    assert dom0.xs.store.dump() == before
    assert dom0.xs.store.problems() == []


def test_transaction_nodes_quota_fails_transaction(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    engine.dom0().call(Op.CONTROL, "quota", "set", "transaction-nodes", "3")
    tx = g.start()
    g.read("name", tx)
    g.read("domid", tx)
    g.read("vm", tx)
    assert g.err(Op.READ, "data", tx_id=tx) == "ENOSPC"
    assert g.end(tx).payload == b"ENOMEM\0"
    assert g.err(Op.READ, "name", tx_id=tx) == "ENOENT"


def test_guest_transaction_quota(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    ids = [g.start() for _ in range(11)]
    assert g.err(Op.TRANSACTION_START, "") == "ENOSPC"
    g.end(ids[0])
    g.start()
    dom0 = engine.dom0()
    assert len([dom0.start() for _ in range(16)]) == 16


def test_node_quota_checked_at_commit(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    engine.dom0().call(Op.CONTROL, "quota", "set", "nodes", "14")   # it owns 11
    tx = g.start()
    for i in range(5):
        g.ok_write(f"data/n{i}", "x", tx)
    before = engine.xs.store.dump()
    assert g.end(tx).payload == b"ENOSPC\0"
    assert engine.xs.store.dump() == before


def test_rm_of_child_created_outside_under_tx_parent_is_eio(dom0: Client) -> None:
    tx = dom0.start()
    dom0.ok_write("/x", "", tx)
    Client(dom0.xs).ok_write("/x/y", "1")
    assert dom0.err(Op.RM, "/x/y", tx_id=tx) == "EIO"
    assert dom0.end(tx).payload == b"EAGAIN\0"


@pytest.mark.parametrize("case", ["existing", "new", "parent", "set_perms"])
def test_node_size_failure_inside_transaction_fails_it(engine: Engine, case: str) -> None:
    """Verified on 4.17: the request gets ENOSPC and the commit ENOMEM."""
    engine.add_guest(5)
    g = engine.guest(5)
    g.ok_write("data/e", "x")
    g.ok_write("data/p", b"d" * 2000)
    tx = g.start()
    if case == "existing":
        assert g.write("data/e", b"x" * 2016, tx).payload == b"ENOSPC\0"
    elif case == "new":
        assert g.write("data/n", b"x" * 2016, tx).payload == b"ENOSPC\0"
    elif case == "parent":
        assert g.write("data/p/" + "e" * 15, b"", tx).payload == b"ENOSPC\0"
    else:
        assert g.err(Op.SET_PERMS, "data/p", "n5", "r1", "r2", tx_id=tx) == "ENOSPC"
    g.ok_write("data/small", "x", tx)
    assert g.end(tx).payload == b"ENOMEM\0"


def test_node_quota_at_commit_only_for_guest_connections(engine: Engine) -> None:
    """Verified on 4.17: dom0 may commit nodes that take a guest over its quota."""
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.call(Op.CONTROL, "quota", "set", "nodes", str(GUEST_OWNED_NODES + 1))
    tx = dom0.start()
    for i in range(5):
        dom0.ok_write(f"/local/domain/5/data/d{i}", "", tx)
    assert dom0.end(tx).payload == b"OK\0"
    assert engine.xs.store.owned_by(5) == GUEST_OWNED_NODES + 5
