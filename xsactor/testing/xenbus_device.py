"""A fake ``/dev/xen/xenbus``: Linux's xenbus device for tests, yours included.

Modelled on mainline Linux since 4.11 (2017: Juergen Gross's "xen: optimize xenbus driver
for multiple concurrent xenstore accesses" made user requests asynchronous, tracked
transactions per file with a generation, and moved the ring I/O into ``xenbus_thread``),
with the file's ``kref`` and ``xenbus_worker`` cleanup added in 5.4 (2019, "xen/xenbus: fix
self-deadlock after killing user process"): the text of ``drivers/xen/xenbus/
xenbus_dev_frontend.c``, ``xenbus_xs.c`` and ``xenbus_comms.c`` as of v6.x, from memory of
that source (no Xen here to check against). Before 4.11 every request was a synchronous
``xs_talkv`` inside ``write()``; that older device is not modelled.

:class:`XenbusKernel` is the guest kernel: **one upstream connection** (the ring of
``xenbus_comms.c``; here a guest socket of a xenstored, e.g. the embedded daemon's), shared by
every open file and by the kernel's own watches (``device``, ``control/shutdown``, ...), so
quotas, the transaction-id namespace and the scope of RESET_WATCHES are shared as in a guest.
It runs the kernel's threads as OS threads: ``xenbus_thread`` (``process_msg``: replies and
events from upstream) and ``xenwatch_thread`` (watch callbacks). :meth:`XenbusKernel.open`
gives a :class:`XenbusFile` (``xenbus_file_open``), whose methods are the file operations:

- :meth:`XenbusFile.write` is ``xenbus_file_write``: it runs in the caller's thread and may
  block (``msgbuffer_mutex``; a synchronous WATCH/UNWATCH round trip; ``xs_request_enter``
  while a suspend is in progress). Split writes are buffered until a whole message is there;
  bytes after it in the same write are dropped. Errors fail the ``write()`` with the errno
  (``OSError``): E2BIG for a header announcing more than 4080 payload bytes, EINVAL for a
  write overflowing the 4096-byte buffer, the daemon's errno for a refused WATCH.
- :meth:`XenbusFile.read` is ``xenbus_file_read`` with ``O_NONBLOCK``: a byte stream over
  the file's ``read_buffers`` (one read may span replies or end inside one); ``EAGAIN`` when
  empty; never end of stream.
- :meth:`XenbusFile.fileno` is for ``xenbus_file_poll``: readable when replies are queued,
  **never writable**.
- :meth:`XenbusFile.close` is ``xenbus_file_release``; ``xenbus_worker`` then ends the
  file's transactions and removes its watches once no reply is outstanding.

Why a file object and not a socketpair: a socket is writable in poll, and its reads are one
record per read (SOCK_SEQPACKET) or its writes lose their boundaries (SOCK_STREAM), and its
``write()`` cannot block or fail on the kernel's terms. The bus's
:class:`~xsactor.bus.transports.DeviceTransport` takes any such file
(:class:`~xsactor.bus.transports.DeviceFile`): the real device is an fd with ``os.read`` /
``os.write``, this one a doorbell pipe for poll and methods for the rest.

What the kernel answers itself (``xenbus_command_reply``): OK for WATCH/UNWATCH (a duplicate
WATCH makes a second watch; UNWATCH of an unknown watch is OK), ERROR EINVAL for a
WATCH/UNWATCH payload without two NULs, ENOENT for a tx_id this file did not start, EINVAL for
a TRANSACTION_END whose payload is not ``T\\0`` or ``F\\0``, and after a resume EAGAIN for END
``T`` of an old transaction and OK for END ``F`` (``xenbus_write_transaction``). Everything
else goes upstream under the kernel's own req_id (``xs_send``/``xs_request_enter``), the
reply comes back with the caller's (``xenbus_dev_queue_reply``). Watch events
(``watch_fired``) carry the caller's token and uninitialised (here random) req_id and tx_id;
their length is the path plus the token, not capped at 4096.

Rule breaks a program must avoid are recorded in :attr:`XenbusKernel.violations` (tests
assert it stays empty):

- WATCH or UNWATCH written while the same file has requests outstanding: the writer holds
  ``msgbuffer_mutex`` across the round trip and ``xenbus_dev_queue_reply`` needs it for the
  earlier replies, which the single ``xenbus_thread`` delivers before the WATCH's (lockdep
  reports the chain; a reply that does come meanwhile is a deadlock, which is recorded too);
- a ``write()`` on a thread running a gevent hub (it blocks the whole process);
- bytes after a whole message in one write (the kernel drops them);
- a second TRANSACTION_END while the first is in flight (the kernel drops one reply);
- a file closed with transactions open (``xenbus_worker`` ends them through the kernel's
  ``xenbus_transaction_end``, which ``xs_request_exit`` counts as a kernel transaction:
  ``xs_state_users`` goes wrong and a later suspend may never finish).

Hooks: :meth:`~XenbusKernel.hold_replies` / :meth:`~XenbusKernel.release_replies`
(``xenbus_thread`` stalls), :meth:`~XenbusKernel.drop_replies` (``queue_reply`` fails:
out of memory), :meth:`~XenbusKernel.refuse_watches` (the next WATCHes fail with an errno),
:meth:`~XenbusKernel.suspend`, :meth:`~XenbusKernel.resume` and
:meth:`~XenbusKernel.migrate` (``xs_suspend``/``xs_resume``: a new upstream connection, the
generation bumped, every watch re-registered and fired).

Do not monkey-patch ``threading`` in a process using this fake. Calls that wait for the
daemon never stall a gevent hub: on a hub's thread they wait in the hub's threadpool (the
daemon under test may be served by that hub).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gevent._hub_local import get_hub_if_exists

from ..protocol import HEADER_SIZE, PAYLOAD_MAX, Decoder, Op, Packet
from ..protocol.ops import HEADER, op_name
from ..protocol.packets import encode, join_args, split_args

__all__ = ["KERNEL_WATCHES", "XenbusFile", "XenbusKernel"]

BUFFER_SIZE = 4096
"""``sizeof(u->u.buffer)``: header and payload of one request (XENSTORE_PAYLOAD_MAX)."""
KERNEL_WATCHES = ("device", "control/shutdown", "control/sysrq", "memory/target", "cpu")
"""Watches a Linux guest registers for itself (xenbus frontends, reboot.c, balloon, cpu
hotplug), relative to the domain's home."""
REPLY_TIMEOUT = 10.0


