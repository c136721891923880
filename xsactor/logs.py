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
from typing import Any, TextIO

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
        processors.append(structlog.dev.ConsoleRenderer())
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
