"""The daemon's sockets, served straight from the gevent hub's event loop.

No greenlet per connection: each connection has a read watcher and a write watcher on the
hub's loop, whose callbacks run in the hub itself, so a round trip costs one ``read``, the
handler and one ``write`` (a greenlet per connection costs two switches and a watcher start
and stop per request, and its reader never yields while its socket has data: one flooding
client starved all others). The loop is level-triggered and runs every ready callback once
per turn, which gives the service its fairness:

- **Fair turns.** A readable connection is read once per turn, at most ``read_chunk`` bytes,
  and every whole request in them is answered; what it sent beyond waits for the next turn,
  after every other ready connection had its own.
- **Bounded output.** A reply is written at once when the socket takes it; the rest waits in
  the connection's queue and the write watcher sends it when the socket is writable. Once a
  connection's unsent output reaches ``output_limit`` it is no longer read (as 4.17 stops
  reading a ring with 20 replies outstanding), mid-batch if need be, until the peer has read
  enough. Events a guest's request makes for a connection over that limit hold the guest back
  the same way, until the watcher reads. A guest connection whose unsent output still passes
  ``output_max`` (events made by dom0) is closed.
- **Bounded descriptors.** A guest domain has at most ``max_guest_connections``
  connections, and guests together leave ``fd_reserve`` descriptors to dom0 and the daemon;
  a connection past either bound is closed at once. An accept that fails for lack of
  descriptors or memory pauses that listener with a growing backoff, logged once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
import stat
from collections.abc import Iterator
from typing import Any, Protocol

import gevent

from ..logs import get_logger
from ..protocol.ops import HEADER, HEADER_SIZE, PAYLOAD_MAX
from ..protocol.packets import Decoder
from .config import DaemonConfig
from .connection import Connection
from .core import XenStore
from .watches import Watcher

log = get_logger(__name__)

EV_READ = 1
EV_WRITE = 2
ACCEPT_BATCH = 64
"""Connections one listener accepts per turn of the loop."""
BACKOFF_MIN = 0.05
BACKOFF_MAX = 1.0
FIRST_READ = 447
"""The first read of a turn: enough for any request of a client with one in flight but those
with long values, and small enough for Python's small-object allocator (a larger buffer is a
``malloc`` and, in glibc, a consolidation of its free lists each time). A read that fills it
is followed by one more, up to ``read_chunk``."""
_unpack = HEADER.unpack_from
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _serving(path: str) -> bool:
    """Whether something accepts connections on the unix socket ``path`` (not stale)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except BlockingIOError:  # listening, its backlog full
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return True


def listen_unix(path: str, backlog: int) -> socket.socket:
    """A non-blocking listening unix socket at ``path`` (parent directories made, a stale
    socket removed; EADDRINUSE when a live daemon serves it)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        if _serving(path):
            raise OSError(errno.EADDRINUSE, "a live xenstored is serving this socket", path)
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Host(Protocol):
    """What the sockets need from the daemon serving them (:class:`~.server.Daemon`)."""

    config: DaemonConfig
    xs: XenStore
    descriptors: Descriptors
    sockets: dict[int, set[SocketConnection]]
    by_conn: dict[int, SocketConnection]

    def connected(self, sock: socket.socket, domid: int) -> None:
        """A new connection on ``domid``'s socket, admitted by its listener."""

    def disconnected(self, sc: SocketConnection) -> None:
        """``sc`` closed."""

    def ignore_domain(self, domid: int) -> None:
        """A guest of ``domid`` broke the protocol: close all of its connections."""


class Descriptors:
    """How many descriptors the daemon holds, and how many guests may take."""

    def __init__(self, reserve: int) -> None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
        self.reserve = reserve
        self.base = _open_descriptors()
        self.used = 0

    def guests_may_open(self) -> bool:
        return self.base + self.used + self.reserve < self.limit


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