def _errno_of(payload: bytes) -> int:
    """The errno of an ERROR reply (``get_error`` in xenbus_xs.c; EINVAL if unknown)."""
    name = payload.rstrip(b"\0").decode("ascii", "replace")
    value = getattr(errno, name, None)
    return value if isinstance(value, int) else errno.EINVAL


def _on_hub_thread() -> bool:
    return get_hub_if_exists() is not None


def _wait(event: threading.Event, timeout: float | None) -> bool:
    """Wait for ``event``; on a gevent hub's thread, in its threadpool (the hub keeps running)."""
    if _on_hub_thread():
        import gevent

        return bool(gevent.get_hub().threadpool.apply(event.wait, (timeout,)))
    return event.wait(timeout)


def _acquire(lock: threading.Lock) -> None:
    if lock.acquire(blocking=False):
        return
    if _on_hub_thread():
        import gevent

        gevent.get_hub().threadpool.apply(lock.acquire)
    else:
        lock.acquire()


# -- the kernel's records ------------------------------------------------------------------

@dataclass(eq=False)
class _Request:
    """``struct xb_req_data``: a request on the ring, waiting for its reply."""

    type: int
    caller_req_id: int
    tx_id: int
    file: XenbusFile | None = None  # None: the kernel's own (xs_talkv)
    done: threading.Event = field(default_factory=threading.Event)
    reply: Packet | None = None


@dataclass(eq=False)
class _Watch:
    """``struct xenbus_watch`` (with its ``watch_adapter`` when a file owns it)."""

    node: bytes
    callback: Callable[[_Watch, bytes], None]
    file: XenbusFile | None = None
    token: bytes = b""  # the caller's token (watch_adapter.token)
    registered: bool = False

    @property
    def ktoken(self) -> bytes:
        return b"%X" % id(self)  # register_xenbus_watch: "the pointer in ascii is the token"


