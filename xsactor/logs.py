"""Logging: the library's loggers, and a setup for programs built on xsactor.

Library modules log through :func:`get_logger` with context bound (domid, conn, path, token,
req_id, tx_id). Until the program configures structlog, those loggers write only warnings and
errors, to stderr: a library does not print debug output uninvited, nor reconfigure logging
behind the program's back. Once structlog is configured (by the program, or by
:func:`configure`, which the CLI, the demo and the benchmarks call), everything goes through
the program's configuration.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from typing import Any, TextIO

import gevent
import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")

_PROCESSORS = (
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso"),
    structlog.processors.format_exc_info,
    structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
)


def configure(level: str = "info", stream: TextIO | None = None, *,
              json: bool = False, console: bool | None = None) -> None:
    """structlog to ``stream`` (stderr), filtered at ``level`` (cheap when filtered: a disabled
    level costs one method call): key=value lines, one JSON object per line with ``json``,
    or the console renderer with ``console`` (default: when ``stream`` is a terminal)."""
    stream = stream or sys.stderr
    processors: list[Any] = list(_PROCESSORS[:-1])
    if json:
        processors.append(structlog.processors.JSONRenderer(default=repr))
    elif console if console is not None else _isatty(stream):
        processors.append(structlog.dev.ConsoleRenderer(colors=_isatty(stream)))
    else:
        processors.append(_PROCESSORS[-1])
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _CurrentStderr:
    """``sys.stderr`` as it is when written to (tests and programs may replace it)."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@functools.cache
def _quiet() -> Any:
    """What the library logs through while structlog is unconfigured: warnings up, stderr."""
    return structlog.wrap_logger(
        structlog.PrintLogger(_CurrentStderr()),  # type: ignore[arg-type]
        processors=list(_PROCESSORS),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


class LibraryLogger:
    """A structlog-style logger (``bind``, ``debug`` ... ``exception``) for library code."""

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context

    def bind(self, **values: Any) -> LibraryLogger:
        return LibraryLogger(self._name, {**self._context, **values})

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name).bind(**self._context)
        return _quiet().bind(logger=self._name, **self._context)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._target(), method)


def get_logger(name: str, **context: Any) -> LibraryLogger:
    """The logger of a library module (``get_logger(__name__)``)."""
    return LibraryLogger(name, context)


class LogSummary:
    """A warning that may come in bursts, logged at most once per ``period`` seconds.

    The first occurrence is logged at once (with its context and ``count=1``); those that
    follow within ``period`` are counted, and one line with their ``count`` (and the last
    one's context) is logged when the period ends, or at :meth:`flush`.
    """

    __slots__ = ("_context", "_count", "_event", "_last", "_log", "_timer", "period")

    def __init__(self, logger: Any, event: str, period: float = 5.0) -> None:
        self._log = logger
        self._event = event
        self.period = period
        self._count = 0
        self._context: dict[str, Any] = {}
        self._last = float("-inf")
        self._timer: Any = None

    def note(self, **context: Any) -> None:
        """One more occurrence."""
        now = time.monotonic()
        if now - self._last >= self.period and not self._count:
            self._last = now
            self._log.warning(self._event, count=1, **context)
            return
        self._count += 1
        self._context = context
        if self._timer is None:
            self._timer = gevent.get_hub().loop.timer(max(0.0, self._last + self.period - now))
            self._timer.start(self.flush)

    def flush(self) -> None:
        """Log the occurrences counted so far, if any."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._count:
            count, self._count = self._count, 0
            self._last = time.monotonic()
            self._log.warning(self._event, count=count, period=self.period, **self._context)
