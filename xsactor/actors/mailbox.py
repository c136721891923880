"""Erlang-style mailboxes for greenlets: ``put`` never blocks, ``receive`` is selective.

Every greenlet can have one mailbox (:func:`mailbox_of` makes it on first use). The bus puts
watch events into the mailbox of the greenlet that registered the watch; the actor layer builds
processes and supervisors on the same mailboxes.

Costs: ``put`` is O(1); ``receive()`` without ``match`` is O(1); a selective ``receive`` looks
at each queued message at most once (while it waits, only the messages that arrive are looked
at), so one selective receive is O(n) at worst, never n².
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from itertools import islice
from typing import Any, Literal, overload

import gevent
from gevent import getcurrent
from gevent.hub import get_hub

__all__ = ["Mailbox", "ReceiveTimeout", "mailbox_of"]

Match = Callable[[Any], bool]


class ReceiveTimeout(TimeoutError):
    """No matching message arrived within ``receive``'s timeout."""


class _Marked:
    """A queued message that is a system message (outside the bound) or coalesced (the one
    queued copy that absorbs equal coalescing puts)."""

    __slots__ = ("coalesced", "message", "system")

    def __init__(self, message: Any, system: bool, coalesced: bool) -> None:
        self.message = message
        self.system = system
        self.coalesced = coalesced


def _unwrap(item: Any) -> Any:
    return item.message if type(item) is _Marked else item


