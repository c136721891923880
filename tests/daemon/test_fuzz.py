"""Fuzzing: garbage and half-valid frames, in-process (the engine never raises, the tree stays
consistent) and on a live daemon (it never dies, other connections keep working, and input
it rejects leaves the tree unchanged)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor.protocol import Op
from xsactor.protocol.packets import split_args
from xsactor.testing.daemons import EmbeddedDaemonProcess
from xsactor.testing.wire import WireClient

from .conftest import Engine, serving

HDR = struct.Struct("<IIII")

PATHISH = st.sampled_from([b"/", b"/a", b"/a/b", b"rel", b"", b"@introduceDomain",
                           b"@releaseDomain", b"/local/domain/5", b"data/x", b"/a//b", b"/a.",
                           b"/tool/xenstored"])
ARG = st.one_of(PATHISH, st.binary(max_size=12),
                st.sampled_from([b"T", b"F", b"0", b"5", b"-1", b"n0", b"r5", b"b0x5", b"1"]))
PAYLOAD = st.one_of(
    st.binary(max_size=64),
    st.lists(ARG, max_size=4).map(lambda args: b"".join(a + b"\0" for a in args)),
    st.tuples(ARG, st.binary(max_size=16)).map(lambda t: t[0] + b"\0" + t[1]),
)
OP = st.one_of(st.integers(min_value=0, max_value=24), st.sampled_from([0xFFFF, 2**32 - 1]))
TX = st.sampled_from([0, 0, 0, 1, 2, 7, 2**32 - 1])


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame: a request with plausible fields, or garbage."""
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind == 0:
        return draw(st.binary(min_size=1, max_size=40))
    payload = draw(PAYLOAD)
    return HDR.pack(draw(OP), draw(st.integers(0, 2**32 - 1)), draw(TX),
                    len(payload)) + payload


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([0, 5, 5, 6]),
                          st.tuples(OP, TX, PAYLOAD)), max_size=60))
def test_engine_never_raises_and_stays_consistent(requests: list) -> None:
    engine = Engine()
    engine.add_guest(5)
    engine.add_guest(6)
    clients = {0: engine.dom0(), 5: engine.guest(5), 6: engine.guest(6)}
    for who, (op, tx, payload) in requests:
        c = clients[who]
        if c.conn.closed:
            continue
        engine.xs.process(c.conn, op, 1, tx, payload)   # must not raise
        engine.xs.flush()
        c.conn.take_output()
    assert engine.xs.store.problems() == []


# -- live ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_daemon() -> Iterator[EmbeddedDaemonProcess]:
    with serving() as daemon:
        with daemon.dom0() as dom0:
            dom0.control("quota", "set", "transaction-nodes", "50")
            # Domain 7 is introduced without any tree of its own: it may not change anything.
            dom0.introduce(7, 0, 1)
        yield daemon
        daemon.stop()
        assert daemon.returncode == 0
        log = daemon.log_path.read_bytes()
        assert b"Traceback" not in log, log.decode("utf-8", "replace")[-4000:]


def dump(c: WireClient, path: str = "/") -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """The whole tree as dom0 sees it."""
    out = {path: (c.read(path), tuple(c.get_perms(path)))}
    for name in split_args(c.call(Op.DIRECTORY, path)):
        child = (path.rstrip("/") + "/" + name.decode())
        out.update(dump(c, child))
    return out


@SETTINGS
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=2), frames()), min_size=1,
                max_size=25),
       st.booleans())
def test_live_daemon_survives_garbage(fuzz_daemon: EmbeddedDaemonProcess, plan: list,
                                      oversize_dom0: bool) -> None:
    guest_path = os.path.join(fuzz_daemon.guest_dir, "7")
    with fuzz_daemon.dom0() as witness:
        before = dump(witness)
        socks = []
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX)
            s.connect(guest_path)
            socks.append(s)
        for index, frame in plan:
            # the daemon may have dropped a connection that broke the framing
            with contextlib.suppress(OSError):
                socks[index].sendall(frame)
        if oversize_dom0:
            with fuzz_daemon.dom0() as bad:
                bad.send_raw(HDR.pack(Op.READ, 1, 0, 4097))
                assert bad.is_closed()
        # Every fuzzing connection is answered or closed; none of that touches the tree.
        for s in socks:
            s.shutdown(socket.SHUT_WR)
        for s in socks:
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        assert witness.read("/local/domain/0/name") == b"Domain-0"
        assert dump(witness) == before
        assert witness.control("check") == b"OK\0"
    assert fuzz_daemon.process is not None
    assert fuzz_daemon.process.poll() is None
