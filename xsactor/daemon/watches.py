"""Watches: registration records, matching, the permission filter and event delivery.

As in 4.17 (``xenstored_watch.c``):

- a watch on W matches an event on E if W is ``/``, E equals W, or E is below W;
  *exact* events (descendants removed by RM) match only watches registered on E itself;
- the event carries E (made relative again for a watch registered with a relative path)
  and the watch's token;
- a watcher gets the event only if it can read the node (its new ACL, or the ACL before the
  change when one is given), or the node's parent; a node with neither an ACL from before
  nor a node now (created and removed in one transaction) is seen by nobody, dom0 included;
- ``@introduceDomain`` / ``@releaseDomain`` fire only watches registered exactly on them, for
  connections allowed to read the special ACL;
- an event longer than 4096 bytes is dropped.

Matching goes through an index keyed by watched path, so the cost of a change depends on the
watches that match it, never on the others: an event on ``/a/b/c`` looks up ``/``, ``/a``,
``/a/b`` and ``/a/b/c`` (an exact event, ``/a/b/c`` only; a special event, its name only).
The permission filter runs once per connection that has a matching watch. A connection gets
its events in the order its watches were registered (4.17 walks each connection's watch list;
events to different connections travel on different sockets, so no order between them can
be seen).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

from ..protocol.ops import PAYLOAD_MAX
from ..protocol.paths import parent as parent_path
from ..protocol.perms import ACL
from .access import READ, Identity, Records, perm_for
from .store import Node, Store

OldPerms = tuple[ACL, frozenset[int] | None, int]
"""A node's ACL before a change: its entries, their flags and the node's generation."""


class Watch:
    """One registration: canonical path, token bytes, and how to report event paths."""

    __slots__ = ("path", "seq", "strip", "token")

    def __init__(self, path: str, token: bytes, strip: int = 0) -> None:
        self.path = path
        self.token = token
        # Relative watches: the length of "<home>/", which every path they match starts with.
        self.strip = strip
        self.seq = 0  # registration order, set by WatchHub.add

    def payload(self, event_path: str) -> bytes:
        return event_path[self.strip:].encode("latin-1") + b"\0" + self.token + b"\0"

    def __repr__(self) -> str:
        return f"Watch({self.path!r}, {self.token!r})"


class Watcher(Identity, Protocol):
    """What the hub needs of a connection: who it is, its watches, its output queue."""

    @property
    def id(self) -> int: ...
    @property
    def watches(self) -> dict[tuple[str, bytes], Watch]: ...
    def event(self, payload: bytes, *, special: bool = False) -> None: ...
    def flush(self) -> None: ...


Entry = tuple[Watcher, Watch]
Bucket = dict[int, Entry]
"""The watches on one path, keyed (and so ordered) by registration number: removing one
costs the same however many share its path."""


def _registration(entry: Entry) -> int:
    return entry[1].seq


class WatchHub:
    """Who watches what (indexed by path), and delivery of events to their output queues."""

    def __init__(self, store: Store, special_acl: Callable[[str], ACL | None],
                 records: Records | None = None) -> None:
        self.store = store
        self.special_acl = special_acl
        self.records = records  # the domain records that decide which entries count
        self.index: dict[str, Bucket] = {}
        self.dirty: set[Watcher] = set()
        self._seq = itertools.count(1)

    # -- registry --------------------------------------------------------------------------
    def add(self, conn: Watcher, watch: Watch) -> None:
        watch.seq = next(self._seq)
        conn.watches[(watch.path, watch.token)] = watch
        bucket = self.index.get(watch.path)
        if bucket is None:
            bucket = self.index[watch.path] = {}
        bucket[watch.seq] = (conn, watch)

    def remove(self, conn: Watcher, key: tuple[str, bytes]) -> Watch | None:
        watch = conn.watches.pop(key, None)
        if watch is not None:
            self._unindex(watch)
        return watch

    def clear(self, conn: Watcher) -> int:
        """Drop every watch of ``conn``; return how many there were."""
        watches = conn.watches
        for watch in watches.values():
            self._unindex(watch)
        count = len(watches)
        watches.clear()
        return count

    def _unindex(self, watch: Watch) -> None:
        bucket = self.index[watch.path]
        del bucket[watch.seq]
        if not bucket:
            del self.index[watch.path]

    # -- matching --------------------------------------------------------------------------
    def matching(self, path: str, exact: bool = False) -> list[Entry]:
        """The watches an event on ``path`` fires, in registration order: those on ``path``
        itself if ``exact``; else those on ``path`` or any of its ancestors."""
        index = self.index
        if not index:
            return []
        get = index.get
        if exact:
            bucket = get(path)
            return list(bucket.values()) if bucket else []
        found: list[Bucket] = []
        bucket = get("/")
        if bucket:
            found.append(bucket)
        if path != "/":
            cut = path.find("/", 1)
            while cut > 0:
                bucket = get(path[:cut])
                if bucket:
                    found.append(bucket)
                cut = path.find("/", cut + 1)
            bucket = get(path)
            if bucket:
                found.append(bucket)
        if not found:
            return []
        if len(found) == 1:
            return list(found[0].values())
        return sorted((entry for b in found for entry in b.values()), key=_registration)

    # -- delivery --------------------------------------------------------------------------
    def fire(self, path: str, exact: bool = False, node: Node | None = None,
             old: OldPerms | None = None, parent: Node | None = None) -> None:
        """Queue the event for ``path`` to every matching watch allowed to see it.

        ``node``/``parent`` are the in-memory node and parent when the caller has them
        (otherwise they are read from the tree); ``old`` is the ACL before a SET_PERMS, or
        before a transaction touched the node.
        """
        entries = self.matching(path, exact)
        if not entries:
            return
        if node is None and old is None:
            node = self.store.nodes.get(path)
            if node is None:
                # 4.17's watch_permitted: no ACL from before the change and no node (one a
                # transaction created and removed) -- nobody may see it, dom0 included.
                return
        verdicts: dict[int, bool] = {}
        for conn, watch in entries:
            allowed = verdicts.get(conn.id)
            if allowed is None:
                allowed = verdicts[conn.id] = (
                    conn.privileged or self._permitted(conn, path, node, old, parent))
            if not allowed:
                continue
            payload = watch.payload(path)
            if len(payload) <= PAYLOAD_MAX:
                conn.event(payload)
                self.dirty.add(conn)

    def fire_special(self, name: str) -> None:
        """``@introduceDomain`` / ``@releaseDomain``: exact watches, special-ACL readers."""
        bucket = self.index.get(name)
        if not bucket:
            return
        acl = self.special_acl(name)
        for conn, watch in list(bucket.values()):
            if acl is not None and not perm_for(conn, acl) & READ:
                continue
            conn.event(watch.payload(name), special=True)
            self.dirty.add(conn)

    def _permitted(self, conn: Watcher, path: str, node: Node | None,
                   old: OldPerms | None, parent: Node | None) -> bool:
        records = self.records
        if old is not None and perm_for(conn, old[0], old[1], old[2], records) & READ:
            return True
        nodes = self.store.nodes
        if node is None:
            node = nodes.get(path)
            if node is None:
                return False
        if perm_for(conn, node.perms, node.ignored, node.generation, records) & READ:
            return True
        if parent is None:
            parent = nodes.get(parent_path(path))
            if parent is None:
                return False
        return bool(perm_for(conn, parent.perms, parent.ignored, parent.generation, records)
                    & READ)
