"""The path-argument cache: raw path bytes -> canonical path, per home, within a byte budget.

Parsing and validating a path argument costs more than answering a READ, and clients ask for
the same few paths again and again, so the canonical form is kept, keyed by the requester's
home (a relative path depends on it) and the raw bytes. A guest chooses those bytes, so the
cache has a budget in bytes (:data:`DEFAULT_BUDGET`): an entry that would take it past the
budget empties the whole cache first (cheap, and a cache refills at the next requests).
"""

from __future__ import annotations

DEFAULT_BUDGET = 4 << 20
"""Bytes of keys and values the cache may hold (raw path, canonical path, per-entry cost)."""
ENTRY_COST = 160
"""What one entry costs beyond its strings (dict slot, str and bytes object headers)."""


class PathCache:
    """Canonical paths by ``(home, raw)``; ``size`` counts bytes against ``budget``."""

    __slots__ = ("budget", "homes", "size")

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.homes: dict[str, dict[bytes, str]] = {}
        self.size = 0

    def for_home(self, home: str) -> dict[bytes, str]:
        """The (read-only) mapping for requests from ``home``."""
        cache = self.homes.get(home)
        if cache is None:
            cache = self.homes[home] = {}
        return cache

    def known(self, home: str, raw: bytes) -> str | None:
        """The canonical path for ``raw`` asked from ``home``, if remembered."""
        cache = self.homes.get(home)
        return None if cache is None else cache.get(raw)

    def put(self, cache: dict[bytes, str], raw: bytes, path: str) -> None:
        """Remember ``raw -> path`` in ``cache`` (one of :meth:`for_home`'s)."""
        cost = len(raw) + len(path) + ENTRY_COST
        if self.size + cost > self.budget:
            self.clear()
            if cost > self.budget:
                return
        cache[raw] = path
        self.size += cost

    def forget(self, home: str) -> None:
        """Drop the entries for requests from ``home`` (its domain is gone)."""
        cache = self.homes.pop(home, None)
        if cache:
            self.size -= sum(len(raw) + len(path) + ENTRY_COST for raw, path in cache.items())

    def clear(self) -> None:
        for cache in self.homes.values():
            cache.clear()
        self.size = 0

    def __contains__(self, key: tuple[str, bytes]) -> bool:
        home, raw = key
        return raw in self.homes.get(home, {})
