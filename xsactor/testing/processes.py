"""A check that a test leaves no process and no stray greenlet behind.

``no_leftovers()`` wraps a test: afterwards it ends the test's own adopted process, lets the
others finish (up to a deadline), kills what is left, and fails naming the leftovers. The
fixture ``no_leftover_processes`` applies it (import it into a ``conftest.py``: it is autouse).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import gevent
import greenlet
import pytest
from gevent.hub import Hub
from greenlet import greenlet as RawGreenlet

from ..actors import process
from .util import wait_for

__all__ = ["live_greenlets", "no_leftover_processes", "no_leftovers", "unwind"]


def live_greenlets() -> set[RawGreenlet]:
    """Every greenlet started or scheduled and not finished, except hubs and main ones (a full
    heap scan: slow, done once)."""
    return {obj for obj in gc.get_objects() if isinstance(obj, RawGreenlet) and _running(obj)}


def unwind(greenlets: Iterable[RawGreenlet]) -> None:
    """Throw GreenletExit into each started greenlet, from the hub (an unscheduled one is left
    to the collector)."""
    loop = gevent.get_hub().loop
    for g in greenlets:
        if g:
            loop.run_callback(g.throw, gevent.GreenletExit())


def _running(g: RawGreenlet) -> bool:
    return not g.dead and g.parent is not None and not isinstance(g, Hub)


class _Tracker:
    """Every greenlet switched to since the first check (plus those alive then), through
    ``greenlet.settrace``: the per-test check costs a walk of this set, not a heap scan."""

    def __init__(self) -> None:
        self.seen: weakref.WeakSet[RawGreenlet] = weakref.WeakSet(live_greenlets())
        self.previous = greenlet.settrace(self._trace)

    def _trace(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            self.seen.add(args[1])
        if self.previous is not None:
            self.previous(event, args)

    def running(self) -> set[RawGreenlet]:
        return {g for g in self.seen if _running(g)}


@functools.cache
def _tracker() -> _Tracker:
    return _Tracker()


@contextlib.contextmanager
def no_leftovers(timeout: float = 2.0) -> Iterator[None]:
    """Fail if, after the block, processes or new greenlets are still alive (they are killed
    first, so the next test starts clean)."""
    tracker = _tracker()
    before = tracker.running()
    yield
    process.release_self()
    try:
        wait_for(lambda: not process.processes(), timeout, "processes to end",
                 sleep=gevent.sleep)
    except TimeoutError:
        left = process.processes()
        for pid in left:
            process.exit(pid, process.KILL)
        gevent.sleep(0)
        pytest.fail(f"processes left after the test: {left}", pytrace=False)
    with contextlib.suppress(TimeoutError):  # let what was stopped finish unwinding
        wait_for(lambda: not tracker.running() - before, timeout / 4, "greenlets to end",
                 sleep=gevent.sleep)
    stray = tracker.running() - before
    if stray:
        unwind(stray)
        gevent.sleep(0)
        pytest.fail(f"greenlets left after the test: {sorted(map(repr, stray))}", pytrace=False)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test of the module (or conftest) that imports this ends with no process left."""
    with no_leftovers():
        yield
