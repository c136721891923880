"""The lone-request path (``XenStore.answer_lone``): a READ, DIRECTORY or GET_PERMS the caches
know is answered by ``ops_nodes.cached_answer``, and a WRITE to a node they know by
``ops_nodes.cached_write``, without the engine's dispatch; each must answer, and leave the
store and the events, exactly as the engine does whatever happened to the node, its
children, its ACL or the domains it names. The first read of a turn is small, and requests of
any size around it still arrive whole and in order."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor.daemon import core
from xsactor.daemon.config import DaemonConfig
from xsactor.daemon.core import XenStore
from xsactor.daemon.server import Daemon
from xsactor.daemon.sockets import FIRST_READ
from xsactor.protocol import Op, Packet
from xsactor.protocol.errors import XenStoreError
from xsactor.testing.util import scratch_dir
from xsactor.testing.wire import WireClient

from .conftest import Client

PATHS = ("/r", "/r/a", "/r/a/b", "data", "data/x", "/local/domain/5/data",
         "/local/domain/5/data/x", "/local/domain/5", "/local/domain/6/data", "/local/domain/6",
         "@releaseDomain")
ACLS = (("n0",), ("r0",), ("n0", "r5"), ("n5",), ("b0",), ("n0", "w5"), ("r5",),
        ("n0", "r6"), ("n6", "r5"), ("w0", "n5"), ("n5", "r6"), ("n0", "b6"))


def connect(path: str) -> WireClient:
    """A client with one request in flight, on a gevent socket (the daemon is in-process)."""
    return WireClient(path, cooperative=True)


def ask(client: WireClient, packet: Packet) -> list[Packet]:
    """Send ``packet``; every frame until its reply (events included)."""
    client.send(packet)
    return client.frames(packet.req_id)


def read(client: WireClient, path: str, op: Op = Op.READ) -> tuple[int, bytes]:
    reply = ask(client, Packet.request(op, path, req_id=client.next_req_id()))[-1]
    return reply.op, reply.payload


@pytest.fixture
def served(inproc: Daemon) -> Iterator[tuple[Daemon, dict[int, WireClient], dict[int, Client]]]:
    """dom0 and guests 5 and 6 on sockets, and the same identities straight on the engine."""
    sockets = {0: connect(inproc.socket_path)}
    engine = {0: Client(inproc.xs)}
    for domid in (5, 6):
        sockets[domid] = connect(inproc.add_guest(domid))
        engine[domid] = Client(inproc.xs, domid)
    yield inproc, sockets, engine
    for lone in sockets.values():
        lone.close()


READS = (Op.READ, Op.DIRECTORY, Op.GET_PERMS)
step = st.tuples(st.sampled_from(("write", "rm", "chmod", "cycle6", *READS, *READS)),
                 st.sampled_from((0, 5, 6)), st.sampled_from(PATHS), st.sampled_from(ACLS),
                 st.binary(max_size=6))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=25))
def test_cached_answers_are_the_engines(served, steps) -> None:
    daemon, sockets, engine = served
    for kind, who, path, acl, value in steps:
        client = engine[who]
        if kind == "write":
            client.raw(Op.WRITE, path.encode() + b"\0" + value)
        elif kind == "rm":
            client.request(Op.RM, path)
        elif kind == "chmod":
            client.request(Op.SET_PERMS, path, *acl)
        elif kind == "cycle6":  # domain 6 dies and a new one takes its domid: the entries
            sockets[6].close()  # naming 6 on older nodes no longer grant it anything
            engine[6].close()
            daemon.set_domain_state(6, "gone")
            sockets[6] = connect(daemon.add_guest(6))
            engine[6] = Client(daemon.xs, 6)
        else:
            expected = client.request(kind, path)
            # twice: the first may fill the caches, the second is answered from them
            for _ in range(2):
                assert read(sockets[who], path, kind) == (expected.op, expected.payload), path


class Side:
    """One of two twin daemons: its clients by domid (guest 5 watching its ``data``), and a
    dom0 watcher of ``/r``: some writes make events for others, some for the writer, some
    none."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.clients = {0: connect(daemon.socket_path)}
        for domid in (5, 6):
            self.clients[domid] = connect(daemon.add_guest(domid))
        ask(self.clients[5], Packet.request(Op.WATCH, "data", "mine", req_id=1))
        self.watcher = connect(daemon.socket_path)
        ask(self.watcher, Packet.request(Op.WATCH, "/r", "r", req_id=1))

    def step(self, kind: str, who: int, path: str, acl: tuple[str, ...], value: bytes
             ) -> list[tuple[int, bytes]]:
        """Play one step; every frame the actor and the watcher got for it."""
        if kind == "cycle6":
            self.clients[6].close()
            self.daemon.set_domain_state(6, "gone")
            self.clients[6] = connect(self.daemon.add_guest(6))
            frames = []
        else:
            lone = self.clients[who]
            args: tuple[Any, ...] = {"write": (path.encode() + b"\0" + value,),
                                     "chmod": (path, *acl)}.get(kind, (path,))
            op = {"write": Op.WRITE, "rm": Op.RM, "chmod": Op.SET_PERMS,
                  "mkdir": Op.MKDIR}.get(kind) or Op[kind]
            if kind == "write":
                packet = Packet(op, lone.next_req_id(), 0, args[0])
            else:
                packet = Packet.request(op, *args, req_id=lone.next_req_id())
            frames = ask(lone, packet)
            # the turn is over: every event it made was handed to its socket
            assert not self.daemon.xs.hub.dirty, "events left unsent after the turn"
        # a round trip on the watcher: the events of the step come before its reply
        probe = Packet.request(Op.READ, "/", req_id=self.watcher.next_req_id())
        frames += ask(self.watcher, probe)
        return [(f.op, f.payload) for f in frames]

    def tree(self) -> list[tuple[Any, ...]]:
        return sorted((path, node.value, tuple(str(p) for p in node.perms), node.generation,
                       tuple(node.children)) for path, node in self.daemon.xs.store.nodes.items())

    def close(self) -> None:
        for lone in (*self.clients.values(), self.watcher):
            lone.close()


