"""A thin fault-injecting proxy in front of the embedded daemon, for the bus tests.

The daemon answers every request (one XenStore in the tests); the proxy only relays whole
frames between each client and a connection of its own to the daemon (the dom0 socket, or a
guest's socket for the proxied guest sockets), and offers the faults and probes the bus tests
need:

- ``all_received``: every packet the clients sent, in order (to prove nothing was sent);
  ``wait_received(count)`` waits until that many have arrived;
- ``gate``: while cleared, replies and events are held back (to prove many requests were in
  flight at once, or to make a request time out);
- ``on_request(link, packet)``: called before each request is passed on;
- ``inject(packet)`` / ``inject_raw(bytes)``: send to every client (bad replies, unknown
  tokens, broken framing), between whole frames;
- ``drop_connections()``: close every client; ``stop()`` / ``start()``: stop listening and drop
  every client, then listen again (a daemon restart, as far as a client can tell);
- ``watch_count()``, ``watch_tokens()``, ``watched_paths()``, ``open_transactions()``: what the
  daemon holds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import gevent
import gevent.lock
import gevent.socket
from gevent.event import Event
from gevent.server import StreamServer

from xsactor.daemon.connection import Connection
from xsactor.daemon.server import Daemon, listen_unix
from xsactor.protocol import Decoder, Packet

READ_CHUNK = 65536


class Link:
    """One client and the proxy's connection to the daemon on its behalf."""

    def __init__(self, proxy: FaultProxy, client: gevent.socket.socket, upstream: str) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
        self.upstream.connect(upstream)
        self.sending = gevent.lock.Semaphore()  # one whole frame at a time to the client
        self.closed = False
        self.replies = gevent.spawn(self._relay_replies)

    def send(self, data: bytes) -> None:
        """Send bytes to the client (whole frames, never inside another one)."""
        with self.sending, contextlib.suppress(OSError):
            self.client.sendall(data)

    def relay_requests(self) -> None:
        """Client to daemon, frame by frame, until either side goes away."""
        proxy = self.proxy
        decoder = Decoder()
        try:
            while not self.closed:
                data = self.client.recv(READ_CHUNK)
                if not data:
                    break
                packets = decoder.feed(data)
                proxy.received(packets)
                for packet in packets:
                    if proxy.on_request is not None:
                        proxy.on_request(self, packet)
                    self.upstream.sendall(packet.encode())
                if decoder.error is not None:
                    break
        except OSError:
            pass
        finally:
            self.close()

    def _relay_replies(self) -> None:
        """Daemon to client, frame by frame, each waiting for the gate."""
        decoder = Decoder()
        try:
            while not self.closed:
                data = self.upstream.recv(READ_CHUNK)
                if not data:
                    break
                for packet in decoder.feed(data):
                    self.proxy.gate.wait()
                    self.send(packet.encode())
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.links.discard(self)
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()
        if gevent.getcurrent() is not self.replies:
            self.replies.kill(block=False)


class FaultProxy:
    """The proxy: ``socket_path`` for dom0, one proxied socket per guest (``add_guest``)."""

    def __init__(self, daemon: Daemon, rundir: str) -> None:
        self.daemon = daemon
        self.rundir = rundir
        self.socket_path = os.path.join(rundir, "proxy")
        self.upstreams = {self.socket_path: daemon.socket_path}
        self.links: set[Link] = set()
        self.all_received: list[Packet] = []
        self.gate = Event()
        self.gate.set()
        self.on_request: Callable[[Link, Packet], None] | None = None
        self._arrival = Event()
        self._servers: list[StreamServer] = []

    # -- lifetime --------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        for path in self.upstreams:
            self._listen(path)
        return self

    def stop(self) -> None:
        """Stop listening and drop every client; ``start()`` serves again."""
        for server in self._servers:
            server.stop(timeout=0)
        self._servers.clear()
        self.drop_connections()
        for path in self.upstreams:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def add_guest(self, domid: int) -> str:
        """Build and introduce the guest on the daemon; the proxied socket that speaks for it."""
        path = os.path.join(self.rundir, f"proxied-{domid}")
        self.upstreams[path] = self.daemon.add_guest(domid)
        if self._servers:
            self._listen(path)
        return path

    def _listen(self, path: str) -> None:
        upstream = self.upstreams[path]
        server = StreamServer(listen_unix(path, 128),
                              lambda sock, _addr: self._serve(sock, upstream))
        server.start()
        self._servers.append(server)

    def _serve(self, sock: gevent.socket.socket, upstream: str) -> None:
        link = Link(self, sock, upstream)
        self.links.add(link)
        link.relay_requests()

    # -- faults ----------------------------------------------------------------------------
    def drop_connections(self) -> None:
        """Close every client connection (and the proxy's daemon connection behind it)."""
        for link in list(self.links):
            link.close()

    def inject(self, packet: Packet) -> None:
        self.inject_raw(packet.encode())

    def inject_raw(self, data: bytes) -> None:
        for link in list(self.links):
            link.send(data)

    # -- probes ----------------------------------------------------------------------------
    def received(self, packets: list[Packet]) -> None:
        self.all_received.extend(packets)
        self._arrival.set()

    def wait_received(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` packets have arrived in total."""
        with gevent.Timeout(timeout, False):
            while len(self.all_received) < count:
                self._arrival.clear()
                self._arrival.wait()
        return len(self.all_received) >= count

    def _daemon_connections(self) -> list[Connection]:
        return list(self.daemon.xs.connections.values())

    def watched_paths(self) -> list[str]:
        return [path for conn in self._daemon_connections() for path, _ in conn.watches]

    def watch_tokens(self) -> list[bytes]:
        return [token for conn in self._daemon_connections() for _, token in conn.watches]

    def watch_count(self) -> int:
        return len(self.watched_paths())

    def open_transactions(self) -> int:
        return sum(len(conn.transactions) for conn in self._daemon_connections())
