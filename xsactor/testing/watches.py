"""A check that no watch outlives its subscriber: on the daemon, no more watches than the bus
connections hold for live subscribers.

In-process daemons only (the embedded ``Daemon`` on the test's hub, or anything with a
``watch_count()`` method such as the bus tests' fake): their counters are read directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gevent

from ..bus.client import Client
from .util import wait_for

__all__ = ["daemon_watch_count", "live_watch_count", "no_stray_watches"]


def daemon_watch_count(daemon: Any) -> int:
    """How many watches the in-process ``daemon`` holds, over all its connections."""
    counter = getattr(daemon, "watch_count", None)
    if callable(counter):
        return int(counter())
    return sum(len(conn.watches) for conn in daemon.xs.connections.values())


def live_watch_count(clients: Iterable[Client]) -> int:
    """How many watches the open ``clients`` hold for subscribers still alive."""
    return sum(1 for client in clients if not client.conn.closed
               for watch in client.conn.watches() if watch.mailbox.owner_alive)


def no_stray_watches(daemon: Any, clients: Iterable[Client], timeout: float = 2.0) -> None:
    """Fail (AssertionError) unless, within ``timeout``, the daemon holds exactly the watches
    of the live subscribers of ``clients`` (its only connections with watches)."""
    clients = list(clients)
    gevent.idle()  # exit hooks and reapers run; their UNWATCHes are queued
    for client in clients:
        if not client.conn.closed and client.conn.transport is not None:
            client.get_domain_path(0, timeout=timeout)  # ... and handled by the daemon

    def settled() -> bool:
        return daemon_watch_count(daemon) == live_watch_count(clients)

    try:
        wait_for(settled, timeout, "the daemon's watches to match the live subscribers'",
                 error=AssertionError, sleep=gevent.sleep)
    except AssertionError:
        raise AssertionError(
            f"watches left on the daemon: it holds {daemon_watch_count(daemon)}, the live "
            f"subscribers {live_watch_count(clients)}") from None
