"""Who holds what on a bus connection, and the cleanup when a holder ends.

A *holder* is the subscriber of a watch (the owner of its mailbox) or the caller of
``transaction()``: a process (its :class:`~xsactor.actors.process.Pid`) or a plain greenlet.

- A **process** gets one exit hook per connection (``add_exit_hook``): when it dies, before its
  EXIT and DOWN go out, its watches are removed (UNWATCH, queued events purged) and its open
  transactions ended (TRANSACTION_END F). Whoever learns of the death may watch again at once
  with the same path and token: the events still in flight for the old watch (those the daemon
  sent before it handled the UNWATCH) are dropped, never delivered to the new one.
- A **gevent Greenlet** is linked: when it ends its watches are removed the same way.
- A **raw greenlet** is noticed when its next event finds it dead.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from gevent import Greenlet
from gevent.event import Event

from ..actors import process
from ..logs import get_logger
from ..protocol import Op
from ..protocol.packets import Packet, join_args
from ..protocol.paths import is_within
from .watches import Watch, events_of


class Bus(Protocol):
    """What :class:`Subscribers` needs of its connection (``bus.connection.Connection``)."""

    subscribers: Subscribers

    def _reap(self, watch: Watch, why: str, *, purge: bool = True) -> None: ...

    def send_nowait(self, op: int, payload: bytes, tx_id: int = 0, *,
                    entry: Any = None) -> bool: ...

__all__ = ["Subscribers"]

log = get_logger(__name__)

_CONNECTIONS: weakref.WeakSet[Bus] = weakref.WeakSet()


class _Unwatching:
    """Pending entry of the UNWATCH of a released watch: until its reply, events for that
    path and token are the old watch's (the daemon sent them before the UNWATCH)."""

    __slots__ = ("key", "subscribers")

    def __init__(self, subscribers: Subscribers, key: tuple[bytes, str]) -> None:
        self.subscribers = subscribers
        self.key = key

    def set(self, packet: Packet) -> None:
        self.subscribers._unwatched(self.key)

    def set_exception(self, exc: BaseException) -> None:
        self.subscribers._unwatched(self.key)


