"""Logging setup for programs built on xsactor (the library itself only logs).

The library logs through ``structlog.get_logger(...)`` with context bound (domid, conn, path,
token, req_id, tx_id) and never configures structlog on import. Programs call
:func:`configure` once; the CLI, the demo and the benchmarks do.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """structlog to ``stream`` (stderr), key=value lines, filtered at ``level`` (cheap when
    filtered: a disabled level costs one method call)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
