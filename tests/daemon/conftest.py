"""Fixtures for the embedded daemon's tests.

Two ways in:

- ``xs`` + :class:`Client`: the request engine in-process, no sockets. A Client is a
  connection whose output queue the test reads; requests are answered synchronously. Fast and
  deterministic: most semantic tests use it.
- ``live``: ``python -m xsactor serve`` in a subprocess (one per module, an
  :class:`~xsactor.testing.daemons.EmbeddedDaemonProcess`), spoken to with the blocking
  :class:`~xsactor.testing.wire.WireClient`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import pytest

from xsactor.daemon.core import XenStore
from xsactor.daemon.quota import Quotas
from xsactor.daemon.server import Daemon, Toolstack
from xsactor.daemon.toolstack import GuestSpec, apply_entries, create_guest, dom0_entries
from xsactor.protocol import Decoder, Op, Packet
from xsactor.protocol.errors import error_class
from xsactor.protocol.packets import Arg, join_args, split_args
from xsactor.testing.daemons import EmbeddedDaemonProcess, running
from xsactor.testing.util import scratch_dir

QUIET = ("--log-level", "warning")
"""``serve``'s arguments for the daemons of these tests: log warnings only."""


class Client:
    """A connection to an in-process engine; replies and events are read synchronously."""

    def __init__(self, xs: XenStore, domid: int = 0) -> None:
        self.xs = xs
        self.conn = xs.connect(domid, on_output=lambda conn: None)
        self.domid = domid
        self.home = f"/local/domain/{domid}"
        self.events: list[tuple[bytes, bytes]] = []
        self.received: list[Packet] = []
        self._ids = itertools.count(1)

    def _drain(self) -> list[Packet]:
        packets = Decoder(max_payload=1 << 20).feed(self.conn.take_output())
        self.received += packets
        return packets

    def raw(self, op: int, payload: bytes, tx_id: int = 0) -> Packet:
        """Send one request; return its reply (events before it go to ``events``)."""
        req_id = next(self._ids)
        self.xs.process(self.conn, op, req_id, tx_id, payload)
        self.xs.flush()
        reply = None
        for packet in self._drain():
            if packet.op == Op.WATCH_EVENT:
                self.events.append(tuple(split_args(packet.payload)[:2]))  # type: ignore[arg-type]
            else:
                assert reply is None, "two replies to one request"
                reply = packet
        assert reply is not None
        assert reply.req_id == req_id and reply.tx_id == tx_id
        return reply

    def request(self, op: int, *args: Arg, tx_id: int = 0) -> Packet:
        return self.raw(op, join_args(*args), tx_id)

    def call(self, op: int, *args: Arg, tx_id: int = 0) -> bytes:
        return check(self.request(op, *args, tx_id=tx_id))

    def err(self, op: int, *args: Arg, tx_id: int = 0) -> str:
        """The error name of a request that must fail."""
        reply = self.request(op, *args, tx_id=tx_id)
        assert reply.op == Op.ERROR, f"expected an error, got {reply!r}"
        return reply.payload.rstrip(b"\0").decode()

    def raw_err(self, op: int, payload: bytes, tx_id: int = 0) -> str:
        reply = self.raw(op, payload, tx_id)
        assert reply.op == Op.ERROR, f"expected an error, got {reply!r}"
        return reply.payload.rstrip(b"\0").decode()

    def write(self, path: str, value: bytes | str = b"", tx_id: int = 0) -> Packet:
        value = value.encode() if isinstance(value, str) else value
        return self.raw(Op.WRITE, path.encode() + b"\0" + value, tx_id)

    def ok_write(self, path: str, value: bytes | str = b"", tx_id: int = 0) -> None:
        check(self.write(path, value, tx_id))

    def read(self, path: str, tx_id: int = 0) -> bytes:
        return self.call(Op.READ, path, tx_id=tx_id)

    def ls(self, path: str, tx_id: int = 0) -> list[str]:
        return [n.decode() for n in split_args(self.call(Op.DIRECTORY, path, tx_id=tx_id))]

    def perms(self, path: str, tx_id: int = 0) -> list[str]:
        return [p.decode() for p in split_args(self.call(Op.GET_PERMS, path, tx_id=tx_id))]

    def chmod(self, path: str, *perms: str, tx_id: int = 0) -> None:
        self.call(Op.SET_PERMS, path, *perms, tx_id=tx_id)

    def mkdir(self, path: str, tx_id: int = 0) -> None:
        self.call(Op.MKDIR, path, tx_id=tx_id)

    def rm(self, path: str, tx_id: int = 0) -> None:
        self.call(Op.RM, path, tx_id=tx_id)

    def watch(self, path: str, token: str = "t") -> None:
        self.call(Op.WATCH, path, token)

    def start(self) -> int:
        return int(self.call(Op.TRANSACTION_START, b"").rstrip(b"\0"))

    def end(self, tx_id: int, commit: bool = True) -> Packet:
        return self.request(Op.TRANSACTION_END, "T" if commit else "F", tx_id=tx_id)

    def take_events(self) -> list[tuple[bytes, bytes]]:
        """Events received so far, including any queued since the last request."""
        for packet in self._drain():
            assert packet.op == Op.WATCH_EVENT, packet
            self.events.append(tuple(split_args(packet.payload)[:2]))  # type: ignore[arg-type]
        out, self.events = self.events, []
        return out

    def close(self) -> None:
        self.xs.disconnect(self.conn)


def check(reply: Packet) -> bytes:
    if reply.op == Op.ERROR:
        raise error_class(reply.payload)()
    return reply.payload


class Engine:
    """An engine with dom0's boot entries, and helpers to add guests as xl does."""

    def __init__(self, quotas: Quotas | None = None) -> None:
        self.xs = XenStore(quotas or Quotas())
        self.toolstack = Toolstack(self.xs)  # the daemon's own, as xl uses dom0
        apply_entries(self.toolstack, dom0_entries())

    def dom0(self) -> Client:
        return Client(self.xs)

    def add_guest(self, domid: int) -> None:
        create_guest(self.toolstack, GuestSpec(domid))

    def guest(self, domid: int) -> Client:
        return Client(self.xs, domid)


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def dom0(engine: Engine) -> Client:
    return engine.dom0()


# -- a live daemon in a subprocess ----------------------------------------------------------
@contextlib.contextmanager
def serving(*args: str, guests: tuple[int, ...] = ()) -> Iterator[EmbeddedDaemonProcess]:
    """``python -m xsactor serve`` (warnings only, then ``args``) in a temp dir of its own."""
    with running("embedded", prefix="xsd-", extra_args=(*QUIET, *args),
                 guests=guests) as daemon:
        assert isinstance(daemon, EmbeddedDaemonProcess)
        yield daemon


@pytest.fixture(scope="module")
def live() -> Iterator[EmbeddedDaemonProcess]:
    with serving(guests=(5, 6)) as daemon:
        yield daemon


@pytest.fixture
def inproc() -> Iterator[Daemon]:
    """An in-process daemon (gevent); talk to it with gevent sockets only."""
    from xsactor.daemon.config import DaemonConfig

    with scratch_dir("xsd-") as rundir:
        daemon = Daemon(DaemonConfig(socket_path=os.path.join(rundir, "socket")))
        daemon.start()
        try:
            yield daemon
        finally:
            daemon.stop()
