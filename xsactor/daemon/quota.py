"""Quotas of the embedded xenstored: 4.17's defaults, names and ``CONTROL quota`` listing.

Quotas bind unprivileged domains only (not dom0, not the dom0 socket). The table order and
the descriptions are 4.17's (``xenstored_control.c``), so ``CONTROL quota`` answers the same
text as the C daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol.errors import EINVAL
from ..protocol.ops import REL_PATH_MAX

HARD_QUOTAS: tuple[tuple[str, str, str], ...] = (
    # (wire name, attribute, description)
    ("nodes", "nodes", "Nodes per domain"),
    ("watches", "watches", "Watches per domain"),
    ("transactions", "transactions", "Transactions per domain"),
    ("outstanding", "outstanding", "Outstanding requests per domain"),
    ("transaction-nodes", "transaction_nodes", "Max. number of accessed nodes per transaction"),
    ("memory", "memory", "Total Xenstore memory per domain (error level)"),
    ("node-size", "node_size", "Max. size of a node"),
    ("path-max", "path_max", "Max. length of a node path"),
    ("permissions", "permissions", "Max. number of permissions per node"),
)
SOFT_QUOTAS: tuple[tuple[str, str, str], ...] = (
    ("memory", "memory_soft", "Total Xenstore memory per domain (warning level)"),
)


@dataclass(slots=True)
class Quotas:
    """Current quota values (``xenstored -E -W -t -S -A -M -Q -q`` and ``CONTROL quota set``)."""

    nodes: int = 1000
    watches: int = 128
    transactions: int = 10
    outstanding: int = 20
    transaction_nodes: int = 1024
    memory: int = 2 * 1024 * 1024 + 512 * 1024
    node_size: int = 2048
    path_max: int = REL_PATH_MAX
    permissions: int = 5
    memory_soft: int = 2 * 1024 * 1024
    listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False,
                                                  compare=False)

    def set(self, name: str, value: int, *, soft: bool = False) -> None:
        """Set a quota by its wire name; EINVAL for an unknown name or a value below 1."""
        table = SOFT_QUOTAS if soft else HARD_QUOTAS
        if value < 1:
            raise EINVAL(f"quota {name!r} must be at least 1")
        for wire, attr, _ in table:
            if wire == name:
                setattr(self, attr, value)
                for listener in self.listeners:
                    listener(attr)
                return
        raise EINVAL(f"unknown quota {name!r}")

    def listing(self, *, soft: bool = False) -> str:
        """The text of ``CONTROL quota`` (or ``quota-soft``) without its NUL."""
        lines = ["Quota settings:\n"]
        for wire, attr, descr in SOFT_QUOTAS if soft else HARD_QUOTAS:
            lines.append(f"{wire:<17s}: {getattr(self, attr):8d} {descr}\n")
        return "".join(lines)


def parse_assignment(text: str) -> tuple[str, int]:
    """``what=nb`` as given to ``-Q``/``-q``; ValueError when malformed."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"quotas must be specified via <what>=<nb>, not {text!r}")
    return name, int(value)
