"""Erlang-style mailboxes for greenlets: ``put`` never blocks, ``receive`` is selective.

Every greenlet can have one mailbox (:func:`mailbox_of` makes it on first use). The bus puts
watch events into the mailbox of the greenlet that registered the watch; the actor layer builds
processes and supervisors on the same mailboxes.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Literal, overload

import gevent
from gevent.event import Event

__all__ = ["Mailbox", "ReceiveTimeout", "mailbox_of"]

Match = Callable[[Any], bool]


class ReceiveTimeout(TimeoutError):
    """No matching message arrived within ``receive``'s timeout."""


class Mailbox:
    """A message queue owned by one greenlet.

    - :meth:`put` appends and never blocks (any greenlet, or the hub, may call it).
    - :meth:`receive` takes the oldest message, or with ``match`` the oldest message for which
      ``match(msg)`` is true, leaving the others queued in order (selective receive).
    - ``put(msg, coalesce=True)`` drops ``msg`` when an equal message is still queued (the bus
      uses it for duplicate watch events, which mean "something changed", not a count).
    """

    __slots__ = ("__weakref__", "_coalescable", "_event", "_messages", "_owner", "_purges")

    def __init__(self, owner: Any = None) -> None:
        self._messages: deque[Any] = deque()
        self._purges = 0
        self._coalescable: set[Hashable] = set()
        self._event = Event()
        self._owner = weakref.ref(owner) if owner is not None else None

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
    def put(self, message: Any, *, coalesce: bool = False, system: bool = False) -> bool:
        """Queue ``message``; returns False when it was coalesced into an equal queued one.
        ``system`` marks EXIT, DOWN and call replies (never dropped by a bound)."""
        if coalesce:
            if message in self._coalescable:
                return False
            self._coalescable.add(message)
        self._messages.append(message)
        if not self._event.is_set():
            self._event.set()
        return True

    # -- receiving -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._messages)

    def _take(self, index: int) -> Any:
        messages = self._messages
        if index == 0:
            message = messages.popleft()
        else:
            message = messages[index]
            del messages[index]
        if self._coalescable:
            self._forget(message)
        return message

    def _forget(self, message: Any) -> None:
        with contextlib.suppress(TypeError):  # unhashable, so never coalesced
            self._coalescable.discard(message)

    def _find(self, match: Match | None, start: int) -> int:
        if match is None:
            return 0 if self._messages else -1
        for index in range(start, len(self._messages)):
            if match(self._messages[index]):
                return index
        return -1

    def receive(self, timeout: float | None = None, match: Match | None = None) -> Any:
        """The oldest (matching) message; waits up to ``timeout`` seconds (None: forever).

        ``timeout=0`` polls. Raises :class:`ReceiveTimeout` when nothing matched in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        scanned = 0
        purges = self._purges
        while True:
            if purges != self._purges:  # the queue shrank under us: scan it all again
                scanned, purges = 0, self._purges
            index = self._find(match, scanned)
            if index >= 0:
                return self._take(index)
            scanned = len(self._messages)
            self._event.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ReceiveTimeout(f"no message within {timeout} s")
            self._event.wait(remaining)

    def purge(self, match: Match) -> int:
        """Drop every queued message for which ``match`` is true; returns how many."""
        keep: deque[Any] = deque()
        dropped = 0
        for message in self._messages:
            if match(message):
                dropped += 1
                if self._coalescable:
                    self._forget(message)
            else:
                keep.append(message)
        if dropped:
            self._messages = keep
            self._purges += 1
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
