"""A fake ``/dev/xen/xenbus``: what Linux's xenbus device does, over a SOCK_SEQPACKET pair.

The client end is an fd the bus uses as a :class:`DeviceTransport`. Each write() on it is one
record, so the fake "kernel" sees exactly what each write held, and enforces the device's
rules (drivers/xen/xenbus/xenbus_dev_frontend.c):

- one whole message per write: a write with less, or more, than exactly one message is a
  violation (the real kernel would wait for the rest, or drop the extra bytes);
- at most 4080 payload bytes (the real write() fails with E2BIG);
- WATCH and UNWATCH are answered by the kernel itself, ``OK`` with the caller's ids. It
  registers its own watch upstream with a token of its own; duplicates make two watches,
  UNWATCH of an unknown watch still answers OK. Events reach the caller with the caller's
  token and **garbage** req_id / tx_id; the first event may come before the OK
  (``event_before_ok``);
- anything else is forwarded upstream (a guest connection of the daemon) under the kernel's
  own req_id, and the reply goes back with the caller's req_id restored.

Every violation is recorded in ``violations``; tests assert it stays empty.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket

import gevent
import gevent.socket
from gevent.event import AsyncResult

from xsactor.protocol import HEADER_SIZE, XENBUS_PAYLOAD_MAX, Decoder, Op, Packet
from xsactor.protocol.ops import HEADER
from xsactor.protocol.packets import join_args


class FakeXenbusKernel:
    def __init__(self, upstream_path: str, *, event_before_ok: bool = False) -> None:
        self.upstream_path = upstream_path
        self.event_before_ok = event_before_ok
        self.violations: list[str] = []
        self.writes: list[bytes] = []
        self.answered_watch_ops = 0
        self.user, self._kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.user_fd = self.user.fileno()
        self._kernel = gevent.socket.socket(fileno=self._kernel.detach())
        self._up = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
        self._up.connect(upstream_path)
        self._ids = itertools.count(1)
        self._waiting: dict[int, AsyncResult | tuple[int, int]] = {}
        self._ktokens = itertools.count(1)
        self._held_ok: Packet | None = None
        # kernel token -> (path, user token); a list per (path, token): duplicates allowed
        self.watches: dict[bytes, tuple[bytes, bytes]] = {}
        self._greenlets = [gevent.spawn(self._from_user), gevent.spawn(self._from_daemon)]

    # -- user side -------------------------------------------------------------------------
    def _to_user(self, packet: Packet) -> None:
        self._kernel.sendall(packet.encode())  # one record per message

    def _from_user(self) -> None:
        while True:
            try:
                record = self._kernel.recv(65536)
            except OSError:
                return
            if not record:
                return
            self.writes.append(record)
            if len(record) < HEADER_SIZE:
                self.violations.append(f"write of {len(record)} bytes: not a whole header")
                continue
            op, req_id, tx_id, length = HEADER.unpack_from(record)
            if length > XENBUS_PAYLOAD_MAX:
                self.violations.append(f"write announcing {length} payload bytes (> 4080)")
                self._to_user(Packet(Op.ERROR, req_id, tx_id, b"E2BIG\0"))
                continue
            if len(record) != HEADER_SIZE + length:
                self.violations.append(
                    f"write of {len(record)} bytes holds not exactly one message "
                    f"({HEADER_SIZE + length})")
                record = record[:HEADER_SIZE + length]
                if len(record) < HEADER_SIZE + length:
                    continue
            packet = Packet(op, req_id, tx_id, record[HEADER_SIZE:])
            if op in (Op.WATCH, Op.UNWATCH):
                gevent.spawn(self._watch_op, packet)
            else:
                kid = next(self._ids)
                self._waiting[kid] = (req_id, tx_id)
                self._up.sendall(Packet(op, kid, tx_id, packet.payload).encode())

    def _watch_op(self, packet: Packet) -> None:
        args = packet.args
        if len(args) != 2:
            self._to_user(packet.reply(b"EINVAL\0", Op.ERROR))
            return
        path, token = args
        self.answered_watch_ops += 1
        if packet.op == Op.UNWATCH:
            found = [k for k, v in self.watches.items() if v == (path, token)]
            if found:
                del self.watches[found[0]]
                self._upstream(Op.UNWATCH, join_args(path, found[0]))
            self._to_user(packet.reply(b"OK\0"))
            return
        ktoken = b"k%d" % next(self._ktokens)
        self.watches[ktoken] = (path, token)
        if not self.event_before_ok:
            # Linux waits for the daemon's answer; the first event comes on another thread.
            reply = self._upstream(Op.WATCH, join_args(path, ktoken))
            if reply.op == Op.ERROR:
                del self.watches[ktoken]
                self._to_user(packet.reply(reply.payload, Op.ERROR))
                return
            self._to_user(packet.reply(b"OK\0"))
        else:
            self._held_ok = packet
            self._upstream(Op.WATCH, join_args(path, ktoken))

    def _upstream(self, op: int, payload: bytes) -> Packet:
        kid = next(self._ids)
        result: AsyncResult = AsyncResult()
        self._waiting[kid] = result
        self._up.sendall(Packet(op, kid, 0, payload).encode())
        return result.get(timeout=10)

    # -- daemon side -----------------------------------------------------------------------
    def _from_daemon(self) -> None:
        decoder = Decoder()
        while True:
            try:
                data = self._up.recv(65536)
            except OSError:
                return
            if not data:
                return
            for packet in decoder.feed(data):
                if packet.op == Op.WATCH_EVENT:
                    self._event(packet)
                    continue
                waiting = self._waiting.pop(packet.req_id, None)
                if isinstance(waiting, AsyncResult):
                    waiting.set(packet)
                elif waiting is not None:
                    req_id, tx_id = waiting
                    self._to_user(Packet(packet.op, req_id, tx_id, packet.payload))

    def _event(self, packet: Packet) -> None:
        args = packet.args
        found = self.watches.get(args[1]) if len(args) == 2 else None
        if found is None:
            return
        garbage = (random.getrandbits(32), random.getrandbits(32))
        self._to_user(Packet(Op.WATCH_EVENT, *garbage, args[0] + b"\0" + found[1] + b"\0"))
        held = self._held_ok
        if held is not None:  # the first event went first; now the OK
            self._held_ok = None
            self._to_user(held.reply(b"OK\0"))

    def close(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        for s in (self._kernel, self._up, self.user):
            with contextlib.suppress(OSError):
                s.close()