@dataclass(eq=False)
class _Transaction:
    """``struct xenbus_transaction_holder``."""

    id: int
    generation: int


class XenbusFile:
    """An open ``/dev/xen/xenbus`` (``struct xenbus_file_priv``); see the module docstring."""

    def __init__(self, kernel: XenbusKernel, name: str) -> None:
        self.kernel = kernel
        self.name = name
        self.msgbuffer_mutex = threading.Lock()
        self.reply_mutex = threading.Lock()
        self.transactions: list[_Transaction] = []
        self.watches: list[_Watch] = []
        self._buffer = bytearray()
        self._read_buffers = bytearray()
        self._bell_r, self._bell_w = os.pipe()
        os.set_blocking(self._bell_r, False)
        self.outstanding = 0
        self._in_watch_op = False
        self._ref_lock = threading.Lock()
        self._refs = 1  # kref: the open file plus one per outstanding request
        self.closed = False
        self.writes: list[bytes] = []
        """Every write() as given (for tests that check how a program writes)."""

    # -- file operations ------------------------------------------------------------------
    def fileno(self) -> int:
        """For ``xenbus_file_poll``: readable when replies are queued, never writable."""
        return self._bell_r

    def read(self, size: int) -> bytes:
        """``xenbus_file_read`` on an O_NONBLOCK file: up to ``size`` queued bytes, spanning
        replies; BlockingIOError when none are queued (never end of stream)."""
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        with self.reply_mutex:
            if not self._read_buffers:
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            data = bytes(self._read_buffers[:size])
            del self._read_buffers[:size]
            if not self._read_buffers:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._bell_r, 64)
            return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """``xenbus_file_write``: buffer until a whole message, act on it (may block);
        returns ``len(data)`` or raises OSError with the kernel's errno."""
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        data = bytes(data)
        self.writes.append(data)
        if _on_hub_thread():
            self.kernel._violation(
                f"{self.name}: write() on the thread of a gevent hub; the device's write() "
                "blocks (msgbuffer_mutex, WATCH round trips, suspend), stalling the process")
        self._get_ref()  # a write in progress keeps the file (xenbus_worker waits)
        _acquire(self.msgbuffer_mutex)
        try:
            if not data:
                return 0
            if len(data) > BUFFER_SIZE - len(self._buffer):
                self._buffer.clear()  # "On error, dump existing buffer"
                raise OSError(errno.EINVAL, "xenbus: write overflows the message buffer")
            self._buffer += data
            if len(self._buffer) < HEADER_SIZE:
                return len(data)
            op, req_id, tx_id, length = HEADER.unpack_from(self._buffer)
            if HEADER_SIZE + length > BUFFER_SIZE:
                self._buffer.clear()
                raise OSError(errno.E2BIG, f"xenbus: {length}-byte payload (at most 4080)")
            if len(self._buffer) < HEADER_SIZE + length:
                return len(data)  # incomplete data portion
            if len(self._buffer) > HEADER_SIZE + length:
                self.kernel._violation(
                    f"{self.name}: {len(self._buffer) - HEADER_SIZE - length} bytes after a "
                    "whole message in one write, dropped by the kernel")
            end = HEADER_SIZE + length
            packet = Packet(op, req_id, tx_id, bytes(self._buffer[HEADER_SIZE:end]))
            self._buffer.clear()  # "Buffered message consumed" (also on error)
            if op in (Op.WATCH, Op.UNWATCH):
                self._write_watch(packet)
            else:
                self._write_transaction(packet)
            return len(data)
        finally:
            self.msgbuffer_mutex.release()
            self._put_ref()

    def close(self) -> None:
        """``xenbus_file_release``: the rest (``xenbus_worker``) runs when no reply is
        outstanding."""
        if self.closed:
            return
        self.closed = True
        if self.transactions:
            self.kernel._violation(
                f"{self.name}: closed with {len(self.transactions)} transaction(s) open; "
                "xenbus_worker ends them as kernel transactions (xs_state_users goes wrong)")
        self._close_fds()
        self._put_ref()

    def _close_fds(self) -> None:
        with self.reply_mutex:
            self.closed = True
            if self._bell_w >= 0:
                os.close(self._bell_w)
                os.close(self._bell_r)
                self._bell_w = self._bell_r = -1

    # -- xenbus_write_watch -----------------------------------------------------------------
    def _write_watch(self, packet: Packet) -> None:
        body = packet.payload
        first = body.find(b"\0")
        second = body.find(b"\0", first + 1) if first >= 0 else -1
        if first < 0 or second < 0:
            self._command_reply(packet, Op.ERROR, b"EINVAL")
            return
        path, token = body[:first], body[first + 1:second]
        if self.outstanding:
            self.kernel._violation(
                f"{self.name}: {op_name(packet.op)} written with {self.outstanding} request(s) "
                "of this file outstanding: msgbuffer_mutex is held across the round trip and "
                "xenbus_dev_queue_reply needs it (deadlock)")
        self._in_watch_op = True
        try:
            if packet.op == Op.WATCH:
                watch = _Watch(path, self.kernel._watch_fired, self, token)
                error = self.kernel.register_xenbus_watch(watch)
                if error:
                    raise OSError(error, f"xenbus: WATCH refused ({os.strerror(error)})")
                self.watches.insert(0, watch)  # list_add
            else:
                for watch in self.watches:
                    if watch.token == token and watch.node == path:  # strcmp, as written
                        self.kernel.unregister_xenbus_watch(watch)
                        self.watches.remove(watch)
                        break
        finally:
            self._in_watch_op = False
        self._command_reply(packet, packet.op, b"OK")

    # -- xenbus_write_transaction ---------------------------------------------------------
    def _get_transaction(self, tx_id: int) -> _Transaction | None:
        return next((t for t in self.transactions if t.id == tx_id), None)

    def _write_transaction(self, packet: Packet) -> None:
        kernel = self.kernel
        trans = None
        if packet.op == Op.TRANSACTION_START:
            trans = _Transaction(0, kernel.generation)
            self.transactions.insert(0, trans)
        elif packet.tx_id and self._get_transaction(packet.tx_id) is None:
            self._command_reply(packet, Op.ERROR, b"ENOENT")
            return
        elif packet.op == Op.TRANSACTION_END and packet.payload not in (b"T\0", b"F\0"):
            self._command_reply(packet, Op.ERROR, b"EINVAL")
            return
        elif packet.op == Op.TRANSACTION_END:
            trans = self._get_transaction(packet.tx_id)
            if trans is not None and trans.generation != kernel.generation:
                self.transactions.remove(trans)
                if packet.payload == b"T\0":
                    self._command_reply(packet, Op.ERROR, b"EAGAIN")
                else:
                    self._command_reply(packet, Op.TRANSACTION_END, b"OK")
                return
            trans = None
        request = _Request(packet.op, packet.req_id, packet.tx_id, self)
        self._get_ref(request=True)
        kernel.xs_send(request, packet.payload)  # xenbus_dev_request_and_reply

    def _command_reply(self, packet: Packet, op: int, reply: bytes) -> None:
        """``xenbus_command_reply``: the request's header, the kernel's answer."""
        self._queue(encode(op, packet.req_id, packet.tx_id, reply + b"\0"))

    # -- replies --------------------------------------------------------------------------
    def _queue(self, data: bytes) -> None:
        """``queue_reply`` + ``wake_up(read_waitq)``, under ``reply_mutex``."""
        with self.reply_mutex:
            if self.closed:
                return
            was_empty = not self._read_buffers
            self._read_buffers += data
            if was_empty:
                os.write(self._bell_w, b"!")

    def queue_reply(self, request: _Request, reply: Packet) -> None:
        """``xenbus_dev_queue_reply`` (called by ``xenbus_thread``)."""
        if self._in_watch_op:
            # The real xenbus_thread would block here on msgbuffer_mutex for good.
            self.kernel._violation(
                f"{self.name}: deadlock: the reply to {op_name(request.type)} waits for "
                "msgbuffer_mutex, held by a WATCH/UNWATCH waiting for a reply behind it")
            keep = self._apply_reply(request, reply)  # carry on, so the test can report it
        else:
            with self.msgbuffer_mutex:
                keep = self._apply_reply(request, reply)
        if keep:
            self._queue(encode(reply.op, request.caller_req_id, request.tx_id, reply.payload))
        self._put_ref(request=True)

    def _apply_reply(self, request: _Request, reply: Packet) -> bool:
        if request.type == Op.TRANSACTION_START:
            trans = self._get_transaction(0)
            if trans is None:
                return False
            if reply.op == Op.ERROR:
                self.transactions.remove(trans)
            else:
                trans.id = int(reply.payload.rstrip(b"\0"))
        elif request.type == Op.TRANSACTION_END:
            trans = self._get_transaction(request.tx_id)
            if trans is None:  # WARN_ON(!trans): goto out, the reply is dropped
                self.kernel._violation(
                    f"{self.name}: a second TRANSACTION_END of {request.tx_id} was in flight; "
                    "the kernel dropped its reply")
                return False
            self.transactions.remove(trans)
        return True

    def _get_ref(self, *, request: bool = False) -> None:
        """``kref_get``; ``request``: for a request sent upstream (counted as outstanding)."""
        with self._ref_lock:
            self._refs += 1
            self.outstanding += request

    def _put_ref(self, *, request: bool = False) -> None:
        with self._ref_lock:
            self._refs -= 1
            self.outstanding -= request
            last = self._refs == 0
        if last:
            # xenbus_file_free -> schedule_work(xenbus_worker): not in xenbus_thread.
            threading.Thread(target=self._worker, daemon=True,
                             name=f"xenbus_worker {self.name}").start()

    def _worker(self) -> None:
        """``xenbus_worker``: end the file's transactions, remove its watches."""
        for trans in list(self.transactions):
            with contextlib.suppress(OSError):
                self.kernel.xs_talkv(Op.TRANSACTION_END, b"F\0", trans.id)
        self.transactions.clear()
        for watch in list(self.watches):
            self.kernel.unregister_xenbus_watch(watch)
        self.watches.clear()
        self.kernel._files.discard(self)

    def _watch_event(self, watch: _Watch, path: bytes) -> None:
        """``watch_fired``: header with uninitialised req_id/tx_id, the path, the caller's
        token; the length is path + token (more than 4096 is possible)."""
        body = path + b"\0" + watch.token + b"\0"
        self._queue(encode(Op.WATCH_EVENT, random.getrandbits(32), random.getrandbits(32), body))

    def __repr__(self) -> str:
        return f"<XenbusFile {self.name}>"


