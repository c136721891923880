"""The embedded xenstored on gevent: unix-socket servers in front of :class:`~.core.XenStore`.

- The dom0 socket: every connection is privileged dom0 (home ``/local/domain/0``).
- INTRODUCE of domain N opens ``<guest_dir>/<N>``: every connection there is domain N,
  unprivileged; all of a domain's connections share its quotas. RELEASE (or death) closes
  them and the listening socket.

The sockets are served from the hub's event loop (see :mod:`.sockets`: fair turns, bounded
output, bounded descriptors). A header announcing more than 4096 bytes closes that
connection without a reply.

In-process use (from gevent code)::

    daemon = Daemon(DaemonConfig(socket_path="/tmp/xs/socket")).start()
    path = daemon.add_guest(GuestSpec(5))
    ...
    daemon.stop()
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import gevent.event

from ..logs import get_logger
from ..protocol.errors import XenStoreError, error_from_payload
from ..protocol.ops import Op
from ..protocol.packets import Decoder, Packet
from ..protocol.perms import Perm, format_acl
from .config import DaemonConfig
from .core import XenStore
from .sockets import Descriptors, Listener, SocketConnection, listen_unix
from .toolstack import GuestSpec, apply_entries, create_guest, dom0_entries

__all__ = ["Daemon", "Toolstack", "listen_unix"]

log = get_logger(__name__)


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

    def mkdir(self, path: str, tx_id: int = 0) -> bytes:
        return self.call(Packet.request(Op.MKDIR, path, tx_id=tx_id))

    def write(self, path: str, value: bytes, tx_id: int = 0) -> bytes:
        return self.call(Packet.write(path, value, tx_id=tx_id))

    def set_perms(self, path: str, perms: Sequence[Perm], tx_id: int = 0) -> bytes:
        return self.call(Packet.request(Op.SET_PERMS, path, *format_acl(perms), tx_id=tx_id))

    def rm(self, path: str, tx_id: int = 0) -> bytes:
        return self.call(Packet.request(Op.RM, path, tx_id=tx_id))

    def start(self) -> int:
        return int(self.call(Packet.request(Op.TRANSACTION_START, "")).rstrip(b"\0"))

    def end(self, tx_id: int, commit: bool = True) -> bytes:
        return self.call(Packet.request(Op.TRANSACTION_END, "T" if commit else "F",
                                        tx_id=tx_id))

    def introduce(self, domid: int, gfn: int, port: int) -> bytes:
        return self.call(Packet.request(Op.INTRODUCE, domid, gfn, port))


class Daemon:
    """An embedded xenstored: ``start()`` (non-blocking), ``serve_forever()``, ``stop()``."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.xs = XenStore(config.quotas, keep_orphans=config.keep_orphans, transport=self,
                           path_cache_bytes=config.path_cache_bytes)
        self.descriptors = Descriptors(config.fd_reserve)
        self._listeners: dict[int, Listener] = {}
        self._guest_paths: dict[int, str] = {}
        self.sockets: dict[int, set[SocketConnection]] = {}
        """The open connections of each domain."""
        self.by_conn: dict[int, SocketConnection] = {}
        """The open connections by engine connection id."""
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
        for domid in list(self._listeners):
            self._unserve(domid, unlink=False)
        for group in list(self.sockets.values()):
            for sc in list(group):
                sc.close()
        self.sockets.clear()
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
        self.xs.new_domain(spec.domid)  # the hypervisor made it (a domid once gone, again)
        self._guest_paths[spec.domid] = path  # where INTRODUCE opens its socket
        create_guest(toolstack, spec)
        listener = self._listeners.get(spec.domid)
        return listener.path if listener is not None else path

    def set_domain_state(self, domid: int, state: str) -> None:
        """Simulate the hypervisor (see ``CONTROL hypervisor``)."""
        self.xs.set_domain_state(domid, state)
        self.xs.flush()

    def ignore_domain(self, domid: int) -> None:
        """A guest broke the protocol: the engine ignores its domain for good; its sockets
        close (the guest socket stays, and closes every later connection at once)."""
        self.xs.ignore_domain(domid)
        for sc in list(self.sockets.get(domid, ())):
            sc.close()

    # -- Transport (called by the engine) ------------------------------------------------------
    def open_domain(self, domid: int) -> None:
        if not self._started:
            raise OSError("daemon not started")
        path = self._guest_paths.pop(domid, None) or self.config.guest_socket(domid)
        self._serve(domid, path)

    def close_domain(self, domid: int) -> None:
        self._unserve(domid)
        for sc in list(self.sockets.pop(domid, ())):
            sc.close()

    # -- sockets -----------------------------------------------------------------------------
    def _serve(self, domid: int, path: str) -> None:
        self._listeners[domid] = Listener(self, domid, path)
        self.log.info("listening", domid=domid, path=path)

    def _unserve(self, domid: int, unlink: bool = True) -> None:
        listener = self._listeners.pop(domid, None)
        if listener is not None:
            listener.close(unlink=unlink)

    def connected(self, sock: socket.socket, domid: int) -> None:
        """A new connection on ``domid``'s socket (admitted by its listener)."""
        try:
            sc = SocketConnection(self, sock, domid)
        except XenStoreError:
            sock.close()
            return
        self.descriptors.used += 1
        self.sockets.setdefault(domid, set()).add(sc)
        self.by_conn[sc.conn.id] = sc
        sc.log.debug("connected")

    def disconnected(self, sc: SocketConnection) -> None:
        """``sc`` closed (called once, by the connection)."""
        self.descriptors.used -= 1
        self.by_conn.pop(sc.conn.id, None)
        group = self.sockets.get(sc.conn.domid)
        if group is not None:
            group.discard(sc)
        sc.log.debug("disconnected")