class Subscribers:
    """The holders of one connection's watches and transactions (see the module docstring)."""

    def __init__(self, conn: Bus) -> None:
        self.conn = conn
        self.watches: dict[Any, dict[Watch, None]] = {}  # holder -> its watches
        self.transactions: dict[Any, set[int]] = {}  # process -> its open tx_ids
        self._tx_holder: dict[int, Any] = {}
        self.open_tx: set[int] = set()  # every open tx_id, whoever opened it
        self._hooks: dict[process.Pid, Any] = {}
        self._linked: weakref.WeakSet[Any] = weakref.WeakSet()
        self.unwatching: dict[bytes, dict[str, int]] = {}  # wire token -> path -> pending
        self._unwatched_events: dict[tuple[bytes, str], Event] = {}
        _CONNECTIONS.add(conn)

    # -- holders ---------------------------------------------------------------------------
    def _hold(self, holder: Any) -> None:
        """Make sure ``holder``'s end releases what it holds here."""
        if isinstance(holder, process.Pid):
            if holder not in self._hooks:
                self._hooks[holder] = process.add_exit_hook(self._process_exited, holder)
        elif isinstance(holder, Greenlet) and holder not in self._linked:
            self._linked.add(holder)
            holder.rawlink(self._greenlet_exited)

    def _process_exited(self, pid: process.Pid, reason: Any) -> None:
        """Exit hook (runs before the process's EXIT and DOWN go out)."""
        self._hooks.pop(pid, None)
        self.release(pid, f"process exited: {reason!r}")

    def _greenlet_exited(self, greenlet: Any) -> None:
        self._linked.discard(greenlet)
        self.release(greenlet, "subscriber exited")

    def release(self, holder: Any, why: str) -> None:
        """``holder`` is gone: remove its watches and end its transactions, on the daemon too."""
        released = list(self.watches.get(holder, ()))
        for watch in released:
            self.conn._reap(watch, why, purge=False)
        boxes: dict[Any, set[Any]] = {}  # one purge per mailbox, not one per watch
        for watch in released:
            boxes.setdefault(watch.mailbox, set()).add(watch.token)
        is_event = events_of(None)
        for box, tokens in boxes.items():
            box.purge(lambda m, tokens=tokens: is_event(m) and m[2] in tokens)
        tx_ids = self.transactions.pop(holder, ())
        for tx_id in tx_ids:
            del self._tx_holder[tx_id]
            self.open_tx.discard(tx_id)
            log.debug("ending the transaction of a dead process", tx_id=tx_id, why=why)
            self.conn.send_nowait(Op.TRANSACTION_END, b"F\0", tx_id)

    # -- watches ---------------------------------------------------------------------------
    def holder_of(self, owner: Any) -> Any:
        """The holder for a mailbox's owner greenlet: its pid if it runs a process."""
        if owner is None:
            return None
        pid = process.pid_of(owner)
        return owner if pid is None else pid

    def watch_added(self, watch: Watch) -> None:
        if watch.holder is None:
            return
        self.watches.setdefault(watch.holder, {})[watch] = None
        self._hold(watch.holder)

    def watch_dropped(self, watch: Watch) -> None:
        held = self.watches.get(watch.holder)
        if held is not None:
            held.pop(watch, None)
            if not held:
                del self.watches[watch.holder]
                self._unhold(watch.holder)

    def _unhold(self, holder: Any) -> None:
        if isinstance(holder, process.Pid) and holder not in self.transactions:
            hook = self._hooks.pop(holder, None)
            if hook is not None:
                process.remove_exit_hook(hook)

    def unwatch(self, watch: Watch) -> None:
        """Send the UNWATCH of a released watch; until its reply, its events are dropped."""
        key = (watch.wire_token, watch.path)
        if self.conn.send_nowait(Op.UNWATCH, join_args(watch.path, watch.wire_token),
                                 entry=_Unwatching(self, key)):
            paths = self.unwatching.setdefault(watch.wire_token, {})
            paths[watch.path] = paths.get(watch.path, 0) + 1

    def _unwatched(self, key: tuple[bytes, str]) -> None:
        paths = self.unwatching.get(key[0])
        if paths is None or key[1] not in paths:
            return
        paths[key[1]] -= 1
        if not paths[key[1]]:
            del paths[key[1]]
            if not paths:
                del self.unwatching[key[0]]
            done = self._unwatched_events.pop(key, None)
            if done is not None:
                done.set()

    def wait_unwatched(self, wire_token: bytes, path: str, timeout: float | None) -> None:
        """Before a WATCH of a released watch's path and token: wait for its UNWATCH's reply.

        4.17 does not queue an event identical to one still unsent on the connection, so a
        WATCH pipelined behind the UNWATCH can get no first event of its own: the old watch's
        event, which the bus drops as stale, stood for both. Once the UNWATCH is answered, that
        event has left the daemon and the new WATCH gets its own.
        """
        if not self.unwatch_pending(wire_token, path):
            return
        key = (wire_token, path)
        done = self._unwatched_events.get(key)
        if done is None:
            done = self._unwatched_events[key] = Event()
        done.wait(timeout)

    def unwatch_pending(self, wire_token: bytes, path: str) -> bool:
        """Whether the UNWATCH of this watch (path as given) is sent and not answered yet."""
        return path in self.unwatching.get(wire_token, ())

    def stale(self, wire_token: bytes, path: str) -> bool:
        """Whether an event is for a released watch whose UNWATCH is not answered yet."""
        paths = self.unwatching.get(wire_token)
        return paths is not None and any(is_within(path, watched) for watched in paths)

    # -- transactions ----------------------------------------------------------------------
    def transaction_started(self, tx_id: int) -> None:
        """``tx_id`` was opened; if by a process, end it when the process dies first."""
        self.open_tx.add(tx_id)
        pid = process.pid_of()
        if pid is None:
            return
        self.transactions.setdefault(pid, set()).add(tx_id)
        self._tx_holder[tx_id] = pid
        self._hold(pid)

    def transaction_ended(self, tx_id: int) -> None:
        self.open_tx.discard(tx_id)
        holder = self._tx_holder.pop(tx_id, None)
        if holder is None:
            return
        held = self.transactions[holder]
        held.discard(tx_id)
        if not held:
            del self.transactions[holder]
            if holder not in self.watches:
                self._unhold(holder)

    def reconnected(self) -> None:
        """A new connection: the old one's transactions and pending UNWATCHes are gone."""
        self.open_tx.clear()
        for done in self._unwatched_events.values():
            done.set()
        self._unwatched_events.clear()
        for holder in list(self.transactions):
            for tx_id in self.transactions.pop(holder):
                del self._tx_holder[tx_id]
            if holder not in self.watches:
                self._unhold(holder)
        self.unwatching.clear()


def _watches_of(pid: process.Pid) -> list[tuple[str, Any]] | None:
    """``process_info``'s ``watches``: (path, token) of every watch the process holds."""
    held = [(watch.path, watch.token) for conn in list(_CONNECTIONS)
            for watch in conn.subscribers.watches.get(pid, ())]
    return held or None


def _transactions_of(pid: process.Pid) -> int | None:
    count = sum(len(conn.subscribers.transactions.get(pid, ())) for conn in list(_CONNECTIONS))
    return count or None


process.add_info_provider("watches", _watches_of)
process.add_info_provider("transactions", _transactions_of)
