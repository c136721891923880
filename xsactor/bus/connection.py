"""The bus: one connection to xenstored, owned by one greenlet.

- The **owner** greenlet reads big chunks, decodes every whole packet and dispatches it: a
  reply completes the pending request with its req_id, a watch event goes by token into the
  subscriber's mailbox (``put`` never blocks). It never writes and never dies of a bad
  packet: an unknown req_id or token is logged and dropped.
- **Writing**: requests are queued, and a hub callback at the end of the current loop
  iteration writes the whole queue with one non-blocking write. Only when the fd is full does
  the **writer** greenlet take the rest and wait for writability; nobody else ever waits to
  write, the owner least of all. On the xenbus device the queue goes to the transport's
  writer thread instead, one message per write(), WATCH/UNWATCH only when nothing earlier is
  in flight (:mod:`.device`).
- Requests come from any number of greenlets at once (pipelined): each gets a unique req_id
  and waits on its own :class:`gevent.event.AsyncResult`.
- When the connection is lost every pending request fails at once with
  :class:`ConnectionLost`. The owner reconnects with exponential backoff and jitter,
  re-registers every live watch (the daemon's first event tells each subscriber to re-read)
  and bumps :attr:`Connection.generation`, which ends the transactions of the old connection.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import random
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent import Greenlet, GreenletExit, Timeout
from gevent.event import AsyncResult, Event

from ..actors.mailbox import Mailbox
from ..logs import LogSummary, get_logger
from ..protocol import Decoder, Op
from ..protocol.errors import E2BIG, ConnectionLost, ProtocolError, error_from_payload
from ..protocol.ops import HEADER, op_name
from ..protocol.packets import Packet, encode, join_args, split_args
from ..protocol.paths import is_within
from .device import DeviceWrites
from .errors import BusClosed, RequestTimeout
from .subscribers import Subscribers
from .transports import Connector, DeviceTransport, Transport, request_error
from .watches import Watch, events_of

__all__ = ["Connection", "State", "Watch", "events_of"]

log = get_logger(__name__)

_ERROR = int(Op.ERROR)
_WATCH_EVENT = int(Op.WATCH_EVENT)
_DEFAULT: Any = object()
_names = itertools.count(1)


class State(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


StateListener = Callable[["Connection", State], None]
"""Called as ``listener(conn, state)`` on every state change (in the bus greenlet)."""


class _Ignore:
    """Pending entry for a request nobody waits for (its reply is dropped)."""

    __slots__ = ("op",)

    def __init__(self, op: int) -> None:
        self.op = op

    def set(self, packet: Packet) -> None:
        if packet.op == _ERROR:
            log.debug("background request failed", op=op_name(self.op),
                      error=packet.payload.rstrip(b"\0").decode("ascii", "replace"))

    def set_exception(self, exc: BaseException) -> None:
        pass


class _GivenUp:
    """Pending entry for a WATCH or TRANSACTION_START whose caller gave up (a timeout, a kill):
    when its reply comes, what it opened on the daemon is closed again."""

    __slots__ = ("conn", "op", "payload")

    def __init__(self, conn: Connection, op: int, payload: bytes) -> None:
        self.conn = conn
        self.op = op
        self.payload = payload

    def set(self, packet: Packet) -> None:
        self.conn._late_replies.note(op=op_name(self.op), req_id=packet.req_id)
        if packet.op == self.op:
            self.conn._undo(self.op, self.payload, packet.payload)

    def set_exception(self, exc: BaseException) -> None:
        pass  # the connection is gone, and with it what the request opened


_UNDONE = frozenset({int(Op.WATCH), int(Op.TRANSACTION_START)})
"""Requests whose success opens something on the daemon: the bus closes it again when the
caller gave up before the reply."""


class _WatchRestore:
    """Pending entry for a watch re-registered after a reconnect."""

    __slots__ = ("conn", "watch")

    def __init__(self, conn: Connection, watch: Watch) -> None:
        self.conn = conn
        self.watch = watch

    def set(self, packet: Packet) -> None:
        if packet.op != _ERROR:
            return
        error = error_from_payload(packet.payload, path=self.watch.path)
        self.conn._log.warning("watch not restored after reconnect", path=self.watch.path,
                               token=self.watch.token, error=error.name)
        self.conn._drop_watch(self.watch)
        self.watch.mailbox.put(("watch_error", self.watch.path, self.watch.token, error))

    def set_exception(self, exc: BaseException) -> None:
        pass  # lost again: the next connection re-registers it


class Connection:
    """One connection to xenstored (see the module docstring).

    ``connector`` opens a fresh :class:`Transport`; it is called again for every reconnect
    (unless ``reconnect=False``). Call :meth:`open` once before use.
    """

    def __init__(self, connector: Connector, *, name: str | None = None,
                 reconnect: bool = True, default_timeout: float | None = None,
                 backoff_initial: float = 0.05, backoff_max: float = 5.0,
                 max_queued_events: int = 10_000) -> None:
        self._connector = connector
        self.name = name or f"xs{next(_names)}"
        self.reconnect = reconnect
        self.default_timeout = default_timeout
        self._timeout = default_timeout  # on the device never None: see _begin
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._log = log.bind(conn=self.name)

        self._state = State.CONNECTING
        self._state_changed = Event()
        self._state_listeners: list[StateListener] = []
        self._state_mailboxes: weakref.WeakSet[Mailbox] = weakref.WeakSet()

        self.generation = 0
        """Bumped on every (re)connect; transactions of an older generation are dead."""
        self.transport: Transport | None = None
        self.kind: str | None = None
        self.max_payload = 4096
        self._next_id = 1
        self._pending: dict[int, Any] = {}
        self._expiry: deque[tuple[float, int]] = deque()
        self._sweeper: Any = None
        self._outq: list[bytes] = []
        self._flush_pending = False
        self._writer_active = False
        self._backlog: list[Any] = []
        self._wake = Event()
        self._writer: Greenlet | None = None
        self._device: DeviceWrites | None = None
        self._loop: Any = None
        self._owner: Greenlet | None = None
        self._closing = False
        self._loss_reason = ""

        self._watches: dict[bytes, list[Watch]] = {}
        self._watch_keys: dict[tuple[str, bytes], Watch] = {}
        self.subscribers = Subscribers(self)
        self._late_replies = LogSummary(self._log, "late or unknown replies dropped")
        self._overflows = LogSummary(self._log, "subscriber not keeping up: events merged")
        self.max_queued_events = max_queued_events
        """At most this many distinct watch events queued per mailbox; beyond it (or the
        mailbox's bound) each watch queues one event on its own path instead."""

    # -- lifetime ------------------------------------------------------------------------
    def open(self) -> Connection:
        """Connect (raising the connector's OSError if that fails) and start the owner."""
        if self._owner is not None:
            raise RuntimeError("connection already opened")
        transport = self._connector()
        self._loop = gevent.get_hub().loop
        timeout = self.default_timeout or transport.request_timeout
        period = min(max((timeout or 1.0) / 8, 0.001), 1.0)
        self._sweeper = self._loop.timer(period, period)
        self._begin(transport)
        self._owner = gevent.spawn(self._run, transport)
        self._owner.name = f"xsactor-bus-{self.name}"
        return self

    def close(self) -> None:
        """Close for good: pending requests fail with :class:`BusClosed`; no reconnect."""
        if self._closing:
            return
        self._closing = True
        owner, writer = self._owner, self._writer
        if owner is not None and not owner.dead and owner is not gevent.getcurrent():
            owner.kill(block=True)
        else:
            self._end(self.transport, "closed")
        if writer is not None and writer is not gevent.getcurrent():
            writer.kill(block=True)  # _end only asked it to stop: nothing outlives close()
        if self._state is not State.CLOSED:
            self._set_state(State.CLOSED)

    @property
    def closed(self) -> bool:
        return self._closing

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- states --------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    def _set_state(self, state: State) -> None:
        if state is self._state:
            return
        self._state = state
        changed, self._state_changed = self._state_changed, Event()
        changed.set()
        for listener in list(self._state_listeners):
            try:
                listener(self, state)
            except Exception:
                self._log.exception("state listener failed", state=state.value)
        for box in list(self._state_mailboxes):
            box.put(("bus_state", self.name, state))

    def wait_state(self, *states: State, timeout: float | None = None) -> bool:
        """Wait until the state is one of ``states``; False on timeout."""
        wanted = states or (State.CONNECTED,)
        with Timeout(timeout, False):
            while self._state not in wanted:
                self._state_changed.wait()
            return True
        return self._state in wanted

    def subscribe_state(self, listener: StateListener | Mailbox) -> None:
        """Call ``listener(conn, state)`` (it must not block) or, for a mailbox, put
        ``("bus_state", name, state)`` into it, on every state change."""
        if isinstance(listener, Mailbox):
            self._state_mailboxes.add(listener)
        else:
            self._state_listeners.append(listener)

    def unsubscribe_state(self, listener: StateListener | Mailbox) -> None:
        if isinstance(listener, Mailbox):
            self._state_mailboxes.discard(listener)
        elif listener in self._state_listeners:
            self._state_listeners.remove(listener)

    # -- requests ------------------------------------------------------------------------
    def _not_connected(self) -> ConnectionLost:
        if self._closing:
            return BusClosed(f"{self.name}: connection closed")
        return ConnectionLost(f"{self.name}: not connected ({self._state.value})")

    def _enqueue(self, op: int, payload: bytes, tx_id: int, entry: Any) -> int:
        req_id = self._next_id
        self._next_id = req_id + 1 if req_id < 0xFFFFFFFF else 1
        self._pending[req_id] = entry
        self._outq.append(encode(op, req_id, tx_id, payload))
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.run_callback(self._flush)
        return req_id

    def call(self, op: int, payload: bytes, tx_id: int = 0, *, timeout: Any = _DEFAULT,
             path: str | None = None) -> bytes:
        """Send one request and wait for its reply payload.

        Raises the typed :class:`XenStoreError` of an ERROR reply, :class:`E2BIG` (before
        sending) for a payload the transport cannot carry, :class:`ConnectionLost` when not
        connected or when the connection drops, :class:`RequestTimeout` after ``timeout``.
        """
        if self.transport is None:
            raise self._not_connected()
        if len(payload) > self.max_payload:
            raise E2BIG(f"{op_name(op)} payload of {len(payload)} bytes is over the "
                        f"{self.max_payload}-byte limit of the {self.kind}", path=path)
        result = AsyncResult()
        generation = self.generation
        req_id = self._enqueue(op, payload, tx_id, result)
        if timeout is _DEFAULT:
            if self._timeout is not None:
                self._add_deadline(req_id)
                try:
                    reply = result.get()
                except BaseException:
                    self._give_up(req_id, op, payload, result, generation)
                    raise
                expiry, pending = self._expiry, self._pending
                while expiry and expiry[0][1] not in pending:
                    expiry.popleft()
            else:
                reply = result.get()
        else:
            timeout = self.timeout_of(timeout)
            timer = None if timeout is None else Timeout.start_new(timeout)
            try:
                reply = result.get()
            except BaseException as exc:
                self._give_up(req_id, op, payload, result, generation)
                if timer is not None and exc is timer:
                    raise RequestTimeout(
                        f"{self.name}: no reply to {op_name(op)} within {timeout} s") from None
                raise
            finally:
                if timer is not None:
                    timer.close()
        reply_op = reply.op
        if reply_op == op:
            return reply.payload
        if reply_op == _ERROR:
            raise error_from_payload(reply.payload, path=path)
        raise ProtocolError(f"{op_name(op)} answered with {op_name(reply_op)}")

    def timeout_of(self, timeout: Any) -> float | None:
        """A request's timeout in seconds: ``_DEFAULT`` is the connection's (None: none), and
        so is None on the device (no request there waits forever: see :meth:`_begin`)."""
        if timeout is _DEFAULT or (timeout is None and self._device is not None):
            return self._timeout
        return timeout

    def _add_deadline(self, req_id: int) -> None:
        """Give request ``req_id`` the default timeout: a deadline in a FIFO that one timer
        sweeps (:meth:`_sweep`), far cheaper than a timer per request."""
        assert self._timeout is not None
        self._expiry.append((time.monotonic() + self._timeout, req_id))
        if not self._sweeper.active:
            self._sweeper.start(self._sweep)

    def _forget(self, req_id: int) -> None:
        """Drop a request nobody waits for any more."""
        if self._pending.pop(req_id, None) is not None and self._device is not None:
            self._device.release()

    def _give_up(self, req_id: int, op: int, payload: bytes, result: AsyncResult,
                 generation: int) -> None:
        """The caller of request ``req_id`` stopped waiting (timeout, kill): forget it, but
        close again on the daemon whatever its reply opens (or opened already)."""
        replied = result.ready() and result.successful()
        if op in _UNDONE and not replied and generation == self.generation \
                and self.transport is not None:
            # Still out on the daemon: undo at its reply. Replacing the entry keeps its place
            # in the pending order, which the device's one-WATCH-alone rule reads.
            self._pending[req_id] = _GivenUp(self, op, payload)
            return
        self._forget(req_id)
        if op in _UNDONE and replied and result.value.op == op:
            # replied, but the caller never saw it
            self._undo(op, payload, result.value.payload)

    def _undo(self, op: int, payload: bytes, reply: bytes) -> None:
        """Close what a successful ``op`` opened: end the transaction, remove the watch."""
        if op == Op.TRANSACTION_START:
            tx_id = int(reply.rstrip(b"\0") or 0)
            self._log.debug("ending a transaction its caller gave up on", tx_id=tx_id)
            self.send_nowait(Op.TRANSACTION_END, b"F\0", tx_id)
        elif op == Op.WATCH:
            path, token = split_args(payload)[:2]
            if self.subscribers.unwatch_pending(token, path.decode("utf-8", "surrogateescape")):
                return  # its dead subscriber's exit hook has sent the UNWATCH already
            self._log.debug("removing a watch its caller gave up on")
            self.send_nowait(Op.UNWATCH, payload)

    def flush_log_summaries(self) -> None:
        """Log now the warnings a rate limit holds back (late replies, overflows)."""
        self._late_replies.flush()
        self._overflows.flush()

    def _sweep(self) -> None:
        """Timer callback (in the hub): fail the requests past the default timeout."""
        now = time.monotonic()
        expiry, pending = self._expiry, self._pending
        expired = False
        while expiry:
            deadline, req_id = expiry[0]
            if req_id in pending:
                if deadline > now:
                    break
                expired = True
                pending.pop(req_id).set_exception(RequestTimeout(
                    f"{self.name}: no reply within {self._timeout} s"))
            expiry.popleft()
        else:
            self._sweeper.stop()
        if expired and self._device is not None:
            self._device.release()

    def send_nowait(self, op: int, payload: bytes, tx_id: int = 0, *,
                    entry: Any = None) -> bool:
        """Queue a request whose reply is ignored, or given to ``entry.set(packet)`` (safe
        from the hub); False if not sent."""
        if self.transport is None or len(payload) > self.max_payload:
            return False
        req_id = self._enqueue(op, payload, tx_id, _Ignore(op) if entry is None else entry)
        if self._timeout is not None:
            self._add_deadline(req_id)
        return True

    # -- watches -------------------------------------------------------------------------
    def add_watch(self, watch: Watch) -> None:
        """Route events for ``watch`` from now on (before WATCH is sent: the first event
        may come before the reply on the device)."""
        self._watch_keys[watch.key] = watch
        self._watches.setdefault(watch.wire_token, []).append(watch)
        watch.generation = self.generation
        watch.holder = self.subscribers.holder_of(watch.mailbox.owner)
        self.subscribers.watch_added(watch)

    def find_watch(self, key: tuple[str, bytes]) -> Watch | None:
        return self._watch_keys.get(key)

    def watches(self) -> list[Watch]:
        """The live watches (re-registered on every reconnect)."""
        return list(self._watch_keys.values())

    def _drop_watch(self, watch: Watch) -> bool:
        """Stop routing ``watch``'s events; False if it was not registered."""
        if self._watch_keys.get(watch.key) is not watch:
            return False
        del self._watch_keys[watch.key]
        group = self._watches.get(watch.wire_token)
        if group is not None:
            group.remove(watch)
            if not group:
                del self._watches[watch.wire_token]
        self.subscribers.watch_dropped(watch)
        return True

    def remove_watch(self, watch: Watch) -> bool:
        """Forget ``watch`` and purge its queued events from the subscriber's mailbox."""
        if not self._drop_watch(watch):
            return False
        same_box = any(w.mailbox is watch.mailbox for w in self._watches.get(watch.wire_token, ()))
        if not same_box:
            watch.mailbox.purge(events_of(watch.token))
        return True

    def _reap(self, watch: Watch, why: str, *, purge: bool = True) -> None:
        """The subscriber is gone: forget the watch, purge its queued events (unless the
        caller does) and UNWATCH it on the daemon."""
        if self.remove_watch(watch) if purge else self._drop_watch(watch):
            self._log.debug("watch removed", path=watch.path, token=watch.token, why=why)
            self.subscribers.unwatch(watch)

    def hold_transaction(self, tx_id: int) -> None:
        """The caller opened ``tx_id``: if it is a process, its death ends the transaction."""
        self.subscribers.transaction_started(tx_id)

    def release_transaction(self, tx_id: int) -> None:
        """``tx_id`` was committed or rolled back."""
        self.subscribers.transaction_ended(tx_id)

    def is_open_transaction(self, tx_id: int) -> bool:
        """Whether this connection opened ``tx_id`` and has not ended it."""
        return tx_id in self.subscribers.open_tx

    def open_transactions(self) -> list[int]:
        """The transactions this connection opened and has not ended yet."""
        return list(self.subscribers.open_tx)

    def held_transactions(self) -> int:
        """How many transactions of live processes the bus would end at their death."""
        return sum(len(held) for held in self.subscribers.transactions.values())

    def _route_event(self, packet: Packet) -> None:
        args = split_args(packet.payload)
        if len(args) < 2:
            self._log.warning("malformed watch event dropped", payload=packet.payload[:64])
            return
        wire_token = args[1]
        group = self._watches.get(wire_token)
        if not group:
            self._log.debug("event for unknown token dropped", token=wire_token)
            return
        path = args[0].decode("utf-8", "surrogateescape")
        if self.subscribers.unwatching and self.subscribers.stale(wire_token, path):
            self._log.debug("event of a released watch dropped", path=path, token=wire_token)
            return
        if len(group) > 1:
            targets = [w for w in group if is_within(path, w.path)]
            if not targets:
                self._log.debug("event matches no watch of its token", path=path,
                                token=wire_token)
                return
        else:
            targets = group
        for watch in targets:
            box = watch.mailbox
            if not box.owner_alive:
                self._reap(watch, "subscriber gone")
                continue
            event = ("watch_event", path, watch.token)
            if box.coalescing < self.max_queued_events:
                dropped = box.dropped
                if box.put(event, coalesce=True) or box.dropped == dropped:
                    continue  # queued, or coalesced into an equal queued event
            # Overflow: the subscriber is not keeping up. One event on the watched path
            # itself stands for every change below it (at most one per watch is queued).
            if box.put(("watch_event", watch.path, watch.token), coalesce=True, system=True):
                self._overflows.note(path=watch.path, token=watch.token)

    # -- the owner and the writer --------------------------------------------------------
    def _begin(self, transport: Transport) -> None:
        """Install a fresh transport: new generation, re-register watches, start the writer."""
        self.transport = transport
        self.kind = transport.kind
        self.max_payload = transport.max_payload
        self.generation += 1
        self._loss_reason = ""
        self._outq = []
        self._backlog = []
        self._writer_active = False
        self._wake = wake = Event()
        self._timeout = self.default_timeout or transport.request_timeout
        if isinstance(transport, DeviceTransport):
            self._device = DeviceWrites(transport, self._pending)
            transport.start_writer(functools.partial(self._device_write_failed, transport))
            self._writer = None
        else:
            self._device = None
            self._writer = gevent.spawn(self._write_loop, transport, wake)
        self.subscribers.reconnected()
        for watch in list(self._watch_keys.values()):
            if not watch.mailbox.owner_alive:
                self._drop_watch(watch)
                continue
            watch.generation = self.generation
            req_id = self._enqueue(Op.WATCH, join_args(watch.path, watch.wire_token), 0,
                                   _WatchRestore(self, watch))
            if self._timeout is not None:
                self._add_deadline(req_id)
        self._log.debug("connected", transport=transport.name, kind=transport.kind,
                        generation=self.generation)
        self._set_state(State.CONNECTED)

    def _end(self, transport: Transport | None, reason: str) -> None:
        """Lose the transport: every pending request fails now with ConnectionLost."""
        if transport is not None and self.transport is transport:
            self.transport = None
        writer, self._writer = self._writer, None
        self._device = None
        if writer is not None and writer is not gevent.getcurrent():
            writer.kill(block=False)
        if transport is not None:
            with contextlib.suppress(OSError):
                transport.close()
        pending, self._pending = self._pending, {}
        self._expiry.clear()
        self._outq = []
        self._backlog = []
        self._writer_active = False
        cls = BusClosed if self._closing else ConnectionLost
        for entry in pending.values():
            entry.set_exception(cls(f"{self.name}: {reason}"))
        if self._closing:
            self._log.debug("connection closed", unanswered_requests=len(pending))
        elif pending or reason != "closed":
            self._log.info("connection lost", reason=reason, failed_requests=len(pending))

    def _run(self, transport: Transport | None) -> None:
        try:
            delay = self.backoff_initial
            while not self._closing:
                if transport is None:
                    try:
                        transport = self._connector()
                    except Exception as exc:
                        pause = delay * random.uniform(0.5, 1.0)
                        self._log.debug("reconnect failed", error=str(exc), retry_in=pause)
                        gevent.sleep(pause)
                        delay = min(delay * 2, self.backoff_max)
                        continue
                    delay = self.backoff_initial
                    self._begin(transport)
                reason = self._serve(transport)
                self._end(transport, reason)
                transport = None
                if not self.reconnect:
                    break
                if not self._closing:
                    self._set_state(State.RECONNECTING)
        except GreenletExit:
            pass
        finally:
            self._closing = True
            self._end(self.transport, "closed")
            self._sweeper.stop()
            self._late_replies.flush()
            self._overflows.flush()
            self._set_state(State.CLOSED)

    def _serve(self, transport: Transport) -> str:
        """Read and dispatch until the transport fails; returns why."""
        decoder = Decoder(transport.max_event)
        feed = decoder.feed
        recv = transport.recv
        pending = self._pending
        route = self._route_event
        device = self._device
        try:
            while True:
                data = recv()
                if not data:
                    return self._loss_reason or "closed by xenstored"
                for packet in feed(data):
                    if packet.op == _WATCH_EVENT:
                        try:
                            route(packet)
                        except Exception:
                            self._log.exception("watch event dispatch failed")
                        continue
                    entry = pending.pop(packet.req_id, None)
                    if entry is None:
                        self._late_replies.note(req_id=packet.req_id, tx_id=packet.tx_id,
                                                op=op_name(packet.op))
                    else:
                        entry.set(packet)
                if device is not None and device.held:
                    device.release()
                if decoder.error is not None:
                    return f"protocol error: {decoder.error}"
        except OSError as exc:
            return self._loss_reason or f"transport error: {exc}"
        except Exception as exc:  # a bug here must not end the bus: reconnect instead
            self._log.exception("bus reader failed")
            return f"internal error: {exc!r}"

    # Writing: requests are queued; a hub callback at the end of the current loop iteration
    # writes the whole queue with one non-blocking write. If the fd is full, the writer
    # greenlet takes the rest and waits for it, and later flushes hand it the queue until it
    # has caught up. No one else ever waits for writability. The device's queue goes to its
    # writer thread (DeviceWrites).
    def _flush(self) -> None:
        """Hub callback: write the queue now, or hand it to the writer. Never raises."""
        self._flush_pending = False
        transport = self.transport
        if transport is None or not self._outq:
            return
        if self._writer_active:
            self._wake.set()
            return
        batch, self._outq = self._outq, []
        try:
            if self._device is not None:
                self._device.submit(batch)
            else:
                data = batch[0] if len(batch) == 1 else b"".join(batch)
                written = transport.try_send(data)
                if written < len(data):
                    self._hand_to_writer([memoryview(data)[written:]])
        except Exception as exc:
            self._write_failed(transport, exc)

    def _hand_to_writer(self, items: list[Any]) -> None:
        self._backlog = items
        self._writer_active = True
        self._wake.set()

    def _write_loop(self, transport: Transport, wake: Event) -> None:
        try:
            while True:
                wake.wait()
                wake.clear()
                while self._writer_active and self.transport is transport:
                    items, self._backlog = self._backlog, []
                    for item in items:
                        transport.send(item)
                    if self._outq:
                        batch, self._outq = self._outq, []
                        self._backlog = [b"".join(batch)]
                    else:
                        self._writer_active = False
                if self.transport is not transport:
                    return
        except Exception as exc:
            self._write_failed(transport, exc)

    def _write_failed(self, transport: Transport, exc: BaseException) -> None:
        if self.transport is transport:
            self._loss_reason = f"write failed: {exc}"
            transport.close()  # the owner's recv fails and handles the loss

    def _device_write_failed(self, transport: Transport, message: bytes,
                             exc: OSError) -> None:
        """A write() to the device failed (in the hub): a refused request fails alone (the
        kernel fails the write with the errno, no reply follows); anything else breaks the
        transport."""
        if self.transport is not transport:
            return
        error = request_error(exc)
        if error is None:
            self._write_failed(transport, exc)
            return
        _op, req_id, tx_id, _len = HEADER.unpack_from(message)
        self._log.debug("device refused a request", req_id=req_id, tx_id=tx_id,
                        error=error.name)
        entry = self._pending.pop(req_id, None)
        if entry is not None:
            entry.set(Packet(_ERROR, req_id, tx_id, error.wire))
        if self._device is not None:
            self._device.release()

    def __repr__(self) -> str:
        return f"<Connection {self.name} {self._state.value} generation={self.generation}>"

