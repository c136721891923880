"""A blocking, one-thread XenStore client for tests and harnesses.

Not the product's client (that is :mod:`xsactor.bus`): this one speaks the wire as plainly as
possible, with stdlib sockets (gevent's, ``cooperative``, for a daemon served in this
process), so that conformance tests can send exactly the bytes they mean, in any order, and
see every reply and event in arrival order. It works against any daemon that
serves a unix socket: the embedded one, the C xenstored, or a reference guest bridge.
"""

from __future__ import annotations

import collections
import errno
import itertools
import socket
import time
from collections.abc import Iterable

import gevent.socket

from ..protocol import Decoder, Op, Packet
from ..protocol.errors import ConnectionLost, error_class
from ..protocol.packets import Arg, join_args, split_args
from ..protocol.perms import Perm

Event = tuple[bytes, bytes]


def connect_unix(path: str, timeout: float = 10.0, *,
                 cooperative: bool = False) -> socket.socket:
    """Connect, retrying while the listener's backlog is full (xenstored's is tiny);
    ``cooperative``: a gevent socket, for a daemon served in this process."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        sock = (gevent.socket.socket if cooperative else socket.socket)(
            socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except OSError as exc:
            sock.close()
            retriable = exc.errno in (errno.EAGAIN, errno.ECONNREFUSED, errno.ENOENT)
            if not retriable or time.monotonic() + delay > deadline:
                raise
            # backoff on a refused connect, not synchronisation
            (gevent.sleep if cooperative else time.sleep)(delay)
            delay = min(delay * 2, 0.05)


class WireClient:
    """One connection. Replies are matched by req_id; events are kept in ``events``."""

    def __init__(self, path: str, timeout: float = 10.0, *, cooperative: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        self.sock = connect_unix(path, timeout, cooperative=cooperative)
        self.decoder = Decoder(max_payload=1 << 20)
        self.inbox: collections.deque[Packet] = collections.deque()
        self.events: collections.deque[Event] = collections.deque()
        self.log: list[Packet] = []
        self._ids = itertools.count(1)

    # -- raw -----------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *packets: Packet) -> None:
        """Send packets in one write (so a pipeline reaches the daemon together)."""
        self.sock.sendall(b"".join(p.encode() for p in packets))

    def recv(self, timeout: float | None = None) -> Packet:
        """The next packet of any type, in arrival order."""
        if self.inbox:
            return self.inbox.popleft()
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while not self.inbox:
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise ConnectionLost(str(exc)) from exc
            if not data:
                raise ConnectionLost("xenstored closed the connection")
            for packet in self.decoder.feed(data):
                self.log.append(packet)
                self.inbox.append(packet)
        return self.inbox.popleft()

    def is_closed(self, timeout: float = 2.0) -> bool:
        """True once the daemon has closed (or reset) this connection; waits up to timeout."""
        try:
            while True:
                self.recv(timeout)
        except ConnectionLost:
            return True
        except TimeoutError:
            return False

    # -- request / reply -----------------------------------------------------------------
    def next_req_id(self) -> int:
        return next(self._ids)

    def exchange(self, packet: Packet) -> Packet:
        """Send one packet, return its reply (ERROR included); events go to ``events``."""
        self.send(packet)
        return self.reply_to(packet.req_id)

    def reply_to(self, req_id: int) -> Packet:
        """The reply with ``req_id``; events on the way go to ``events``, other replies are
        dropped."""
        while True:
            packet = self.recv()
            if packet.op == Op.WATCH_EVENT:
                self.events.append(self._event(packet))
            elif packet.req_id == req_id:
                return packet

    def frames(self, req_id: int) -> list[Packet]:
        """Every packet up to the reply to ``req_id``, events included, in arrival order
        (those after it wait for the next call)."""
        out = []
        while True:
            out.append(self.recv())
            if out[-1].op != Op.WATCH_EVENT and out[-1].req_id == req_id:
                return out

    def raw_request(self, op: int, payload: bytes, tx_id: int = 0) -> Packet:
        return self.exchange(Packet(op, self.next_req_id(), tx_id, payload))

    def request(self, op: int, *args: Arg, tx_id: int = 0) -> Packet:
        return self.raw_request(op, join_args(*args), tx_id)

    def call(self, op: int, *args: Arg, tx_id: int = 0) -> bytes:
        """The reply payload; raises the typed XenStoreError on an ERROR reply."""
        return self.check(self.request(op, *args, tx_id=tx_id), args[0] if args else None)

    @staticmethod
    def check(reply: Packet, path: Arg | None = None) -> bytes:
        if reply.op == Op.ERROR:
            where = path.decode("latin-1") if isinstance(path, bytes) else path
            raise error_class(reply.payload)(path=None if where is None else str(where))
        return reply.payload

    # -- conveniences ----------------------------------------------------------------------
    def read(self, path: Arg, tx_id: int = 0) -> bytes:
        return self.call(Op.READ, path, tx_id=tx_id)

    def write(self, path: Arg, value: Arg, tx_id: int = 0) -> None:
        packet = Packet.write(path, value, req_id=self.next_req_id(), tx_id=tx_id)
        self.check(self.exchange(packet), path)

    def mkdir(self, path: Arg, tx_id: int = 0) -> None:
        self.call(Op.MKDIR, path, tx_id=tx_id)

    def rm(self, path: Arg, tx_id: int = 0) -> None:
        self.call(Op.RM, path, tx_id=tx_id)

    def directory(self, path: Arg, tx_id: int = 0) -> list[bytes]:
        return split_args(self.call(Op.DIRECTORY, path, tx_id=tx_id))

    def get_perms(self, path: Arg, tx_id: int = 0) -> list[str]:
        return [p.decode() for p in split_args(self.call(Op.GET_PERMS, path, tx_id=tx_id))]

    def set_perms(self, path: Arg, perms: Iterable[str | Perm], tx_id: int = 0) -> None:
        self.call(Op.SET_PERMS, path, *(str(p) for p in perms), tx_id=tx_id)

    def watch(self, path: Arg, token: Arg) -> None:
        self.call(Op.WATCH, path, token)

    def unwatch(self, path: Arg, token: Arg) -> None:
        self.call(Op.UNWATCH, path, token)

    def start(self) -> int:
        return int(self.call(Op.TRANSACTION_START, b"").rstrip(b"\0"))

    def end(self, tx_id: int, commit: bool = True) -> None:
        self.call(Op.TRANSACTION_END, "T" if commit else "F", tx_id=tx_id)

    def control(self, *args: Arg) -> bytes:
        return self.call(Op.CONTROL, *args)

    def introduce(self, domid: int, gfn: int, port: int) -> None:
        self.call(Op.INTRODUCE, domid, gfn, port)

    def release(self, domid: int) -> None:
        self.call(Op.RELEASE, domid)

    # -- events --------------------------------------------------------------------------
    @staticmethod
    def _event(packet: Packet) -> Event:
        path, token = [*split_args(packet.payload), b"", b""][:2]
        return path, token

    def next_event(self, timeout: float = 5.0) -> Event:
        """The next watch event (already received or arriving within ``timeout``)."""
        if self.events:
            return self.events.popleft()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no watch event")
            packet = self.recv(remaining)
            if packet.op != Op.WATCH_EVENT:
                raise AssertionError(f"unexpected reply while waiting for an event: {packet!r}")
            return self._event(packet)

    def sync(self) -> None:
        """Round-trip a harmless request, so every event queued before it has arrived."""
        self.request(Op.GET_DOMAIN_PATH, 0)

    def drain_events(self) -> list[Event]:
        """Every event that arrived before a round trip."""
        self.sync()
        out = list(self.events)
        self.events.clear()
        return out

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
