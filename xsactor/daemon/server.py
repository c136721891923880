"""The embedded xenstored on gevent: unix-socket servers in front of :class:`~.core.XenStore`.

- The dom0 socket: every connection is privileged dom0 (home ``/local/domain/0``).
- INTRODUCE of domain N opens ``<guest_dir>/<N>``: every connection there is domain N,
  unprivileged; all of a domain's connections share its quotas. RELEASE (or death) closes
  them and the listening socket.

Each connection has a reader greenlet that reads large chunks, answers every whole request
in the buffer, then writes all the output with one non-blocking write; what the socket does
not take at once is left to the connection's writer greenlet (so a slow reader never blocks
anyone). A header announcing more than 4096 bytes closes that connection without a reply.

In-process use (from gevent code)::

    daemon = Daemon(DaemonConfig(socket_path="/tmp/xs/socket")).start()
    path = daemon.add_guest(GuestSpec(5))
    ...
    daemon.stop()
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.event
import gevent.socket
from gevent.server import StreamServer

from ..logs import get_logger
from ..protocol.errors import XenStoreError, error_from_payload
from ..protocol.ops import Op
from ..protocol.packets import Decoder, Packet
from ..protocol.perms import Perm, format_acl
from .config import DaemonConfig
from .connection import Connection
from .core import XenStore
from .toolstack import GuestSpec, apply_entries, dom0_entries, guest_entries

log = get_logger(__name__)

READ_CHUNK = 65536


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


def listen_unix(path: str, backlog: int) -> gevent.socket.socket:
    """A listening unix socket at ``path`` (parent directories made, a stale socket removed)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        if _serving(path):
            raise OSError(errno.EADDRINUSE, "a live xenstored is serving this socket", path)
        os.unlink(path)
    sock = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class SocketConnection:
    """The transport side of one connection: its socket, reader and writer."""

    def __init__(self, daemon: Daemon, sock: Any, domid: int) -> None:
        self.daemon = daemon
        self.sock = sock
        self.fd = sock.fileno()
        self.conn: Connection = daemon.xs.connect(domid, on_output=self.kick)
        self.pending = b""
        self.writing = False
        self.closed = False
        self.wakeup = gevent.event.Event()
        self.writer = gevent.spawn(self._write_loop)
        self.log = log.bind(conn=self.conn.id, domid=domid)

    # -- output ----------------------------------------------------------------------------
    def kick(self, conn: Connection | None = None) -> None:
        """Write what is queued now if the socket takes it; leave the rest to the writer."""
        if self.closed:
            self.conn.discard_output()
            return
        if self.writing or self.pending:
            self.wakeup.set()
            return
        data = self.conn.take_output()
        try:
            sent = os.write(self.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.wakeup.set()

    def _write_loop(self) -> None:
        while not self.closed:
            self.wakeup.wait()
            self.wakeup.clear()
            self.writing = True
            try:
                while (self.pending or self.conn.out) and not self.closed:
                    data = self.pending + self.conn.take_output()
                    self.pending = b""
                    self.sock.sendall(data)
            except OSError:
                self.close()
            finally:
                self.writing = False

    # -- input -----------------------------------------------------------------------------
    def serve(self) -> None:
        """Read and answer requests until the peer goes away or breaks the framing."""
        xs = self.daemon.xs
        conn = self.conn
        process = xs.process
        recv = self.sock.recv
        decoder = Decoder()
        frames = decoder.frames
        try:
            while not self.closed:
                data = recv(READ_CHUNK)
                if not data:
                    break
                for op, req_id, tx_id, payload in frames(data):
                    process(conn, op, req_id, tx_id, payload)
                    if conn.closed:
                        return
                if decoder.error is not None:
                    # 4.17 closes a socket that announces too long a payload, unanswered.
                    self.log.warning("malformed frame, closing", error=str(decoder.error))
                    self._finish_output()
                    return
                if xs.hub.dirty:
                    xs.flush()
                if conn.out:
                    self.kick()
        except OSError as exc:
            if not self.closed:
                self.log.debug("connection error", error=str(exc))
        except Exception:
            self.log.exception("internal error, closing the connection")
        finally:
            self.close()

    def _finish_output(self) -> None:
        """Best effort, without blocking: send what is queued before closing."""
        xs = self.daemon.xs
        if xs.hub.dirty:
            xs.flush()
        data = self.pending + self.conn.take_output()
        self.pending = b""
        if data:
            with contextlib.suppress(OSError):
                os.write(self.fd, data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.daemon.xs.disconnect(self.conn)
        self.daemon._socket_closed(self)
        self.wakeup.set()
        with contextlib.suppress(OSError):
            self.sock.close()


class Toolstack:
    """The daemon's own dom0 connection, in-process, as the toolstack uses it (a
    :class:`~.toolstack.TreeWriter`): each request is answered at once; an error raises."""

    def __init__(self, xs: XenStore) -> None:
        self.xs = xs
        self.conn = xs.connect(0)

    def call(self, packet: Packet) -> bytes:
        """One request; its reply's payload, or the typed error."""
        xs = self.xs
        xs.process(self.conn, packet.op, packet.req_id, packet.tx_id, packet.payload)
        xs.flush()
        reply = Decoder().feed(self.conn.take_output())[-1]  # the reply comes after any event
        if reply.is_error:
            raise error_from_payload(reply.payload, path=packet.args[0].decode("latin-1"))
        return reply.payload

    def mkdir(self, path: str) -> bytes:
        return self.call(Packet.request(Op.MKDIR, path))

    def write(self, path: str, value: bytes) -> bytes:
        return self.call(Packet.write(path, value))

    def set_perms(self, path: str, perms: Sequence[Perm]) -> bytes:
        return self.call(Packet.request(Op.SET_PERMS, path, *format_acl(perms)))

    def introduce(self, domid: int, gfn: int, port: int) -> bytes:
        return self.call(Packet.request(Op.INTRODUCE, domid, gfn, port))


class Daemon:
    """An embedded xenstored: ``start()`` (non-blocking), ``serve_forever()``, ``stop()``."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.xs = XenStore(config.quotas, keep_orphans=config.keep_orphans, transport=self)
        self._servers: dict[int, StreamServer] = {}
        self._server_paths: dict[int, str] = {}
        self._guest_paths: dict[int, str] = {}
        self._sockets: dict[int, set[SocketConnection]] = {}
        self._toolstack: Toolstack | None = None
        self._started = False
        self._stopped = gevent.event.Event()
        self.log = log.bind(socket=config.socket_path)

    @property
    def socket_path(self) -> str:
        return self.config.socket_path

    # -- lifetime --------------------------------------------------------------------------
    def start(self) -> Daemon:
        """Build dom0's tree, listen on the dom0 socket, set up the configured guests."""
        if self._started:
            return self
        self._started = True
        self._stopped.clear()
        self._toolstack = Toolstack(self.xs)
        apply_entries(self._toolstack, dom0_entries())
        self._serve(0, self.config.socket_path)
        for domid, path in self.config.guests.items():
            self.add_guest(GuestSpec(domid), path)
        self.log.info("xenstored started", guests=sorted(self.config.guests))
        return self

    def serve_forever(self) -> None:
        self.start()
        self._stopped.wait()

    def stop(self) -> None:
        """Close every socket and listener (idempotent).

        The socket files stay (refusing connections, as a stopped xenstored's do), so clients
        tell a daemon restart from a destroyed domain, whose socket is removed.
        """
        if not self._started:
            return
        self._started = False
        for domid in list(self._servers):
            self._unserve(domid, unlink=False)
        for group in list(self._sockets.values()):
            for sc in list(group):
                sc.close()
        self._sockets.clear()
        self.log.info("xenstored stopped")
        self._stopped.set()

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- guests and the hypervisor -----------------------------------------------------------
    def add_guest(self, spec: GuestSpec | int, socket_path: str | None = None) -> str:
        """Build the guest's tree as xl does, INTRODUCE it, return the socket serving it."""
        toolstack = self._toolstack
        assert toolstack is not None, "start() first"
        if isinstance(spec, int):
            spec = GuestSpec(spec)
        path = socket_path or self.config.guest_socket(spec.domid)
        apply_entries(toolstack, guest_entries(spec))
        self._guest_paths[spec.domid] = path
        toolstack.introduce(spec.domid, spec.store_gfn, spec.store_port)
        return self._server_paths.get(spec.domid, path)

    def set_domain_state(self, domid: int, state: str) -> None:
        """Simulate the hypervisor (see ``CONTROL hypervisor``)."""
        self.xs.set_domain_state(domid, state)
        self.xs.flush()

    # -- Transport (called by the engine) ------------------------------------------------------
    def open_domain(self, domid: int) -> None:
        if not self._started:
            raise OSError("daemon not started")
        path = self._guest_paths.pop(domid, None) or self.config.guest_socket(domid)
        self._serve(domid, path)

    def close_domain(self, domid: int) -> None:
        self._unserve(domid)
        for sc in list(self._sockets.pop(domid, ())):
            sc.close()

    # -- sockets -----------------------------------------------------------------------------
    def _serve(self, domid: int, path: str) -> None:
        listener = listen_unix(path, self.config.listen_backlog)
        server = StreamServer(listener, lambda sock, addr: self._handle(sock, domid))
        server.start()
        self._servers[domid] = server
        self._server_paths[domid] = path
        self.log.info("listening", domid=domid, path=path)

    def _unserve(self, domid: int, unlink: bool = True) -> None:
        server = self._servers.pop(domid, None)
        path = self._server_paths.pop(domid, None)
        if server is not None:
            server.stop(timeout=0)
        if path is not None and unlink:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _handle(self, sock: Any, domid: int) -> None:
        try:
            sc = SocketConnection(self, sock, domid)
        except XenStoreError:
            sock.close()
            return
        self._sockets.setdefault(domid, set()).add(sc)
        sc.log.debug("connected")
        sc.serve()
        sc.log.debug("disconnected")

    def _socket_closed(self, sc: SocketConnection) -> None:
        group = self._sockets.get(sc.conn.domid)
        if group is not None:
            group.discard(sc)
