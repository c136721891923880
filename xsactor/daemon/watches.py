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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..protocol.ops import PAYLOAD_MAX
from ..protocol.paths import parent as parent_path
from ..protocol.perms import ACL
from .access import READ, Identity, perm_for
from .store import Node, Store

OldPerms = tuple[ACL, frozenset[int] | None]


class Watch:
    """One registration: canonical path, token bytes, and how to report event paths."""

    __slots__ = ("path", "strip", "token")

    def __init__(self, path: str, token: bytes, strip: int = 0) -> None:
        self.path = path
        self.token = token
        # Relative watches: the length of "<home>/", which every path they match starts with.
        self.strip = strip

    def payload(self, event_path: str) -> bytes:
        return event_path[self.strip:].encode("latin-1") + b"\0" + self.token + b"\0"

    def matches(self, path: str, exact: bool) -> bool:
        """Exact events match the watched path only; others, it or a path below it."""
        watched = self.path
        if exact or path == watched:
            return path == watched
        # paths.is_within, inlined: called for every watch on every event
        return watched == "/" or (path.startswith(watched) and path[len(watched)] == "/")

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


class WatchHub:
    """Who watches, and delivery of events to their output queues."""

    def __init__(self, store: Store, special_acl: Callable[[str], ACL | None]) -> None:
        self.store = store
        self.special_acl = special_acl
        self.watchers: dict[int, Watcher] = {}
        self.dirty: set[Watcher] = set()

    # -- registry --------------------------------------------------------------------------
    def add(self, conn: Watcher, watch: Watch) -> None:
        conn.watches[(watch.path, watch.token)] = watch
        self.watchers[conn.id] = conn

    def remove(self, conn: Watcher, key: tuple[str, bytes]) -> Watch | None:
        watch = conn.watches.pop(key, None)
        if not conn.watches:
            self.watchers.pop(conn.id, None)
        return watch

    def clear(self, conn: Watcher) -> int:
        """Drop every watch of ``conn``; return how many there were."""
        count = len(conn.watches)
        conn.watches.clear()
        self.watchers.pop(conn.id, None)
        return count

    # -- delivery --------------------------------------------------------------------------
    def fire(self, path: str, exact: bool = False, node: Node | None = None,
             old: OldPerms | None = None, parent: Node | None = None) -> None:
        """Queue the event for ``path`` to every matching watch allowed to see it.

        ``node``/``parent`` are the in-memory node and parent when the caller has them
        (otherwise they are read from the tree); ``old`` is the ACL before a SET_PERMS, or
        before a transaction touched the node.
        """
        if not self.watchers:
            return
        if node is None and old is None:
            node = self.store.nodes.get(path)
            if node is None:
                # 4.17's watch_permitted: no ACL from before the change and no node (one a
                # transaction created and removed) -- nobody may see it, dom0 included.
                return
        for conn in self.watchers.values():
            allowed: bool | None = None
            for watch in conn.watches.values():
                if not watch.matches(path, exact):
                    continue
                if allowed is None:
                    allowed = conn.privileged or self._permitted(conn, path, node, old, parent)
                if not allowed:
                    break
                payload = watch.payload(path)
                if len(payload) <= PAYLOAD_MAX:
                    conn.event(payload)
                    self.dirty.add(conn)

    def fire_special(self, name: str) -> None:
        """``@introduceDomain`` / ``@releaseDomain``: exact watches, special-ACL readers."""
        acl = self.special_acl(name)
        for conn in self.watchers.values():
            if acl is not None and not perm_for(conn, acl) & READ:
                continue
            for watch in conn.watches.values():
                if watch.path == name:
                    conn.event(watch.payload(name), special=True)
                    self.dirty.add(conn)

    def _permitted(self, conn: Watcher, path: str, node: Node | None,
                   old: OldPerms | None, parent: Node | None) -> bool:
        if old is not None and perm_for(conn, old[0], old[1]) & READ:
            return True
        nodes = self.store.nodes
        if node is None:
            node = nodes.get(path)
            if node is None:
                return False
        if perm_for(conn, node.perms, node.ignored) & READ:
            return True
        if parent is None:
            parent = nodes.get(parent_path(path))
            if parent is None:
                return False
        return bool(perm_for(conn, parent.perms, parent.ignored) & READ)
