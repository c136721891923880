"""Views of the tree that requests run against: the global tree, or a transaction.

A transaction is 4.17's per-node overlay (``xenstored_transaction.c``): the first time it
touches a node -- reading it, or finding it missing -- it records the node's generation (or
"absent") and keeps a private copy; later accesses see only that copy. Writes and deletes go
to the overlay. At commit every recorded generation must still be current (else EAGAIN);
then modified nodes are copied into the tree in first-touch order, each taking a new
generation, and each queued watch event fires as its node is applied.

Reads that look at the tree on behalf of a request (permission lookups of ancestors,
parents walked while creating, children walked by RM, DIRECTORY) all go through
:meth:`read`, so they count as touches exactly as in 4.17.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol.errors import ENOSPC
from .store import NO_GENERATION, Node, Store
from .watches import OldPerms, WatchHub

if TYPE_CHECKING:
    from .quota import Quotas


class GlobalView:
    """Requests outside a transaction: straight to the tree; events fire at once."""

    in_transaction = False

    def __init__(self, store: Store, hub: WatchHub) -> None:
        self.store = store
        self.nodes = store.nodes
        self.hub = hub

    def read(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def store_node(self, path: str, node: Node) -> None:
        self.nodes[path] = node

    def remove_node(self, path: str) -> None:
        self.nodes.pop(path, None)

    def account(self, domid: int, delta: int) -> None:
        self.store.account(domid, delta)

    def fire(self, path: str, exact: bool = False, node: Node | None = None,
             old: OldPerms | None = None, parent: Node | None = None) -> None:
        self.hub.fire(path, exact, node, old, parent)


class Record:
    """What a transaction knows about one node it touched."""

    __slots__ = ("check", "fire", "generation", "modified", "node", "old")

    def __init__(self, generation: int, check: bool, node: Node | None,
                 old: OldPerms | None) -> None:
        self.generation = generation
        self.check = check          # compare the generation at commit
        self.node = node            # the transaction's copy; None = absent here
        self.old = old              # the ACL when first touched (for the watch filter)
        self.modified = False
        self.fire: bool | None = None  # None: no event; True: exact; False: normal


class Transaction:
    """One open transaction of a connection."""

    in_transaction = True

    def __init__(self, tx_id: int, store: Store, quotas: Quotas, *, limited: bool) -> None:
        self.id = tx_id
        self.store = store
        self.quotas = quotas
        self.limited = limited      # unprivileged: the transaction-nodes quota applies
        self.accessed: dict[str, Record] = {}
        self.node_delta: dict[int, int] = {}
        self.node_created = False   # a creation was tried (even if refused)
        self.failed = False
        self.generation = store.bump()

    def _admit(self) -> None:
        if self.limited and len(self.accessed) >= self.quotas.transaction_nodes:
            self.failed = True
            raise ENOSPC("transaction touches too many nodes")

    def read(self, path: str) -> Node | None:
        record = self.accessed.get(path)
        if record is not None:
            return record.node
        self._admit()
        node = self.store.nodes.get(path)
        if node is None:
            record = Record(NO_GENERATION, True, None, None)
        else:
            record = Record(node.generation, True, node.copy(),
                            (node.perms, node.ignored, node.generation))
        self.accessed[path] = record
        return record.node

    def store_node(self, path: str, node: Node | None) -> None:
        """Write ``node`` (None: a delete) into the overlay."""
        record = self.accessed.get(path)
        if record is None:
            self._admit()
            record = self.accessed[path] = Record(0, False, None, None)
        record.node = node
        record.modified = True

    def remove_node(self, path: str) -> None:
        self.store_node(path, None)

    def account(self, domid: int, delta: int) -> None:
        self.node_delta[domid] = self.node_delta.get(domid, 0) + delta

    def fire(self, path: str, exact: bool = False, node: Node | None = None,
             old: OldPerms | None = None, parent: Node | None = None) -> None:
        """Queue the event for commit (a normal event replaces an exact one)."""
        record = self.accessed.get(path)
        if record is None:
            self.failed = True
            return
        if record.fire is None or not exact:
            record.fire = exact

    def conflicts(self) -> bool:
        """Whether a touched node changed in the tree since it was first touched."""
        nodes = self.store.nodes
        for path, record in self.accessed.items():
            if record.check:
                current = nodes.get(path)
                generation = NO_GENERATION if current is None else current.generation
                if generation != record.generation:
                    return True
        return False

    def apply(self, hub: WatchHub) -> None:
        """Copy the modified nodes into the tree in first-touch order, firing their events."""
        store = self.store
        nodes = store.nodes
        for path, record in self.accessed.items():
            if not record.modified:
                continue
            if record.node is not None:
                record.node.generation = store.bump()
                nodes[path] = record.node
            else:
                nodes.pop(path, None)
            if record.fire is not None:
                hub.fire(path, record.fire, None, record.old, None)
        for domid, delta in self.node_delta.items():
            store.account(domid, delta)
