"""The sockets' lone-request path: a READ, DIRECTORY or GET_PERMS the caches know is answered
by ``ops_nodes.cached_answer`` without the engine, and must answer exactly as the engine does
whatever happened to the node, its children, its ACL or the domains it names; the first read
of a turn is small, and requests of any size around it still arrive whole and in order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import gevent.socket
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor.daemon.core import XenStore
from xsactor.daemon.server import Daemon
from xsactor.daemon.sockets import FIRST_READ
from xsactor.protocol import Decoder, Op, Packet

from .conftest import Client

PATHS = ("/r", "/r/a", "/r/a/b", "data", "data/x", "/local/domain/5/data",
         "/local/domain/5/data/x", "/local/domain/5", "/local/domain/6/data", "/local/domain/6",
         "@releaseDomain")
ACLS = (("n0",), ("r0",), ("n0", "r5"), ("n5",), ("b0",), ("n0", "w5"), ("r5",),
        ("n0", "r6"), ("n6", "r5"), ("w0", "n5"), ("n5", "r6"), ("n0", "b6"))


class Lone:
    """A socket client with one request in flight (gevent, for an in-process daemon)."""

    def __init__(self, path: str) -> None:
        self.sock = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
        self.sock.connect(path)
        self.decoder = Decoder()
        self.frames: list[Packet] = []
        self.ids = itertools.count(1)

    def ask(self, packet: Packet) -> list[Packet]:
        """Send ``packet``; every frame until its reply (events included)."""
        self.sock.sendall(packet.encode())
        return self.until(packet.req_id)

    def until(self, req_id: int) -> list[Packet]:
        """Every frame up to the reply to ``req_id`` (later ones wait for the next call)."""
        while True:
            for index, frame in enumerate(self.frames):
                if frame.op != Op.WATCH_EVENT and frame.req_id == req_id:
                    out, self.frames = self.frames[:index + 1], self.frames[index + 1:]
                    return out
            data = self.sock.recv(65536)
            assert data, "the daemon closed the connection"
            self.frames += self.decoder.feed(data)

    def read(self, path: str, op: Op = Op.READ) -> tuple[int, bytes]:
        reply = self.ask(Packet.request(op, path, req_id=next(self.ids)))[-1]
        return reply.op, reply.payload

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(inproc: Daemon) -> Iterator[tuple[Daemon, dict[int, Lone], dict[int, Client]]]:
    """dom0 and guests 5 and 6 on sockets, and the same identities straight on the engine."""
    sockets = {0: Lone(inproc.socket_path)}
    engine = {0: Client(inproc.xs)}
    for domid in (5, 6):
        sockets[domid] = Lone(inproc.add_guest(domid))
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
            sockets[6] = Lone(daemon.add_guest(6))
            engine[6] = Client(daemon.xs, 6)
        else:
            expected = client.request(kind, path)
            # twice: the first may fill the caches, the second is answered from them
            for _ in range(2):
                assert sockets[who].read(path, kind) == (expected.op, expected.payload), path


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
        assert sockets[who].read(path) == (Op.READ, b"v")  # the engine fills the caches
        assert calls == [Op.READ]
        calls.clear()
        assert sockets[who].read(path) == (Op.READ, b"v")
        assert sockets[who].read(path, Op.DIRECTORY) == (Op.DIRECTORY, b"")
        assert sockets[who].read(path, Op.GET_PERMS) == (Op.GET_PERMS, b"n5\0")
        assert calls == []  # guest 5 may read its own node, without the engine

    engine[0].chmod("/local/domain/5/data/x", "n0")
    calls.clear()
    assert sockets[5].read("data/x") == (Op.ERROR, b"EACCES\0")
    assert calls == [Op.READ]  # refused: the engine answers


def test_a_read_behind_unsent_output_waits_its_turn(served) -> None:
    """Events the socket has not taken yet go first: the cached path never overtakes them."""
    daemon, sockets, engine = served
    lone = sockets[0]
    engine[0].ok_write("/r/w", b"1")
    lone.ask(Packet.request(Op.WATCH, "/r/w", "tok", req_id=90))
    assert lone.read("/r/w") == (Op.READ, b"1")  # now in the caches
    sc = next(sc for sc in daemon.by_conn.values() if sc.conn.id != engine[0].conn.id
              and sc.conn.domid == 0)
    long_name = "n" * 2000
    for i in range(200):  # ~400 KB of events: more than the socket takes unread
        engine[0].ok_write(f"/r/w/{long_name}{i}", b"")
    assert sc.pending  # the daemon holds output back
    lone.sock.sendall(Packet.request(Op.READ, "/r/w", req_id=92).encode())
    frames = lone.until(92)
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
    frames = lone.ask(Packet.write(path, value, req_id=1))
    assert (frames[-1].op, frames[-1].payload) == (Op.WRITE, b"OK\0")
    assert lone.read(path) == (Op.READ, value)
    # a pipeline in one write: every reply, in order
    packets = [Packet.write(f"{path}{i}", b"%d" % i * size, req_id=100 + i)
               for i, size in enumerate(sizes)]
    lone.sock.sendall(b"".join(p.encode() for p in packets))
    replies = [f for f in lone.until(packets[-1].req_id) if f.op != Op.WATCH_EVENT]
    assert [(r.req_id, r.payload) for r in replies] == [(p.req_id, b"OK\0") for p in packets]
    for i, size in enumerate(sizes):
        assert lone.read(f"{path}{i}") == (Op.READ, b"%d" % i * size)


def test_a_cached_node_stops_granting_a_domain_that_died(served) -> None:
    """A node's entry for domain 6 grants nothing to a new domain 6 (its record is newer than
    the node): the cached path judges entries as the engine does."""
    daemon, sockets, engine = served
    engine[0].ok_write("/r/six", b"v")
    engine[0].chmod("/r/six", "n0", "r6")
    for _ in range(2):
        assert sockets[6].read("/r/six") == (Op.READ, b"v")
    sockets[6].close()
    daemon.set_domain_state(6, "gone")
    reborn = Lone(daemon.add_guest(6))
    try:
        expected = Client(daemon.xs, 6).request(Op.READ, "/r/six")
        assert (expected.op, expected.payload) == (Op.ERROR, b"EACCES\0")
        for _ in range(2):
            assert reborn.read("/r/six") == (Op.ERROR, b"EACCES\0")
    finally:
        reborn.close()