@contextlib.contextmanager
def twins() -> Iterator[tuple[Side, Side]]:
    """Two daemons built alike; the second answers every request through the engine."""
    with scratch_dir("xsd-") as left, scratch_dir("xsd-") as right:
        cached = Daemon(DaemonConfig(socket_path=os.path.join(left, "socket"))).start()
        engine = Daemon(DaemonConfig(socket_path=os.path.join(right, "socket"))).start()
        xs = engine.xs
        xs.answer_lone = lambda conn, op, req_id, tx_id, payload: xs.process(  # type: ignore
            conn, op, req_id, tx_id, payload)
        sides = (Side(cached), Side(engine))
        try:
            yield sides
        finally:
            for side in sides:
                side.close()
                side.daemon.stop()


TWIN_PATHS = ("/r", "/r/a", "/x", "/x/y", "data", "data/x", "/local/domain/5/data",
              "/local/domain/6/data")
twin_step = st.tuples(
    st.sampled_from(("write", "write", "write", "write", "rm", "chmod", "mkdir", "cycle6",
                     "READ", "DIRECTORY", "GET_PERMS")),
    st.sampled_from((0, 5, 6)), st.sampled_from(TWIN_PATHS), st.sampled_from(ACLS),
    st.sampled_from((b"", b"v", b"w" * 5, b"x" * 2100)))


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(twin_step, max_size=30))
def test_cached_writes_and_reads_leave_what_the_engine_leaves(steps) -> None:
    """Every reply and event, their order, and the store afterwards (values, ACLs,
    generations, child lists) are the same with the cached paths as through the engine;
    the values include one past the node-size quota of a guest."""
    with twins() as (cached, engine):
        for step in steps:
            assert cached.step(*step) == engine.step(*step), step
        assert cached.tree() == engine.tree()


def test_cached_writes_in_every_case_leave_what_the_engine_leaves(monkeypatch) -> None:
    """Each case written three times, so that the third is cached: events for a watcher,
    for the writer itself, none at all, the node-size quota, a node the guest may not
    write; the cached path was taken."""
    taken: list[str] = []
    cached_write = core.cached_write

    def spied(*args: Any) -> bool:
        try:
            written = cached_write(*args)
        except XenStoreError as exc:
            taken.append(exc.name)
            raise
        taken.append("written" if written else "engine")
        return written

    monkeypatch.setattr(core, "cached_write", spied)
    cases = [("write", 0, "/r", (), b"v"), ("write", 5, "data", (), b"v"),
             ("write", 6, "/local/domain/6/data", (), b"v"),
             ("write", 5, "data", (), b"x" * 2100), ("write", 5, "/r", (), b"v")]
    with twins() as (cached, engine):
        for step in cases:
            for _ in range(3):
                assert cached.step(*step) == engine.step(*step), step
        assert cached.tree() == engine.tree()
    # on the cached daemon (the engine's twin never asks): each case cached at its third
    assert taken[2::3] == ["written", "written", "written", "ENOSPC", "EACCES"]


