"""Serve each guest's ring page of the C xenstored as a unix socket (a separate process).

The stub (``stub.c``) maps a 4096-byte shared file as a guest's ring. This process maps the
same file and plays the guest's kernel: a client connected to the guest's socket speaks plain
XenStore frames; whole frames are streamed into the request ring (a 4096-byte payload spans
several ring turns), the daemon is notified by writing the guest's port into the event FIFO,
and the reply ring is always drained into the client (the daemon stops reading after 20
outstanding replies). The daemon's ``xenevtchn_notify`` wakes us through a per-guest FIFO
(``n``); ``X`` there means the daemon unmapped the ring (the domain was destroyed or
released): the guest's socket is then closed.

Differences from a real guest, where the ring is one connection for the whole domain:

- One client at a time per guest; further clients wait in the listen backlog. When a client
  disconnects, the complete frames it sent are still delivered, then the bridge sends
  ``RESET_WATCHES`` (dropping the domain's watches and transactions) and discards every reply
  and event up to its reply, before the next client is accepted. Nodes, quotas and the
  transaction id counter carry over from one client to the next, as they do for a domain.
- A header announcing more than 4096 bytes is passed through as-is. The daemon then sets the
  ring's ``error`` to 3 and ignores the domain for good; the bridge closes the client (which
  sees EOF, as on a socket) and closes any later client at once.
- Re-INTRODUCE of a live domain zeroes the ring indices under our feet: it is only safe while
  the guest's client has no request in flight.

It runs as its own process, so neither gevent nor the GIL of the test process gets in its way.
One thread, one selector loop for all guests; blocking waits on FIFOs and sockets, no polling
(except a short deadline after an oversized header, see :meth:`GuestLink.check_broken`).

Control: one JSON object per line on stdin, one JSON reply per line on stdout:
``{"op": "add", "domid": N, "port": P, "ring": PATH, "notify": PATH, "socket": PATH}``,
``{"op": "remove", "domid": N}``, ``{"op": "status", "domid": N}``, ``{"op": "ping"}``.
EOF on stdin ends the process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from ...logs import configure, get_logger
from ...protocol import HEADER_SIZE, PAYLOAD_MAX, Op, Packet
from ...protocol.ops import HEADER

log = get_logger(__name__)

RING_SIZE = 1024
RING_MASK = RING_SIZE - 1
REQ_OFFSET = 0
RSP_OFFSET = 1024
INDEX_OFFSET = 2048
"""req_cons, req_prod, rsp_cons, rsp_prod: free-running u32 (``xen/io/xs_wire.h``)."""
ERROR_OFFSET = 2072
PAGE_SIZE = 4096
U32 = struct.Struct("<I")

# The ring's u32 fields as indexes of ``memoryview(ring).cast("I")``. They are shared with
# the running daemon, so each must be read and written with one 4-byte access: a memoryview
# item does that (memcpy of 4 bytes), where struct.pack_into first zero-fills the field and
# "<I" goes byte by byte -- the daemon would see a bad index, flag the ring with error 2 and
# drop the domain. x86 keeps stores in order: data written before an index store is
# visible to the daemon before the index.
REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD = (INDEX_OFFSET // 4 + i for i in range(4))
ERROR = ERROR_OFFSET // 4
assert sys.byteorder == "little" and struct.calcsize("I") == 4

MAX_INBUF = 256 * 1024
"""Stop reading a client that is this far ahead of the ring."""
MAX_OUTBUF = 256 * 1024
"""Stop draining the reply ring while this much waits for a slow client."""
BROKEN_DEADLINE = 5.0
"""After an oversized header, how long to wait for the daemon to set the ring's error."""
RESET_MARKER = 0x58530000
"""req_id base of the RESET_WATCHES sent between clients."""


