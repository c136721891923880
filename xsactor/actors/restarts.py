"""Restart bookkeeping, pure and clock-injected: OTP's intensity window and Akka's backoff.

- :class:`RestartIntensity` is OTP's ``add_restart`` (S4): at each restart event keep the
  timestamps not older than ``now - period``, add ``now``, and give up when more than
  ``intensity`` remain. One event per restart, however many children it restarts.
- :class:`Backoff` is the delay before a restart (Akka's ``BackoffSupervisor``):
  ``min(max, min * 2**n) * (1 + random * jitter)`` for the n-th restart in a row, with n back
  to 0 once the child has run ``reset_after`` seconds without dying.
"""

from __future__ import annotations

import random as _random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffState", "RestartIntensity"]

Clock = Callable[[], float]


class RestartIntensity:
    """The restart window of one supervisor (OTP: ``intensity`` restarts per ``period`` s).

    OTP counts in whole seconds (``erlang:monotonic_time(1)``); this counts in the clock's
    float seconds, with the same inclusive bound: a restart exactly ``period`` old still
    counts.
    """

    __slots__ = ("_clock", "intensity", "period", "restarts")

    def __init__(self, intensity: int, period: float, clock: Clock = time.monotonic) -> None:
        self.intensity = intensity
        self.period = period
        self._clock = clock
        self.restarts: deque[float] = deque()

    def add(self) -> bool:
        """Record one restart event; False when it goes beyond the intensity (give up)."""
        now = self._clock()
        threshold = now - self.period
        while self.restarts and self.restarts[0] < threshold:
            self.restarts.popleft()
        self.restarts.append(now)
        return len(self.restarts) <= self.intensity

    def __len__(self) -> int:
        return len(self.restarts)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between restarts of one child (opt-in per child).

    ``delay(n, r)`` = ``min(max, min * 2**n) * (1 + r * jitter)`` with ``r`` in [0, 1).
    """

    min: float = 0.1
    max: float = 30.0
    jitter: float = 0.2
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.min <= self.max:
            raise ValueError(f"backoff wants 0 < min <= max, not {self.min}, {self.max}")
        if self.jitter < 0 or self.reset_after < 0:
            raise ValueError("backoff jitter and reset_after must be >= 0")

    def delay(self, n: int, r: float) -> float:
        """The delay before the ``n``-th restart in a row (n from 0), ``r`` in [0, 1)."""
        base = self.max if n >= 64 else min(self.max, self.min * 2 ** n)
        return base * (1 + r * self.jitter)


class BackoffState:
    """One child's place in its backoff: restarts in a row, and when it last started."""

    __slots__ = ("_clock", "_random", "backoff", "in_a_row", "started_at")

    def __init__(self, backoff: Backoff, clock: Clock = time.monotonic,
                 random: Callable[[], float] = _random.random) -> None:
        self.backoff = backoff
        self._clock = clock
        self._random = random
        self.in_a_row = 0
        self.started_at = clock()

    def started(self) -> None:
        """The child (re)started now."""
        self.started_at = self._clock()

    def next_delay(self) -> float:
        """The child died: the delay before its restart (the count resets after a quiet run)."""
        if self._clock() - self.started_at >= self.backoff.reset_after:
            self.in_a_row = 0
        delay = self.backoff.delay(self.in_a_row, self._random())
        self.in_a_row += 1
        return delay
