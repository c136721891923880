"""A check that a test leaves no process and no stray greenlet behind.

``no_leftovers()`` wraps a test: afterwards it ends the test's own adopted process, lets the
others finish (up to a deadline), kills what is left, and fails naming the leftovers. The
fixture ``no_leftover_processes`` applies it (import it into a ``conftest.py``: it is autouse).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.hub import Hub
from greenlet import greenlet as RawGreenlet
from greenlet import settrace as greenlet_settrace

from ..actors import process
from .util import wait_for

__all__ = ["live_greenlets", "no_leftover_processes", "no_leftovers"]


_switched: set[RawGreenlet] = set()
_tracing = False


def _trace_switches() -> None:
    """Remember every greenlet switched to from now on (a greenlet tracer: far cheaper per
    test than scanning the heap, which costs tens of ms with hypothesis loaded)."""
    global _tracing
    if _tracing:
        return
    _tracing = True
    previous = greenlet_settrace(None)

    def trace(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            _switched.add(args[1])
        if previous is not None:
            previous(event, args)
    greenlet_settrace(trace)


def live_greenlets() -> set[RawGreenlet]:
    """Every greenlet started since the first call and not finished, except hubs and main
    ones (greenlets already running before the first call are never listed)."""
    _trace_switches()
    _switched.difference_update([g for g in _switched if g.dead])
    return {g for g in _switched if g.parent is not None and not isinstance(g, Hub)}


def _describe(greenlets: set[Any]) -> list[str]:
    return sorted(repr(g) for g in greenlets)


@contextlib.contextmanager
def no_leftovers(timeout: float = 2.0) -> Iterator[None]:
    """Fail if, after the block, processes or new greenlets are still alive (they are killed
    first, so the next test starts clean)."""
    before = live_greenlets()
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
        wait_for(lambda: not live_greenlets() - before, timeout / 4, "greenlets to end",
                 sleep=gevent.sleep)
    stray = live_greenlets() - before
    if stray:
        loop = gevent.get_hub().loop
        for g in stray:
            if g:  # started: unwind it; an unscheduled one is left to the collector
                loop.run_callback(g.throw, gevent.GreenletExit())
        gevent.sleep(0)
        pytest.fail(f"greenlets left after the test: {_describe(stray)}", pytrace=False)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test of the module (or conftest) that imports this ends with no process left."""
    with no_leftovers():
        yield
