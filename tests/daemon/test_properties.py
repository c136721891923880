"""Property tests of the store: random request sequences against a plain model, transaction
serializability, and the tree/accounting invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor.protocol import Op
from xsactor.protocol.paths import ancestors, is_within
from xsactor.protocol.paths import parent as parent_of

from .conftest import Client, Engine

NAMES = ["a", "b", "c"]
PATHS = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(
    lambda parts: "/t/" + "/".join(parts))
VALUES = st.binary(max_size=8)
OPS = st.one_of(
    st.tuples(st.just("write"), PATHS, VALUES),
    st.tuples(st.just("mkdir"), PATHS, st.just(b"")),
    st.tuples(st.just("rm"), PATHS, st.just(b"")),
    st.tuples(st.just("read"), PATHS, st.just(b"")),
    st.tuples(st.just("ls"), PATHS, st.just(b"")),
)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Model:
    """What dom0 should see: path -> value; every ancestor of a node exists."""

    def __init__(self) -> None:
        self.nodes: dict[str, bytes] = {"/t": b""}

    def apply(self, op: str, path: str, value: bytes) -> tuple[str, object]:
        if op == "write":
            self._create(path)
            self.nodes[path] = value
            return "ok", None
        if op == "mkdir":
            self._create(path)
            return "ok", None
        if op == "rm":
            if path in self.nodes:
                for p in [p for p in self.nodes if is_within(p, path)]:
                    del self.nodes[p]
                return "ok", None
            return ("ok", None) if parent_of(path) in self.nodes else ("err", "ENOENT")
        if op == "read":
            return ("ok", self.nodes[path]) if path in self.nodes else ("err", "ENOENT")
        if path not in self.nodes:
            return "err", "ENOENT"
        prefix = path + "/"
        return "ok", sorted(p[len(prefix):] for p in self.nodes
                            if p.startswith(prefix) and "/" not in p[len(prefix):])

    def _create(self, path: str) -> None:
        for p in [*reversed(ancestors(path)), path]:
            if p.startswith("/t"):
                self.nodes.setdefault(p, b"")


def run(c: Client, op: str, path: str, value: bytes, tx_id: int = 0) -> tuple[str, object]:
    if op == "write":
        reply = c.write(path, value, tx_id)
    elif op == "mkdir":
        reply = c.request(Op.MKDIR, path, tx_id=tx_id)
    elif op == "rm":
        reply = c.request(Op.RM, path, tx_id=tx_id)
    elif op == "read":
        reply = c.request(Op.READ, path, tx_id=tx_id)
    else:
        reply = c.request(Op.DIRECTORY, path, tx_id=tx_id)
    if reply.op == Op.ERROR:
        return "err", reply.payload.rstrip(b"\0").decode()
    if op == "read":
        return "ok", reply.payload
    if op == "ls":
        return "ok", sorted(n.decode() for n in reply.payload.split(b"\0")[:-1])
    return "ok", None


def snapshot(c: Client) -> dict[str, bytes]:
    return {p: n.value for p, n in c.xs.store.nodes.items() if is_within(p, "/t")}


@SETTINGS
@given(st.lists(OPS, max_size=40))
def test_requests_match_model(ops: list) -> None:
    engine = Engine()
    c = engine.dom0()
    c.ok_write("/t")
    model = Model()
    for op, path, value in ops:
        assert run(c, op, path, value) == model.apply(op, path, value), (op, path)
    assert snapshot(c) == model.nodes
    assert engine.xs.store.problems() == []


@SETTINGS
@given(st.lists(OPS, max_size=15), st.lists(OPS, max_size=15), st.lists(st.booleans(),
                                                                        max_size=30))
def test_transactions_are_serializable(inside: list, outside: list,
                                       interleave: list[bool]) -> None:
    """A transaction that commits has the effect of running its requests after everything
    that happened outside it; one that fails (EAGAIN) changes nothing; until it ends,
    nobody else sees it."""
    engine = Engine()
    c = engine.dom0()
    other = engine.dom0()
    c.ok_write("/t")
    tx = c.start()
    inside_q, outside_q = list(inside), list(outside)
    outside_model = Model()
    choices = iter(interleave)
    while inside_q or outside_q:
        take_inside = inside_q and (not outside_q or next(choices, True))
        if take_inside:
            op, path, value = inside_q.pop(0)
            run(c, op, path, value, tx_id=tx)
        else:
            op, path, value = outside_q.pop(0)
            assert run(other, op, path, value) == outside_model.apply(op, path, value)
            assert snapshot(other) == outside_model.nodes
    reply = c.end(tx)
    serial = Model()
    serial.nodes = dict(outside_model.nodes)
    for op, path, value in inside:
        serial.apply(op, path, value)
    if reply.payload == b"OK\0":
        assert snapshot(c) == serial.nodes
    else:
        assert reply.payload == b"EAGAIN\0"
        assert snapshot(c) == outside_model.nodes
    assert engine.xs.store.problems() == []


GUEST_PATHS = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(
    lambda parts: "data/" + "/".join(parts))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["guest", "dom0"]),
                          st.sampled_from(["write", "mkdir", "rm", "chmod", "tx"]),
                          GUEST_PATHS, st.booleans()), max_size=30),
       st.integers(min_value=12, max_value=20))
def test_node_accounting_invariants(steps: list, nodes_quota: int) -> None:
    """Whatever guests and dom0 do (quota failures, chown, transactions), every node's owner
    is counted exactly once and the tree stays consistent."""
    engine = Engine()
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.call(Op.CONTROL, "quota", "set", "nodes", str(nodes_quota))
    guest = engine.guest(5)
    for who, op, path, flag in steps:
        c = guest if who == "guest" else dom0
        full = "/local/domain/5/" + path
        if op == "write":
            c.write(full, b"v" * (3000 if flag else 1))
        elif op == "mkdir":
            c.request(Op.MKDIR, full)
        elif op == "rm":
            c.request(Op.RM, full)
        elif op == "chmod":
            c.request(Op.SET_PERMS, full, "n0" if flag else "n5", "r5")
        else:
            tx = c.start()
            c.write(full, b"t", tx)
            c.write(full + "/x", b"t", tx)
            c.end(tx, commit=flag)
        assert engine.xs.store.problems() == [], (who, op, path, flag)


TX_STEPS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["write", "mkdir", "rm", "read"]),
                              PATHS), max_size=40)


@SETTINGS
@given(TX_STEPS, st.lists(st.booleans(), max_size=3))
def test_overlapping_transactions_keep_the_tree_whole(steps: list, commits: list[bool]) -> None:
    """Two transactions and plain requests interleaved, then both transactions end: whatever
    commits, the stored tree (linked through the parents) is exactly what a walk of its
    child lists finds, and every lookup agrees with it."""
    engine = Engine()
    clients = [engine.dom0() for _ in range(3)]
    clients[0].ok_write("/t")
    txs = [clients[1].start(), clients[2].start()]
    for who, op, path in steps:
        tx = txs[who - 1] if who else 0
        run(clients[who], op, path, b"v", tx_id=tx)
    for who, tx in ((1, txs[0]), (2, txs[1])):
        reply = clients[who].end(tx, commit=next(iter(commits), True))
        assert reply.payload in (b"OK\0", b"EAGAIN\0")
        commits = commits[1:]
    store = engine.xs.store
    assert store.problems() == []
    walked = dict(store.walk())
    assert dict(store.nodes.items()) == walked
    assert all(store.nodes.get(path) is node for path, node in walked.items())
