"""The daemon's state, and what every request handler shares.

:class:`State` owns the tree, the domains, the watches, the quotas and the connections; the
handler modules (``ops_nodes``, ``ops_watches``, ``ops_transactions``, ``ops_domains``,
``control``) work on it, and :class:`~.core.XenStore` dispatches requests to them. Here too:
a connection's lifecycle (connect, reset, disconnect), path arguments (with their cache) and
4.17's access refusals (§5 of ``xenstore-semantics.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..protocol.errors import EACCES, EINVAL, EIO, ENOENT, ENOSPC, XenStoreError
from ..protocol.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, ancestors, validate
from ..protocol.perms import ACL, Access, Perm
from .access import Identity, perm_for, void_entries
from .connection import Connection
from .domains import Domain, Domains
from .pathcache import DEFAULT_BUDGET, PathCache
from .quota import Quotas
from .store import Node, Store
from .transactions import GlobalView, Transaction
from .watches import WatchHub

OK = b"OK\0"
View = GlobalView | Transaction
Handler = Callable[["State", Connection, int, int, bytes, Transaction | None], None]
"""A request handler: ``(state, conn, req_id, tx_id, payload, txn)``; it queues the reply or
raises the typed error."""



class Transport(Protocol):
    """What the engine asks of the server when domains come and go."""

    def open_domain(self, domid: int) -> None:
        """A domain was introduced: start serving its connections."""

    def close_domain(self, domid: int) -> None:
        """A domain was released or died: close its connections and stop serving it."""


class NullTransport:
    def open_domain(self, domid: int) -> None:
        pass

    def close_domain(self, domid: int) -> None:
        pass


class State:
    """Everything the request handlers read and change."""

    def __init__(self, quotas: Quotas | None = None, *, keep_orphans: bool = False,
                 transport: Transport | None = None,
                 path_cache_bytes: int = DEFAULT_BUDGET) -> None:
        self.quotas = quotas if quotas is not None else Quotas()
        self.quotas.listeners.append(self._quota_changed)
        self.keep_orphans = keep_orphans
        self.transport: Transport = transport if transport is not None else NullTransport()
        self.store = Store()
        self.domains = Domains()
        self.special: dict[str, ACL] = {INTRODUCE_DOMAIN: (Perm(Access.NONE, 0),),
                                        RELEASE_DOMAIN: (Perm(Access.NONE, 0),)}
        self.hub = WatchHub(self.store, self.special.get, self.domains.table)
        self.glob = GlobalView(self.store, self.hub)
        self.connections: dict[int, Connection] = {}
        self.path_cache = PathCache(path_cache_bytes)
        self.live_update: Connection | None = None

    # -- connections -------------------------------------------------------------------------
    def connect(self, domid: int = 0, *, on_output: Callable[[Connection], None] | None = None
                ) -> Connection:
        """A new connection: domid 0 is privileged (the dom0 socket), others are guests."""
        domain = self.domains.introduced(domid)
        if domain is None:
            raise ENOENT(f"domain {domid} is not introduced")
        if domain.broken:
            raise EIO(f"domain {domid} is ignored after a protocol error")
        conn = Connection(domain, privileged=domid == 0, on_output=on_output)
        self.connections[conn.id] = conn
        return conn

    def members(self, domain: Domain) -> list[Connection]:
        """The open connections of ``domain``, oldest first."""
        return [conn for conn in self.connections.values() if conn.domain is domain]

    def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection: its watches and transactions go with it."""
        if conn.closed:
            return
        conn.closed = True
        self.reset_connection(conn)
        self.connections.pop(conn.id, None)
        self.hub.dirty.discard(conn)

    def reset_connection(self, conn: Connection) -> None:
        """Drop the connection's watches and transactions (and what they count against)."""
        removed = self.hub.clear(conn)
        if not conn.privileged:
            conn.domain.watch_count = max(0, conn.domain.watch_count - removed)
            conn.domain.transaction_count = max(
                0, conn.domain.transaction_count - len(conn.transactions))
        conn.transactions.clear()

    def flush(self) -> None:
        """Hand every connection that got events to its transport."""
        dirty = self.hub.dirty
        while dirty:
            dirty.pop().flush()

    # -- paths and permissions -----------------------------------------------------------------
    def _quota_changed(self, attr: str) -> None:
        if attr == "path_max":
            self.path_cache.clear()

    def path_arg(self, conn: Connection, raw: bytes) -> str:
        """The canonical node path of a path argument: ``raw`` is the string and its NUL (the
        whole payload of a one-argument request). EINVAL if malformed or not a valid path."""
        path = self.path_cache.known(conn.home, raw)
        if path is None:
            cache = self.path_cache.for_home(conn.home)
            end = len(raw) - 1
            if end < 0 or raw.find(b"\0") != end:
                raise EINVAL("expected one NUL-terminated path")
            path = validate(raw[:end].decode("latin-1"), conn.home,
                            path_max=self.quotas.path_max)
            self.path_cache.put(cache, raw, path)
        return path

    def _ask_parents(self, view: View, conn: Connection, path: str) -> int:
        """The rights on the nearest existing ancestor (each lookup is a touch)."""
        for ancestor in ancestors(path):
            node = view.read(ancestor)
            if node is not None:
                return self.rights(conn, node)
        return 0

    def rights(self, who: Identity, node: Node) -> int:
        """The rights ``who`` has on ``node`` (4.17's ``perm_for``, on entries judged now)."""
        return perm_for(who, node.perms, node.ignored, node.generation, self.domains.table)

    def keep_void(self, node: Node) -> None:
        """Before ``node`` is written: 4.17 writes a node as it read it, so the entries judged
        void on that read stay flagged (``XS_PERM_IGNORE``), whatever records come later."""
        perms = node.perms
        if len(perms) > 1:
            node.ignored = void_entries(perms, node.ignored, node.generation,
                                        self.domains.table)

    def refuse(self, view: View, conn: Connection, path: str, exists: bool,
               perm: int) -> XenStoreError:
        """4.17's error for a node that is missing or lacks ``perm``: ENOENT/EACCES only as
        far as the nearest existing ancestor lets the caller know (§5)."""
        err: type[XenStoreError] = EACCES if exists else ENOENT
        if not view.in_transaction and (exists or conn.privileged):
            return err(path=path)
        if self._ask_parents(view, conn, path) & perm:
            return err(path=path)
        return EACCES(path=path)

    def get_node(self, view: View, conn: Connection, path: str, perm: int) -> Node:
        """The node at ``path`` if the caller has ``perm`` on it; else 4.17's refusal."""
        node = view.read(path)
        if node is not None and (conn.privileged
                                 or self.rights(conn, node) & perm == perm):
            return node
        raise self.refuse(view, conn, path, node is not None, perm)

    def too_big(self, view: View, path: str) -> ENOSPC:
        """A node over the node-size quota. 4.17 has already taken a generation for the write
        and, inside a transaction, marks the transaction failed (its commit gives ENOMEM)."""
        self.store.bump()
        if isinstance(view, Transaction):
            view.failed = True
        return ENOSPC("node too large", path=path)

    def touch_domain(self, domid: int) -> Domain:
        """The domain record for ``domid`` (4.17 makes one for any domid it accounts to)."""
        return self.domains.ensure(domid & 0xFFFFFFFF, self.store.generation)