class Mailbox:
    """A message queue owned by one greenlet.

    - :meth:`put` appends and never blocks (any greenlet, or the hub, may call it).
    - :meth:`receive` takes the oldest message, or with ``match`` the oldest message for which
      ``match(msg)`` is true, leaving the others queued in order (selective receive).
    - ``put(msg, coalesce=True)`` drops ``msg`` when an equal message is still queued (the bus
      uses it for watch events, which mean "something changed", not a count).
    - ``bound``: at most this many ordinary messages are queued. The overflow policy is
      *drop the newest*: a ``put`` that would go over the bound queues nothing, returns False
      and counts the message in :attr:`dropped` (the queued, older messages are kept: the
      receiver sees them first). ``put(msg, system=True)`` (EXIT, DOWN, call replies) is never
      dropped nor counted against the bound. An equal queued message absorbs a coalescing put
      even when the mailbox is full.
    """

    __slots__ = ("__weakref__", "_coalescable", "_messages", "_owner", "_removals", "_system",
                 "_waiters", "_wake_pending", "bound", "dropped")

    def __init__(self, owner: Any = None, *, bound: int | None = None) -> None:
        if bound is not None and bound < 0:
            raise ValueError("a mailbox bound is >= 0 (or None)")
        self._messages: deque[Any] = deque()
        self._removals = 0  # bumped whenever a message leaves: waiting scans start again
        self._system = 0
        self._coalescable: set[Hashable] = set()
        # Receivers blocked in receive(). A put schedules one hub callback that switches back
        # to them (gevent's Waiter pattern: far cheaper than an Event's link bookkeeping).
        self._waiters: list[Any] = []
        self._wake_pending = False
        self._owner = weakref.ref(owner) if owner is not None else None
        self.bound = bound
        """At most this many ordinary (non-system) messages queued; None: no bound."""
        self.dropped = 0
        """How many ordinary messages the bound has dropped."""

    # -- owner ---------------------------------------------------------------------------
    @property
    def owner(self) -> Any:
        """The greenlet this mailbox belongs to (None if unowned or collected)."""
        return self._owner() if self._owner is not None else None

    @property
    def owner_alive(self) -> bool:
        """False once the owner greenlet has finished (or been garbage collected)."""
        if self._owner is None:
            return True
        owner = self._owner()
        return owner is not None and not owner.dead

    # -- sending -------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        """Whether an ordinary ``put`` would be dropped now."""
        return self.bound is not None and len(self._messages) - self._system >= self.bound

    @property
    def coalescing(self) -> int:
        """How many coalescable messages (watch events) are queued."""
        return len(self._coalescable)

    def put(self, message: Any, *, coalesce: bool = False, system: bool = False) -> bool:
        """Queue ``message``; False when it was not queued: coalesced into an equal queued
        message, or dropped by the bound (then :attr:`dropped` grew)."""
        if coalesce and message in self._coalescable:
            return False
        if system:
            self._system += 1
        elif self.bound is not None and len(self._messages) - self._system >= self.bound:
            self.dropped += 1
            return False
        if coalesce:
            self._coalescable.add(message)
        self._messages.append(_Marked(message, system, coalesce) if system or coalesce
                              else message)
        if self._waiters and not self._wake_pending:
            self._wake_pending = True
            get_hub().loop.run_callback(self._wake)
        return True

    def _wake(self) -> None:
        """Hub callback: resume the receivers still waiting (each removes itself)."""
        self._wake_pending = False
        waiters = self._waiters
        for waiter in list(waiters):
            if waiter in waiters:
                waiter.switch()

    # -- receiving -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._messages)

    def _taken(self, item: Any) -> Any:
        """Account for ``item`` leaving the queue; return its message."""
        if type(item) is not _Marked:
            return item
        if item.system:
            self._system -= 1
        if item.coalesced:
            self._coalescable.discard(item.message)
        return item.message

    def _scan(self, match: Match, start: int) -> int:
        """The index of the first message from ``start`` on that ``match`` accepts, or -1.

        Iterates (O(1) a step): the first ``start`` messages are skipped from the far end
        when that is shorter, so a resumed scan costs only the new messages."""
        messages = self._messages
        count = len(messages) - start
        if count <= 0:
            return -1
        if start > count:
            tail = list(islice(reversed(messages), count))
            tail.reverse()
            items: Any = tail
        else:
            items = islice(messages, start, None)
        for offset, item in enumerate(items):
            if match(item.message if type(item) is _Marked else item):
                return start + offset
        return -1

    def _take(self, index: int) -> Any:
        messages = self._messages
        if index == 0:
            item = messages.popleft()
        elif index == len(messages) - 1:
            item = messages.pop()
        else:
            item = messages[index]  # O(min(index, n - index)) in C, once per receive
            del messages[index]
        return self._taken(item)

    def receive(self, timeout: float | None = None, match: Match | None = None) -> Any:
        """The oldest (matching) message; waits up to ``timeout`` seconds (None: forever).

        ``timeout=0`` polls. Raises :class:`ReceiveTimeout` when nothing matched in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        scanned = 0
        removals = self._removals
        while True:
            messages = self._messages
            if match is None:
                if messages:
                    self._removals += 1
                    return self._taken(messages.popleft())
            else:
                if removals != self._removals:  # the queue shrank under us: scan it all again
                    scanned, removals = 0, self._removals
                index = self._scan(match, scanned)
                if index >= 0:
                    message = self._take(index)
                    self._removals += 1
                    return message
                scanned = len(messages)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ReceiveTimeout(f"no message within {timeout} s")
            self._wait(remaining)

    def _wait(self, timeout: float | None) -> None:
        """Block until a put (or ``timeout`` seconds, or anything that resumes the caller)."""
        me = getcurrent()
        hub = get_hub()
        timer = None
        if timeout is not None:
            timer = hub.loop.timer(timeout)
            timer.start(me.switch)
        self._waiters.append(me)
        try:
            hub.switch()
        finally:
            self._waiters.remove(me)
            if timer is not None:
                timer.close()

    def purge(self, match: Match) -> int:
        """Drop every queued message for which ``match`` is true; returns how many."""
        keep: deque[Any] = deque()
        dropped = 0
        for item in self._messages:
            if match(_unwrap(item)):
                dropped += 1
                self._taken(item)
            else:
                keep.append(item)
        if dropped:
            self._messages = keep
            self._removals += 1
        return dropped

    def __repr__(self) -> str:
        return f"<Mailbox owner={self.owner!r} queued={len(self._messages)}>"


_MAILBOXES: weakref.WeakKeyDictionary[Any, Mailbox] = weakref.WeakKeyDictionary()


@overload
def mailbox_of(greenlet: Any = None, *, create: Literal[True] = True) -> Mailbox: ...
@overload
def mailbox_of(greenlet: Any = None, *, create: bool) -> Mailbox | None: ...


def mailbox_of(greenlet: Any = None, *, create: bool = True) -> Mailbox | None:
    """The mailbox of ``greenlet`` (default: the current one), made on first use.

    With ``create=False`` a greenlet without a mailbox gives None.
    """
    if greenlet is None:
        greenlet = gevent.getcurrent()
    box = _MAILBOXES.get(greenlet)
    if box is None and create:
        box = Mailbox(greenlet)
        _MAILBOXES[greenlet] = box
    return box


def bind_mailbox(greenlet: Any, mailbox: Mailbox) -> None:
    """Make ``mailbox`` the one :func:`mailbox_of` gives for ``greenlet`` (for the actor layer)."""
    mailbox._owner = weakref.ref(greenlet)
    _MAILBOXES[greenlet] = mailbox