class GuestLink:
    """One guest: its ring, its notify FIFO, its listening socket and current client."""

    def __init__(self, bridge: Bridge, domid: int, port: int, ring_path: str,
                 notify_path: str, socket_path: str) -> None:
        self.bridge = bridge
        self.domid = domid
        self.port_bytes = U32.pack(port)
        self.socket_path = socket_path
        self.log = log.bind(domid=domid)
        with contextlib.ExitStack() as undo:  # close what was opened if a step fails
            fd = os.open(ring_path, os.O_RDWR | os.O_CLOEXEC)
            try:
                self.ring = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED)
            finally:
                os.close(fd)
            undo.callback(self.ring.close)
            self.words = memoryview(self.ring).cast("I")
            undo.callback(self.words.release)
            self.notify_fd = os.open(notify_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            undo.callback(os.close, self.notify_fd)
            _drain(self.notify_fd)  # wake-ups from before this guest was bridged
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            undo.callback(self.listener.close)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)
            self.listener.bind(socket_path)
            self.listener.listen(64)
            self.listener.setblocking(False)
            undo.pop_all()
        self.client: socket.socket | None = None
        self.client_events = 0
        """What the selector watches on the client (0: not registered)."""
        self.inbuf = bytearray()
        self.pushable = 0
        """Bytes at the front of ``inbuf`` that belong to whole frames (or a bad header)."""
        self.outbuf = bytearray()
        self.outstanding = 0
        """Requests pushed (or about to be) whose replies have not come back."""
        self.rsp_header = bytearray()
        self.rsp_left = 0
        self.cleaning = False
        self.resets = 0
        self.oversize = False
        self.broken = False
        self.broken_deadline: float | None = None
        self.closed = False
        sel = bridge.selector
        sel.register(self.notify_fd, selectors.EVENT_READ, self.on_notify)
        sel.register(self.listener, selectors.EVENT_READ, self.on_accept)
        self.listening = True

    # -- events ---------------------------------------------------------------------------
    def on_notify(self, _mask: int) -> None:
        if b"X" in _drain(self.notify_fd):
            self.log.info("bridge.domain_unmapped")
            self.close()
            return
        self.pump()

    def on_accept(self, _mask: int) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        if self.broken:
            sock.close()  # the daemon ignores this domain for good
            return
        sock.setblocking(False)
        self.client = sock
        self.client_events = 0
        self.log.debug("bridge.client_connected")
        self.pump()

    def on_client(self, mask: int) -> None:
        client = self.client
        if client is None:
            return
        if mask & selectors.EVENT_READ:
            try:
                data = client.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.disconnect()
                return
            if data:
                self.inbuf += data
                self.scan()
        self.pump()

    # -- request side ---------------------------------------------------------------------
    def scan(self) -> None:
        """Extend ``pushable`` over every whole frame received; stop at an oversized header."""
        buf = self.inbuf
        pos = self.pushable
        end = len(buf)
        while end - pos >= HEADER_SIZE and not self.oversize:
            length = HEADER.unpack_from(buf, pos)[3]
            if length > PAYLOAD_MAX:
                self.log.info("bridge.oversized_header", length=length)
                self.oversize = True
                pos += HEADER_SIZE  # passed through: the daemon flags the ring itself
                del buf[pos:]
                break
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            pos = stop
            self.outstanding += 1
        self.pushable = pos

    def push(self) -> bool:
        """Copy as much of the pushable bytes as fits into the request ring."""
        if not self.pushable:
            return False
        indexes = self.ring_indexes("request", REQ_CONS, REQ_PROD)
        if indexes is None:
            return False
        _, prod, used = indexes
        count = min(RING_SIZE - used, self.pushable)
        if not count:
            return False
        with memoryview(self.inbuf) as view:
            _ring_write(self.ring, REQ_OFFSET, prod, view[:count])
        self.words[REQ_PROD] = (prod + count) & 0xFFFFFFFF
        del self.inbuf[:count]
        self.pushable -= count
        return True

    # -- reply side -----------------------------------------------------------------------
    def pull(self) -> bool:
        """Drain the reply ring into the client's buffer (or discard it, between clients)."""
        if self.client is not None and len(self.outbuf) >= MAX_OUTBUF:
            return False
        indexes = self.ring_indexes("reply", RSP_CONS, RSP_PROD)
        if indexes is None:
            return False
        cons, _, avail = indexes
        if not avail:
            return False
        data = _ring_read(self.ring, RSP_OFFSET, cons, avail)
        self.words[RSP_CONS] = (cons + avail) & 0xFFFFFFFF
        self.on_replies(data)
        return True

    def ring_indexes(self, ring: str, cons_word: int, prod_word: int
                     ) -> tuple[int, int, int] | None:
        """(cons, prod, bytes between them) of one ring; None, logged, when the indexes are
        more than a ring apart."""
        cons = self.words[cons_word]
        prod = self.words[prod_word]
        filled = (prod - cons) & 0xFFFFFFFF
        if filled > RING_SIZE:
            self.log.error("bridge.bad_ring_indexes", ring=ring, cons=cons, prod=prod)
            return None
        return cons, prod, filled

    def on_replies(self, data: bytes) -> None:
        """Follow frame boundaries (to count replies) while forwarding or discarding."""
        forward = self.client is not None
        pos = 0
        end = len(data)
        header = self.rsp_header
        while pos < end:
            if self.rsp_left:
                take = min(self.rsp_left, end - pos)
                if forward:
                    self.outbuf += data[pos:pos + take]
                pos += take
                self.rsp_left -= take
                if self.rsp_left:
                    break
            else:
                take = min(HEADER_SIZE - len(header), end - pos)
                header += data[pos:pos + take]
                pos += take
                if len(header) < HEADER_SIZE:
                    break
                if forward:
                    self.outbuf += header
                self.rsp_left = HEADER.unpack_from(header)[3]
                if self.rsp_left:
                    continue
            # a whole frame has gone by
            op, req_id = HEADER.unpack_from(header)[:2]
            header.clear()
            if op != Op.WATCH_EVENT:
                self.on_reply(op, req_id)
                forward = self.client is not None

    def on_reply(self, op: int, req_id: int) -> None:
        self.outstanding -= 1
        if not self.cleaning:
            return
        mine = op == Op.RESET_WATCHES and req_id == RESET_MARKER + self.resets
        if self.outstanding <= 0 or mine:
            if self.outstanding != 0 or not mine:
                self.log.warning("bridge.reset_count_mismatch", outstanding=self.outstanding,
                                 op=op, req_id=req_id)
            self.outstanding = 0
            self.cleaning = False
            self.log.debug("bridge.guest_reset")

    # -- client side ----------------------------------------------------------------------
    def flush(self) -> None:
        client = self.client
        if client is None or not self.outbuf:
            return
        try:
            sent = client.send(self.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self.disconnect()
            return
        del self.outbuf[:sent]

    def disconnect(self) -> None:
        """The client left: finish its whole frames, then reset the domain's connection."""
        if self.client is None:
            return
        self.drop_client()
        self.log.debug("bridge.client_disconnected", outstanding=self.outstanding)
        if self.oversize or self.broken:
            return
        del self.inbuf[self.pushable:]  # an incomplete frame was never started
        self.resets += 1
        reset = Packet(Op.RESET_WATCHES, RESET_MARKER + self.resets, 0, b"").encode()
        self.inbuf += reset
        self.pushable += len(reset)
        self.outstanding += 1
        self.cleaning = True
        self.pump()

    def drop_client(self) -> None:
        client = self.client
        if client is None:
            return
        if self.client_events:
            self.bridge.selector.unregister(client)
            self.client_events = 0
        client.close()
        self.client = None
        self.outbuf.clear()

    def check_broken(self) -> None:
        """After an oversized header reached the daemon, wait for the ring's error, then
        close the client. The daemon sets the error right after the read that consumed the
        header (and notified us), without notifying again: a short deadline covers the gap."""
        if not self.oversize or self.broken or self.pushable:
            return
        if self.words[REQ_CONS] != self.words[REQ_PROD]:
            return  # not read yet: its read notifies us
        error = self.words[ERROR]
        now = time.monotonic()
        if self.broken_deadline is None:
            self.broken_deadline = now + BROKEN_DEADLINE
        if error == 0 and now < self.broken_deadline:
            self.bridge.waiting.add(self)
            return
        self.bridge.waiting.discard(self)
        self.broken = True
        self.log.info("bridge.guest_broken", ring_error=error)
        self.drop_client()
        self.inbuf.clear()

    # -- the step -------------------------------------------------------------------------
    def pump(self) -> None:
        """Move everything that can move now, then wait for what is needed next."""
        if self.closed:
            return
        moved = False
        while True:
            step = self.push()
            step |= self.pull()
            if not step:
                break
            moved = True
        if moved:
            self.bridge.kick(self.port_bytes)
        self.flush()
        self.check_broken()
        if not self.closed:
            self.update_interest()

    def update_interest(self) -> None:
        sel = self.bridge.selector
        want_accept = self.client is None and not self.cleaning
        if want_accept != self.listening:
            if want_accept:
                sel.register(self.listener, selectors.EVENT_READ, self.on_accept)
            else:
                sel.unregister(self.listener)
            self.listening = want_accept
        client = self.client
        if client is None:
            return
        events = 0
        if len(self.inbuf) < MAX_INBUF and not self.oversize:
            events |= selectors.EVENT_READ
        if self.outbuf:
            events |= selectors.EVENT_WRITE
        if events == self.client_events:
            return
        if not events:
            sel.unregister(client)
        elif not self.client_events:
            sel.register(client, events, self.on_client)
        else:
            sel.modify(client, events, self.on_client)
        self.client_events = events

    def status(self) -> dict[str, Any]:
        return {"connected": self.client is not None, "cleaning": self.cleaning,
                "broken": self.broken, "ring_error": self.words[ERROR],
                "outstanding": self.outstanding}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        sel = self.bridge.selector
        self.bridge.waiting.discard(self)
        self.drop_client()
        if self.listening:
            sel.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        sel.unregister(self.notify_fd)
        os.close(self.notify_fd)
        self.words.release()
        self.ring.close()
        self.bridge.guests.pop(self.domid, None)


def _ring_write(ring: mmap.mmap, base: int, index: int, data: memoryview) -> None:
    """Copy ``data`` into the ring at ``base`` from free-running ``index`` on, wrapping."""
    pos = index & RING_MASK
    first = min(len(data), RING_SIZE - pos)
    ring[base + pos:base + pos + first] = data[:first]
    if len(data) > first:
        ring[base:base + len(data) - first] = data[first:]


def _ring_read(ring: mmap.mmap, base: int, index: int, count: int) -> bytes:
    """``count`` bytes of the ring at ``base`` from free-running ``index`` on, wrapping."""
    pos = index & RING_MASK
    first = min(count, RING_SIZE - pos)
    data = ring[base + pos:base + pos + first]
    if count > first:
        data += ring[base:base + count - first]
    return data


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class Bridge:
    """The selector loop: every guest, plus the control channel on stdin."""

    def __init__(self, events_path: str) -> None:
        self.selector = selectors.DefaultSelector()
        # Read-write, so that writing never fails for want of a reader.
        self.events_fd = os.open(events_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.guests: dict[int, GuestLink] = {}
        self.waiting: set[GuestLink] = set()
        self.control_fd = sys.stdin.fileno()
        self.control_buf = bytearray()
        os.set_blocking(self.control_fd, False)
        self.selector.register(self.control_fd, selectors.EVENT_READ,
                               self.on_control)
        self.running = True

    def kick(self, port_bytes: bytes) -> None:
        """Wake the daemon: it re-checks every ring on each pass of its loop."""
        try:
            os.write(self.events_fd, port_bytes)
        except BlockingIOError:
            return  # the FIFO is full of wake-ups already

    def run(self) -> None:
        while self.running:
            timeout = 0.001 if self.waiting else None
            ready = self.selector.select(timeout)
            registered = self.selector.get_map()
            for key, mask in ready:
                if registered.get(key.fd) is not key:
                    continue  # closed or re-registered by an earlier callback: stale
                callback: Callable[[int], None] = key.data
                callback(mask)
            for guest in list(self.waiting):
                guest.pump()

    # -- control --------------------------------------------------------------------------
    def on_control(self, _mask: int) -> None:
        try:
            data = os.read(self.control_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.running = False
            return
        self.control_buf += data
        while b"\n" in self.control_buf:
            line, _, rest = bytes(self.control_buf).partition(b"\n")
            self.control_buf = bytearray(rest)
            try:
                reply = self.command(json.loads(line))
            except Exception as exc:  # reported to the harness, which raises
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "ping":
            return {"ok": True}
        domid = int(cmd["domid"])
        if op == "add":
            if domid in self.guests:
                raise ValueError(f"domain {domid} is already bridged")
            self.guests[domid] = GuestLink(self, domid, int(cmd["port"]), cmd["ring"],
                                           cmd["notify"], cmd["socket"])
            log.info("bridge.guest_added", domid=domid, socket=cmd["socket"])
            return {"ok": True}
        if op == "remove":
            guest = self.guests.get(domid)
            if guest is not None:
                guest.close()
            return {"ok": True}
        if op == "status":
            guest = self.guests.get(domid)
            return {"ok": True, "present": guest is not None,
                    **(guest.status() if guest is not None else {})}
        raise ValueError(f"unknown bridge command {op!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True, help="the daemon's event FIFO")
    args = parser.parse_args(argv)
    # stdout is the control channel: logs go to stderr.
    configure("debug", sys.stderr)
    bridge = Bridge(args.events)
    log.info("bridge.started", pid=os.getpid())
    bridge.run()
    for guest in list(bridge.guests.values()):
        guest.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