class XenbusKernel:
    """The guest kernel's xenbus: one upstream connection shared by every file and by its
    own watches (see the module docstring)."""

    def __init__(self, upstream_path: str, *, kernel_watches: Iterable[str] = KERNEL_WATCHES,
                 reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.upstream_path = upstream_path
        self.reply_timeout = reply_timeout
        self.violations: list[str] = []
        self.generation = 0
        """``xb_dev_generation_id``: bumped by every resume."""
        self.kernel_events: list[bytes] = []
        """Paths of the events the kernel's own watches received."""
        self._files: set[XenbusFile] = set()
        self._names = itertools.count(1)
        self._ids = itertools.count(1)  # xs_request_id
        self._requests: dict[int, _Request] = {}  # xs_reply_list
        self._watches: dict[bytes, _Watch] = {}  # the kernel's watch list, by token
        self._write_mutex = threading.Lock()  # xb_write_mutex
        self._state_lock = threading.Condition()  # xs_state_lock and its wait queues
        self._state_users = 0
        self._suspend_active = False
        self._flow = threading.Event()  # cleared by hold_replies
        self._flow.set()
        self._drop = 0
        self._refuse: deque[int] = deque()
        self._events: deque[tuple[_Watch, bytes] | None] = deque()
        self._events_ready = threading.Condition()
        self._sock: socket.socket | None = None
        self._closed = False
        self._connect()
        threading.Thread(target=self._xenwatch_thread, daemon=True, name="xenwatch").start()
        for node in kernel_watches:
            error = self.register_xenbus_watch(_Watch(node.encode(), self._kernel_watch_fired))
            if error:
                raise OSError(error, f"the kernel's watch on {node} was refused")

    # -- files ----------------------------------------------------------------------------
    def open(self) -> XenbusFile:
        """``xenbus_file_open``: a new file on the shared connection."""
        if self._closed:
            raise OSError(errno.ENOENT, "xenbus is gone")
        file = XenbusFile(self, f"xenbus#{next(self._names)}")
        self._files.add(file)
        return file

    def transport(self, **options: Any) -> Any:
        """A new file wrapped as the bus's :class:`~xsactor.bus.transports.DeviceTransport`."""
        from ..bus.transports import DeviceTransport

        file = self.open()
        return DeviceTransport(file, file.name, **options)

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    # -- the ring (xenbus_comms.c) and requests (xenbus_xs.c) -----------------------------
    def _connect(self) -> None:
        """``xb_init_comms``: a fresh connection, and its ``xenbus_thread``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.upstream_path)
        self._sock = sock
        threading.Thread(target=self._xenbus_thread, args=(sock,), daemon=True,
                         name="xenbus").start()

    def _request_enter(self) -> int:
        """``xs_request_enter``: wait while a suspend is in progress; count the user."""
        with self._state_lock:
            while self._suspend_active:
                if _on_hub_thread():
                    self._state_lock.release()
                    try:
                        import gevent

                        gevent.get_hub().threadpool.apply(self._wait_resumed)
                    finally:
                        self._state_lock.acquire()
                else:
                    self._state_lock.wait()
            self._state_users += 1
            return next(self._ids) & 0xFFFFFFFF

    def _wait_resumed(self) -> None:
        with self._state_lock:
            while self._suspend_active:
                self._state_lock.wait()

    def _request_exit(self) -> None:
        """``xs_request_exit``."""
        with self._state_lock:
            self._state_users -= 1
            self._state_lock.notify_all()

    def xs_send(self, request: _Request, payload: bytes) -> None:
        """``xs_send``: the kernel's req_id on the ring; the reply is matched by it."""
        kid = self._request_enter()
        self._requests[kid] = request
        data = encode(request.type, kid, request.tx_id, payload)
        with self._write_mutex:
            sock = self._sock
            try:
                if self._closed or sock is None:
                    raise OSError(errno.ENODEV, "xenbus is gone")
                sock.sendall(data)
            except OSError:
                request.done.set()  # a kernel waiter gives up; a file's reply never comes

    def xs_talkv(self, op: int, payload: bytes, tx_id: int = 0) -> Packet:
        """``xs_talkv``: a kernel request, waited for; OSError(errno) for an ERROR reply."""
        request = _Request(op, 0, tx_id)
        self.xs_send(request, payload)
        if not _wait(request.done, self.reply_timeout) or request.reply is None:
            raise OSError(errno.ETIMEDOUT, f"no reply to the kernel's {op_name(op)}")
        if request.reply.op == Op.ERROR:
            raise OSError(_errno_of(request.reply.payload), request.reply.payload.decode())
        return request.reply

    def register_xenbus_watch(self, watch: _Watch) -> int:
        """``register_xenbus_watch`` + ``xs_watch``: 0 or the errno of the refusal."""
        self._watches[watch.ktoken] = watch
        watch.registered = True
        refused = self._refuse.popleft() if self._refuse else 0
        try:
            if refused:
                return refused
            self.xs_talkv(Op.WATCH, join_args(watch.node, watch.ktoken))
        except OSError as exc:
            refused = exc.errno or errno.EIO
        finally:
            if refused:
                watch.registered = False
                self._watches.pop(watch.ktoken, None)
        return refused

    def unregister_xenbus_watch(self, watch: _Watch) -> None:
        """``unregister_xenbus_watch``: UNWATCH upstream, pending events cancelled."""
        watch.registered = False
        self._watches.pop(watch.ktoken, None)
        with contextlib.suppress(OSError):  # "Failed to release watch": only a warning
            self.xs_talkv(Op.UNWATCH, join_args(watch.node, watch.ktoken))

    def _xenbus_thread(self, sock: socket.socket) -> None:
        """``xenbus_thread`` / ``process_msg``: replies to their waiters, events to
        ``xenwatch``."""
        decoder = Decoder(PAYLOAD_MAX)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            for packet in decoder.feed(data):
                self._flow.wait()
                if packet.op == Op.WATCH_EVENT:
                    self._xs_watch_msg(packet)
                    continue
                request = self._requests.pop(packet.req_id, None)
                if request is None:
                    continue
                self._request_exit()
                if request.file is None:
                    request.reply = packet
                    request.done.set()
                elif self._drop:
                    self._drop -= 1  # queue_reply failed: -ENOMEM, nothing queued
                    request.file._put_ref(request=True)
                else:
                    request.file.queue_reply(request, packet)
            if decoder.error is not None:
                return

    def _xs_watch_msg(self, packet: Packet) -> None:
        args = split_args(packet.payload)
        if len(args) != 2:
            return
        watch = self._watches.get(args[1])
        if watch is not None:
            with self._events_ready:
                self._events.append((watch, args[0]))
                self._events_ready.notify()

    def _xenwatch_thread(self) -> None:
        """``xenwatch_thread``: one callback at a time, skipping removed watches."""
        while True:
            with self._events_ready:
                while not self._events:
                    self._events_ready.wait()
                item = self._events.popleft()
            if item is None:
                return
            watch, path = item
            if watch.registered:
                watch.callback(watch, path)

    def _watch_fired(self, watch: _Watch, path: bytes) -> None:
        assert watch.file is not None
        watch.file._watch_event(watch, path)

    def _kernel_watch_fired(self, watch: _Watch, path: bytes) -> None:
        self.kernel_events.append(path)

    # -- hooks ----------------------------------------------------------------------------
    def hold_replies(self) -> None:
        """Stall ``xenbus_thread``: nothing from upstream is delivered until released."""
        self._flow.clear()

    def release_replies(self) -> None:
        self._flow.set()

    def drop_replies(self, count: int = 1) -> None:
        """The next ``count`` replies to files are lost (``queue_reply`` out of memory)."""
        self._drop += count

    def refuse_watches(self, error: int, count: int = 1) -> None:
        """The next ``count`` WATCHes are refused with ``error`` (as if by xenstored)."""
        self._refuse.extend([error] * count)

    def suspend(self, timeout: float | None = None) -> None:
        """``xs_suspend``: new requests wait (their ``write()`` blocks); returns once every
        outstanding request is answered (TimeoutError after ``timeout``)."""
        timeout = self.reply_timeout if timeout is None else timeout
        with self._state_lock:
            self._suspend_active = True
        drained = threading.Event()

        def wait_drained() -> None:
            with self._state_lock:
                if self._state_lock.wait_for(lambda: self._state_users == 0, timeout):
                    drained.set()
        if _on_hub_thread():
            import gevent

            gevent.get_hub().threadpool.apply(wait_drained)
        else:
            wait_drained()
        if not drained.is_set():
            raise TimeoutError("xs_suspend: requests still outstanding")

    def resume(self) -> None:
        """``xs_resume`` after a migration: a new upstream connection (the daemon forgot the
        transactions and watches), ``xb_dev_generation_id`` bumped, waiting requests let go,
        every watch registered again (each fires)."""
        old = self._sock
        with self._write_mutex:
            if old is not None:
                with contextlib.suppress(OSError):
                    old.shutdown(socket.SHUT_RDWR)
                old.close()
            self._connect()
        self.generation += 1
        with self._state_lock:
            self._suspend_active = False
            self._state_lock.notify_all()
        for watch in list(self._watches.values()):
            with contextlib.suppress(OSError):
                self.xs_talkv(Op.WATCH, join_args(watch.node, watch.ktoken))

    def migrate(self) -> None:
        """Suspend, move to a "new host" (a new connection), resume."""
        self.suspend()
        self.resume()

    def watch_count(self) -> int:
        """Watches the kernel holds upstream (its own and the files')."""
        return len(self._watches)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for file in list(self._files):
            file._close_fds()
        with self._events_ready:
            self._events.append(None)
            self._events_ready.notify()
        self._flow.set()
        with self._state_lock:
            self._suspend_active = False
            self._state_lock.notify_all()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        for request in list(self._requests.values()):
            request.done.set()

    def __enter__(self) -> XenbusKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