def test_a_repeated_read_skips_the_engine(served, monkeypatch) -> None:
    daemon, sockets, engine = served
    engine[0].ok_write("/local/domain/5/data/x", b"v")
    calls: list[int] = []
    process = XenStore.process

    def counted(conn, op, *args) -> None:
        calls.append(op)
        process(daemon.xs, conn, op, *args)

    monkeypatch.setattr(daemon.xs, "process", counted)
    for who, path in ((0, "/local/domain/5/data/x"), (5, "data/x")):
        assert read(sockets[who], path) == (Op.READ, b"v")  # the engine fills the caches
        assert calls == [Op.READ]
        calls.clear()
        assert read(sockets[who], path) == (Op.READ, b"v")
        assert read(sockets[who], path, Op.DIRECTORY) == (Op.DIRECTORY, b"")
        assert read(sockets[who], path, Op.GET_PERMS) == (Op.GET_PERMS, b"n5\0")
        assert calls == []  # guest 5 may read its own node, without the engine

    engine[0].chmod("/local/domain/5/data/x", "n0")
    calls.clear()
    assert read(sockets[5], "data/x") == (Op.ERROR, b"EACCES\0")
    assert calls == [Op.READ]  # refused: the engine answers


def test_a_read_behind_unsent_output_waits_its_turn(served) -> None:
    """Events the socket has not taken yet go first: the cached path never overtakes them."""
    daemon, sockets, engine = served
    lone = sockets[0]
    engine[0].ok_write("/r/w", b"1")
    ask(lone, Packet.request(Op.WATCH, "/r/w", "tok", req_id=90))
    assert read(lone, "/r/w") == (Op.READ, b"1")  # now in the caches
    sc = next(sc for sc in daemon.by_conn.values() if sc.conn.id != engine[0].conn.id
              and sc.conn.domid == 0)
    long_name = "n" * 2000
    for i in range(200):  # ~400 KB of events: more than the socket takes unread
        engine[0].ok_write(f"/r/w/{long_name}{i}", b"")
    assert sc.pending  # the daemon holds output back
    lone.send(Packet.request(Op.READ, "/r/w", req_id=92))
    frames = lone.frames(92)
    assert [f.op for f in frames[-2:]] == [Op.WATCH_EVENT, Op.READ]
    assert sum(f.op == Op.WATCH_EVENT for f in frames) == 200  # one per write


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 2 * FIRST_READ), min_size=1, max_size=12),
       lone_size=st.integers(FIRST_READ - 40, FIRST_READ + 40))
def test_requests_around_the_first_read_arrive_whole(served, sizes, lone_size) -> None:
    _daemon, sockets, _engine = served
    lone = sockets[0]
    path = "/r/s"
    # one request alone, its frame near the first read's size (exactly it, included)
    value = b"x" * max(0, lone_size - 16 - len(path) - 1)
    frames = ask(lone, Packet.write(path, value, req_id=1))
    assert (frames[-1].op, frames[-1].payload) == (Op.WRITE, b"OK\0")
    assert read(lone, path) == (Op.READ, value)
    # a pipeline in one write: every reply, in order
    packets = [Packet.write(f"{path}{i}", b"%d" % i * size, req_id=100 + i)
               for i, size in enumerate(sizes)]
    lone.send(*packets)
    replies = [f for f in lone.frames(packets[-1].req_id) if f.op != Op.WATCH_EVENT]
    assert [(r.req_id, r.payload) for r in replies] == [(p.req_id, b"OK\0") for p in packets]
    for i, size in enumerate(sizes):
        assert read(lone, f"{path}{i}") == (Op.READ, b"%d" % i * size)


def test_a_cached_node_stops_granting_a_domain_that_died(served) -> None:
    """A node's entry for domain 6 grants nothing to a new domain 6 (its record is newer than
    the node): the cached path judges entries as the engine does."""
    daemon, sockets, engine = served
    engine[0].ok_write("/r/six", b"v")
    engine[0].chmod("/r/six", "n0", "r6")
    for _ in range(2):
        assert read(sockets[6], "/r/six") == (Op.READ, b"v")
    sockets[6].close()
    daemon.set_domain_state(6, "gone")
    reborn = connect(daemon.add_guest(6))
    try:
        expected = Client(daemon.xs, 6).request(Op.READ, "/r/six")
        assert (expected.op, expected.payload) == (Op.ERROR, b"EACCES\0")
        for _ in range(2):
            assert read(reborn, "/r/six") == (Op.ERROR, b"EACCES\0")
    finally:
        reborn.close()
