"""Fixtures for the embedded daemon's tests.

Two ways in:

- ``xs`` + :class:`Client`: the request engine in-process, no sockets. A Client is a
  connection whose output queue the test reads; requests are answered synchronously. Fast and
  deterministic: most semantic tests use it.
- ``live``: ``python -m xsactor serve`` in a subprocess (one per module), spoken to with the
  blocking :class:`~xsactor.testing.wire.WireClient`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xsactor.daemon.control import handle_control
from xsactor.daemon.core import XenStore
from xsactor.daemon.quota import Quotas
from xsactor.daemon.server import Daemon
from xsactor.daemon.toolstack import GuestSpec, dom0_entries, guest_entries
from xsactor.protocol import Decoder, Op, Packet
from xsactor.protocol.errors import error_class
from xsactor.protocol.packets import Arg, join_args, split_args
from xsactor.protocol.perms import acl_payload
from xsactor.testing.wire import WireClient

ROOT = str(Path(__file__).resolve().parents[2])


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


def build_entries(client: Client, entries: list) -> None:
    for entry in entries:
        if entry.value is None:
            client.mkdir(entry.path)
        else:
            client.ok_write(entry.path, entry.value)
        if entry.acl is not None:
            check(client.raw(Op.SET_PERMS, entry.path.encode() + b"\0" + acl_payload(entry.acl)))


class Engine:
    """An engine with dom0's boot entries, and helpers to add guests as xl does."""

    def __init__(self, quotas: Quotas | None = None) -> None:
        self.xs = XenStore(quotas or Quotas())
        self.xs.control_handler = handle_control
        self.toolstack = Client(self.xs)
        build_entries(self.toolstack, dom0_entries())

    def dom0(self) -> Client:
        return Client(self.xs)

    def add_guest(self, domid: int) -> None:
        build_entries(self.toolstack, guest_entries(GuestSpec(domid)))
        self.toolstack.call(Op.INTRODUCE, domid, 0, 1)

    def guest(self, domid: int) -> Client:
        return Client(self.xs, domid)


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def dom0(engine: Engine) -> Client:
    return engine.dom0()


# -- a live daemon in a subprocess ----------------------------------------------------------
class LiveDaemon:
    def __init__(self, rundir: str, *args: str) -> None:
        self.rundir = rundir
        self.socket_path = os.path.join(rundir, "socket")
        self.guest_dir = os.path.join(rundir, "guests")
        self.log_path = os.path.join(rundir, "log")
        env = dict(os.environ, PYTHONPATH=ROOT)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "xsactor", "serve", "--socket", self.socket_path,
                 "--guest-dir", self.guest_dir, "--log-level", "warning", *args],
                stdout=subprocess.PIPE, stderr=log, env=env, stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.socket_path), self._check)

    def _check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"daemon exited: {Path(self.log_path).read_text()}")

    def dom0(self) -> WireClient:
        return WireClient(self.socket_path, timeout=10)

    def guest(self, domid: int) -> WireClient:
        return WireClient(os.path.join(self.guest_dir, str(domid)), timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def wait_for(condition, check=None, timeout: float = 20.0) -> None:
    """Poll a condition with a deadline (not a sleep used as synchronisation)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def short_tempdir() -> str:
    return tempfile.mkdtemp(prefix="xsd-", dir="/tmp")


@pytest.fixture(scope="module")
def live() -> Iterator[LiveDaemon]:
    rundir = short_tempdir()
    daemon = LiveDaemon(rundir, "--guest", "5", "--guest", "6")
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(rundir, ignore_errors=True)


@pytest.fixture
def inproc() -> Iterator[Daemon]:
    """An in-process daemon (gevent); talk to it with gevent sockets only."""
    from xsactor.daemon.config import DaemonConfig

    rundir = short_tempdir()
    daemon = Daemon(DaemonConfig(socket_path=os.path.join(rundir, "socket")))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(rundir, ignore_errors=True)