class Listener:
    """One listening socket (the dom0 socket, or a guest domain's) and its accept watcher."""

    def __init__(self, daemon: Host, domid: int, path: str) -> None:
        self.daemon = daemon
        self.domid = domid
        self.path = path
        self.sock = listen_unix(path, daemon.config.listen_backlog)
        self.loop = gevent.get_hub().loop
        self.watcher = self.loop.io(self.sock.fileno(), EV_READ)
        self.timer: Any = None
        self.backoff = 0.0
        self.refusing = False
        self.log = log.bind(domid=domid, path=path)
        daemon.descriptors.used += 1
        self.watcher.start(self._on_accept)

    def _on_accept(self) -> None:
        daemon = self.daemon
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self.sock.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._pause(exc)
                else:
                    self.log.warning("accept failed", error=str(exc))
                break
            self.backoff = 0.0
            if self.domid and not self._admit():
                sock.close()
                continue
            self.refusing = False
            try:
                daemon.connected(sock, self.domid)
            except Exception:
                self.log.exception("cannot serve a new connection")
                sock.close()

    def _admit(self) -> bool:
        """Whether a new guest connection fits the bounds; logged once per episode."""
        daemon = self.daemon
        count = len(daemon.sockets.get(self.domid, ()))
        if count < daemon.config.max_guest_connections and \
                daemon.descriptors.guests_may_open():
            return True
        if not self.refusing:
            self.refusing = True
            self.log.warning("connection refused: limit reached", connections=count,
                             max_per_guest=daemon.config.max_guest_connections,
                             descriptors=daemon.descriptors.used)
        return False

    def _pause(self, exc: OSError) -> None:
        """Out of descriptors (or memory): stop accepting for a while, logged once."""
        if not self.backoff:
            self.log.error("cannot accept, backing off", error=exc.strerror)
        self.backoff = min(max(self.backoff * 2, BACKOFF_MIN), BACKOFF_MAX)
        self.watcher.stop()
        self.timer = self.loop.timer(self.backoff)
        self.timer.start(self._resume)

    def _resume(self) -> None:
        self.timer = None
        if self.sock.fileno() >= 0:
            self.watcher.start(self._on_accept)

    def close(self, unlink: bool = True) -> None:
        """Stop accepting; ``unlink``: remove the socket file too (a destroyed domain's)."""
        self.watcher.stop()
        self.watcher.close()
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        if self.sock.fileno() >= 0:
            self.daemon.descriptors.used -= 1
        self.sock.close()
        if unlink:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class SocketConnection:
    """One accepted socket: reads requests into the engine, writes its output queue."""

    def __init__(self, daemon: Host, sock: socket.socket, domid: int) -> None:
        config: DaemonConfig = daemon.config
        self.daemon = daemon
        self.xs: XenStore = daemon.xs
        self.sock = sock
        sock.setblocking(False)
        self.fd = sock.fileno()
        self.conn: Connection = self.xs.connect(domid, on_output=self.kick)
        self.privileged = self.conn.privileged
        self.first_read = min(FIRST_READ, config.read_chunk)
        self.rest_read = config.read_chunk - self.first_read
        self.output_limit = config.output_limit
        self.output_max = config.output_max
        self.decoder = Decoder()
        self.partial = False  # the decoder holds part of a request
        self.backlog: list[tuple[int, int, int, bytes]] = []
        self.pending = b""
        self.sent = 0  # how much of ``pending`` is written
        self.paused = False
        self.waiters: list[SocketConnection] = []
        self.closed = False
        loop = gevent.get_hub().loop
        self.loop = loop
        self.reader = loop.io(self.fd, EV_READ)
        self.writer = loop.io(self.fd, EV_WRITE)
        self.log = log.bind(conn=self.conn.id, domid=domid)
        self.reader.start(self._on_readable)

    # -- input -------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, self.first_read)
            if len(data) == self.first_read and self.rest_read:
                with contextlib.suppress(BlockingIOError):
                    data += os.read(self.fd, self.rest_read)
        except BlockingIOError:
            return
        except OSError as exc:
            self.log.debug("connection error", error=str(exc))
            self.close()
            return
        size = len(data)
        if size >= HEADER_SIZE and not self.partial:
            op, req_id, tx_id, length = _unpack(data)
            if size == HEADER_SIZE + length and length <= PAYLOAD_MAX:
                # One whole request (a client with one request in flight): answered and
                # written here, without a frame list; a common one, without the engine's
                # dispatch or the output queue (XenStore.answer_lone).
                xs = self.xs
                conn = self.conn
                payload = data[HEADER_SIZE:]
                try:
                    if conn.out or self.pending:
                        xs.process(conn, op, req_id, tx_id, payload)
                    else:
                        frame = xs.answer_lone(conn, op, req_id, tx_id, payload)
                        if frame is not None:
                            self._send(frame)
                            return
                    if conn.closed:
                        return
                    if xs.hub.dirty or self.pending:
                        self._held_back(iter(()))
                        self._end_turn()
                        return
                except Exception:
                    self.log.exception("internal error, closing the connection")
                    self.close()
                    return
                if conn.out:
                    self._write_now()
                return
        if not data:
            self.close()
            return
        self._read_frames(data)

    def _read_frames(self, data: bytes) -> None:
        """Answer the whole requests in ``data`` (and before it); keep any partial one."""
        decoder = self.decoder
        try:
            self._answer(decoder.frames(data))
        except Exception:
            self.log.exception("internal error, closing the connection")
            self.close()
            return
        self.partial = decoder.pending > 0
        if decoder.error is not None and not self.closed:
            # 4.17 closes a socket that announces too long a payload, unanswered; a guest's
            # ring it ignores for good.
            self.log.warning("malformed frame, closing", error=str(decoder.error))
            if self.privileged:
                self._finish_output()
                self.close()
            else:
                self.daemon.ignore_domain(self.conn.domid)

    def _answer(self, frames: list[tuple[int, int, int, bytes]]) -> None:
        """Answer ``frames``; stop (keeping the rest for later) when output backs up."""
        conn = self.conn
        process = self.xs.process
        dirty = self.xs.hub.dirty
        room = self.output_limit - len(self.pending) + self.sent
        rest = iter(frames)
        for op, req_id, tx_id, payload in rest:
            process(conn, op, req_id, tx_id, payload)
            if conn.queued >= room or dirty or conn.closed:
                if conn.closed:
                    return
                if self._held_back(rest):
                    break
                room = self.output_limit - len(self.pending) + self.sent
        self._end_turn()

    def _held_back(self, rest: Iterator[tuple[int, int, int, bytes]]) -> bool:
        """After a request: whether the connection must stop reading (the requests ``rest``
        kept for later) because its own output or, for a guest, a watcher's backs up."""
        if self.backed_up():
            self.kick()
            if self.closed or self.backed_up():
                self._pause(rest)
                return True
        dirty = self.xs.hub.dirty
        if dirty and not self.privileged and self._congested(dirty):
            self._pause(rest)
            return True
        return False

    def _end_turn(self) -> None:
        """Hand the output of this turn to the sockets."""
        if self.xs.hub.dirty:
            self.xs.flush()
        if self.conn.out and not self.closed:
            self.kick()

    def _congested(self, dirty: set[Watcher]) -> bool:
        """Whether events this guest just made filled a watcher's backlog: if so the guest
        waits (in that watcher's ``waiters``) until the watcher has read."""
        sockets = self.daemon.by_conn
        full = []
        for receiver in dirty:
            other = sockets.get(receiver.id)
            if other is not None and other is not self and other.backed_up():
                full.append(other)
        if not full:
            return False
        self.xs.flush()
        for other in full:
            if other.backed_up() and not other.closed:
                other.waiters.append(self)
                return True
        return False

    def backed_up(self) -> bool:
        return self.conn.queued + len(self.pending) - self.sent >= self.output_limit

    def _pause(self, rest: Iterator[tuple[int, int, int, bytes]]) -> None:
        """Stop reading until the output (or a watcher's) has drained."""
        self.backlog = list(rest)
        if not self.paused:
            self.paused = True
            self.reader.stop()

    def _resume(self) -> None:
        """Answer what was left, then read again (if nothing backs up meanwhile)."""
        if self.closed or not self.paused or self.backed_up():
            return  # a backed-up connection is resumed by its own write watcher
        self.paused = False
        backlog, self.backlog = self.backlog, []
        try:
            self._answer(backlog)
        except Exception:
            self.log.exception("internal error, closing the connection")
            self.close()
            return
        if not self.paused and not self.closed:
            self.reader.start(self._on_readable)

    # -- output ------------------------------------------------------------------------------
    def kick(self, conn: Connection | None = None) -> None:
        """Write the output queue now if the socket takes it; the rest waits for the write
        watcher."""
        if self.closed:
            self.conn.discard_output()
            return
        if self.pending:
            if (not self.privileged
                    and self.conn.queued + len(self.pending) - self.sent > self.output_max):
                self.log.warning("output not read, closing the connection",
                                 unsent=self.conn.queued + len(self.pending) - self.sent)
                self.loop.run_callback(self.close)
            return
        self._write_now()

    def _write_now(self) -> None:
        """Write the output queue (nothing is pending); what the socket does not take waits
        for the write watcher."""
        self._send(self.conn.take_output())

    def _send(self, data: bytes) -> None:
        """Write ``data`` (nothing is pending); what the socket does not take waits for the
        write watcher."""
        try:
            sent = os.write(self.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.loop.run_callback(self.close)
            return
        if sent < len(data):
            self.pending = data
            self.sent = sent
            self.writer.start(self._on_writable)

    def _on_writable(self) -> None:
        conn = self.conn
        while True:
            if self.sent == len(self.pending):
                self.pending = b""
                self.sent = 0
                if not conn.out:
                    break
                self.pending = conn.take_output()
            try:
                self.sent += os.write(self.fd, memoryview(self.pending)[self.sent:])
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
        if not self.pending:
            self.writer.stop()
        if not self.backed_up():
            if self.paused and not self.waiting():
                self.loop.run_callback(self._resume)
            waiters, self.waiters = self.waiters, []
            for waiter in waiters:
                self.loop.run_callback(waiter._resume)

    def waiting(self) -> bool:
        """Whether this connection waits for a watcher's backlog (not its own)."""
        return any(self in other.waiters for other in self.daemon.by_conn.values()
                   if other.waiters)

    def _finish_output(self) -> None:
        """Best effort, without blocking: send what is queued before closing."""
        xs = self.xs
        if xs.hub.dirty:
            xs.flush()
        data = self.pending[self.sent:] + self.conn.take_output()
        self.pending = b""
        if data:
            with contextlib.suppress(OSError):
                os.write(self.fd, data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.reader.stop()
        self.writer.stop()
        self.reader.close()
        self.writer.close()
        self.backlog = []
        self.pending = b""
        self.xs.disconnect(self.conn)
        self.daemon.disconnected(self)
        for waiter in self.waiters:
            self.loop.run_callback(waiter._resume)
        self.waiters = []
        with contextlib.suppress(OSError):
            self.sock.close()

