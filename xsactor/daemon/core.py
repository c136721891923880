"""The request engine: every XenStore request type, answered as 4.17's C xenstored does.

:class:`XenStore` owns the tree, the domains, the watches and the quotas. The transport feeds
it whole requests (:meth:`XenStore.process`) for a :class:`~.connection.Connection` and
collects the connection's output queue afterwards; it knows nothing about sockets beyond the
:class:`Transport` hooks it calls when domains come and go.

Order of checks for every request (``process_message``): unknown type -> ENOSYS; privileged
type from a guest -> EACCES; unknown tx_id (except WATCH/UNWATCH) -> ENOENT; then the
handler. Section numbers in comments refer to ``xenstore-semantics.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..logs import get_logger
from ..protocol.errors import (
    E2BIG,
    EACCES,
    EAGAIN,
    EBUSY,
    EEXIST,
    EINVAL,
    EIO,
    ENOENT,
    ENOMEM,
    ENOSPC,
    ENOSYS,
    EPERM,
    XenStoreError,
)
from ..protocol.ops import PAYLOAD_MAX, PRIVILEGED_OPS, REL_PATH_MAX, Op
from ..protocol.packets import split_args
from ..protocol.paths import (
    INTRODUCE_DOMAIN,
    RELEASE_DOMAIN,
    ancestors,
    basename,
    canonicalize,
    home_path,
    is_special,
    join,
    validate,
)
from ..protocol.paths import parent as parent_of
from ..protocol.perms import ACL, Access, Perm, acl_payload, parse_acl
from .access import OWNER, READ, WRITE, perm_for
from .connection import Connection
from .control import handle_control
from .cparse import atou, onearg
from .domains import HYPERVISOR_STATES, Domain, Domains
from .quota import Quotas
from .store import Node, Store, record_size
from .transactions import GlobalView, Transaction
from .watches import Watch, WatchHub

log = get_logger(__name__)

OK = b"OK\0"
View = GlobalView | Transaction

_NOTID = (Op.WATCH, Op.UNWATCH)
_PATH_CACHE_MAX = 65536
GET_PERMS_ENTRY_MAX = 11
"""4.17 prints each GET_PERMS entry into a 12-byte buffer: ``r-2147483648`` loses its tail."""


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


class XenStore:
    """The daemon's state and its request handlers."""

    def __init__(self, quotas: Quotas | None = None, *, keep_orphans: bool = False,
                 transport: Transport | None = None) -> None:
        self.quotas = quotas if quotas is not None else Quotas()
        self.quotas.listeners.append(self._quota_changed)
        self.keep_orphans = keep_orphans
        self.transport: Transport = transport if transport is not None else NullTransport()
        self.store = Store()
        self.domains = Domains()
        self.special: dict[str, ACL] = {INTRODUCE_DOMAIN: (Perm(Access.NONE, 0),),
                                        RELEASE_DOMAIN: (Perm(Access.NONE, 0),)}
        self.hub = WatchHub(self.store, self.special.get)
        self.glob = GlobalView(self.store, self.hub)
        self.connections: dict[int, Connection] = {}
        self._paths: dict[str, dict[bytes, str]] = {}
        self.live_update: Connection | None = None
        handlers: dict[int, Callable[[Connection, int, int, bytes, Transaction | None], None]]
        handlers = {
            Op.CONTROL: self.op_control,
            Op.DIRECTORY: self.op_directory,
            Op.READ: self.op_read,
            Op.GET_PERMS: self.op_get_perms,
            Op.WATCH: self.op_watch,
            Op.UNWATCH: self.op_unwatch,
            Op.TRANSACTION_START: self.op_transaction_start,
            Op.TRANSACTION_END: self.op_transaction_end,
            Op.INTRODUCE: self.op_introduce,
            Op.RELEASE: self.op_release,
            Op.GET_DOMAIN_PATH: self.op_get_domain_path,
            Op.WRITE: self.op_write,
            Op.MKDIR: self.op_mkdir,
            Op.RM: self.op_rm,
            Op.SET_PERMS: self.op_set_perms,
            Op.IS_DOMAIN_INTRODUCED: self.op_is_domain_introduced,
            Op.RESUME: self.op_resume,
            Op.SET_TARGET: self.op_set_target,
            Op.RESET_WATCHES: self.op_reset_watches,
            Op.DIRECTORY_PART: self.op_directory_part,
        }
        self.handlers = [handlers.get(op) for op in range(23)]

    # =====================================================================================
    # connections
    # =====================================================================================
    def connect(self, domid: int = 0, *, on_output: Callable[[Connection], None] | None = None
                ) -> Connection:
        """A new connection: domid 0 is privileged (the dom0 socket), others are guests."""
        domain = self.domains.introduced(domid)
        if domain is None:
            raise ENOENT(f"domain {domid} is not introduced")
        conn = Connection(domain, privileged=domid == 0, on_output=on_output)
        self.connections[conn.id] = conn
        domain.connections.append(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection: its watches and transactions go with it."""
        if conn.closed:
            return
        conn.closed = True
        self._reset_connection(conn)
        self.connections.pop(conn.id, None)
        if conn in conn.domain.connections:
            conn.domain.connections.remove(conn)
        self.hub.dirty.discard(conn)

    def _reset_connection(self, conn: Connection) -> None:
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

    # =====================================================================================
    # dispatch
    # =====================================================================================
    def process(self, conn: Connection, op: int, req_id: int, tx_id: int,
                payload: bytes) -> None:
        """Answer one request (reply and any events go to the output queues)."""
        handler = self.handlers[op] if op < 23 else None
        if handler is None:
            conn.error(req_id, tx_id, ENOSYS.wire)
            return
        if op in PRIVILEGED_OPS and not conn.privileged:
            conn.error(req_id, tx_id, EACCES.wire)
            return
        txn = None
        if tx_id and op not in _NOTID:
            txn = conn.transactions.get(tx_id)
            if txn is None:
                conn.error(req_id, tx_id, ENOENT.wire)
                return
        try:
            handler(conn, req_id, tx_id, payload, txn)
        except XenStoreError as exc:
            conn.error(req_id, tx_id, exc.wire)

    # =====================================================================================
    # paths and permissions
    # =====================================================================================
    def _quota_changed(self, attr: str) -> None:
        if attr == "path_max":
            self._paths.clear()

    def path_arg(self, conn: Connection, raw: bytes) -> str:
        """The canonical node path of a path argument: ``raw`` is the string and its NUL (the
        whole payload of a one-argument request). EINVAL if malformed or not a valid path."""
        cache = self._paths.get(conn.home)
        if cache is None:
            cache = self._paths[conn.home] = {}
        path = cache.get(raw)
        if path is None:
            end = len(raw) - 1
            if end < 0 or raw.find(b"\0") != end:
                raise EINVAL("expected one NUL-terminated path")
            path = validate(raw[:end].decode("latin-1"), conn.home,
                            path_max=self.quotas.path_max)
            if len(cache) >= _PATH_CACHE_MAX:
                cache.clear()
            cache[raw] = path
        return path

    def _ask_parents(self, view: View, conn: Connection, path: str) -> int:
        """The rights on the nearest existing ancestor (each lookup is a touch)."""
        for ancestor in ancestors(path):
            node = view.read(ancestor)
            if node is not None:
                return perm_for(conn, node.perms, node.ignored)
        return 0

    def _refuse(self, view: View, conn: Connection, path: str, exists: bool,
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
        node = view.read(path)
        if node is not None and (conn.privileged
                                 or perm_for(conn, node.perms, node.ignored) & perm == perm):
            return node
        raise self._refuse(view, conn, path, node is not None, perm)

    def _too_big(self, view: View, path: str) -> ENOSPC:
        """A node over the node-size quota. 4.17 has already taken a generation for the write
        and, inside a transaction, marks the transaction failed (its commit gives ENOMEM)."""
        self.store.bump()
        if isinstance(view, Transaction):
            view.failed = True
        return ENOSPC("node too large", path=path)

    def _touch_domain(self, domid: int) -> Domain:
        return self.domains.ensure(domid & 0xFFFFFFFF, self.store.generation)

    # =====================================================================================
    # reading
    # =====================================================================================
    def op_read(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                txn: Transaction | None) -> None:
        path = self.path_arg(conn, payload)
        view = txn or self.glob
        node = view.read(path)  # get_node(), inlined: the hottest request
        if node is None or not (conn.privileged
                                or perm_for(conn, node.perms, node.ignored) & READ):
            raise self._refuse(view, conn, path, node is not None, READ)
        conn.reply(Op.READ, req_id, tx_id, node.value)

    def op_directory(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                     txn: Transaction | None) -> None:
        node = self.get_node(txn or self.glob, conn, self.path_arg(conn, payload), READ)
        conn.reply(Op.DIRECTORY, req_id, tx_id, node.child_blob())

    def op_directory_part(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                          txn: Transaction | None) -> None:
        # §1.1: exactly two strings; the offset is atoi'd into an unsigned int.
        if payload.count(b"\0") != 2:
            raise EINVAL("DIRECTORY_PART takes a path and an offset")
        raw_path, raw_offset, _ = payload.split(b"\0")
        node = self.get_node(txn or self.glob, conn, self.path_arg(conn, raw_path + b"\0"),
                             READ)
        offset = atou(raw_offset)
        gen = str(node.generation).encode() + b"\0"
        children = node.child_blob()
        total = len(children)
        if offset >= total:
            conn.reply(Op.DIRECTORY_PART, req_id, tx_id, gen + b"\0")
            return
        maxlen = PAYLOAD_MAX - len(gen) - 1
        length = 0
        pos = offset
        while True:
            name_len = children.index(b"\0", pos) - pos
            if length + name_len >= maxlen:
                break
            length += name_len + 1
            pos += name_len + 1
            if offset + length == total:
                break
        chunk = children[offset:offset + length]
        if offset + length == total:
            chunk += b"\0"
        conn.reply(Op.DIRECTORY_PART, req_id, tx_id, gen + chunk)

    def op_get_perms(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                     txn: Transaction | None) -> None:
        node = self.get_node(txn or self.glob, conn, self.path_arg(conn, payload), READ)
        conn.reply(Op.GET_PERMS, req_id, tx_id,
                   acl_payload(node.perms, entry_max=GET_PERMS_ENTRY_MAX))

    # =====================================================================================
    # writing
    # =====================================================================================
    def op_write(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
        cut = payload.find(b"\0")
        if cut < 0:
            raise EINVAL("WRITE needs a path and a NUL")
        path = self.path_arg(conn, payload[:cut + 1])
        value = payload[cut + 1:]
        view = txn or self.glob
        node = view.read(path)
        if node is None:
            self._create(view, conn, path, value)
        else:
            if not conn.privileged:
                if not perm_for(conn, node.perms, node.ignored) & WRITE:
                    raise self._refuse(view, conn, path, True, WRITE)
                if (record_size(len(node.perms), len(value), node.childlen)
                        >= self.quotas.node_size):
                    raise self._too_big(view, path)
            node.value = value
            node.generation = self.store.bump()
            view.store_node(path, node)
            view.fire(path, False, node)
        conn.reply(Op.WRITE, req_id, tx_id, OK)

    def op_mkdir(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
        path = self.path_arg(conn, payload)
        view = txn or self.glob
        node = view.read(path)
        if node is None:
            self._create(view, conn, path, b"")
        elif not (conn.privileged or perm_for(conn, node.perms, node.ignored) & WRITE):
            raise self._refuse(view, conn, path, True, WRITE)
        conn.reply(Op.MKDIR, req_id, tx_id, OK)

    def _create(self, view: View, conn: Connection, path: str, value: bytes) -> None:
        """Create the missing node ``path`` and any missing ancestors (4.17's
        construct_node/create_node), then fire its watches.

        A guest needs write access to the nearest existing ancestor (§5); inside a
        transaction that lookup is made for dom0 too (its reads are touches). New nodes copy
        the parent's ACL; an unprivileged creator becomes their owner. The checks and
        generations follow 4.17's bottom-up write order: node quota before each new node,
        then its size; finally the existing parent, with the new child, is sized.
        """
        if not conn.privileged or view.in_transaction:
            refusal = self._refuse(view, conn, path, False, WRITE)
            if not isinstance(refusal, ENOENT):
                raise refusal
        store = self.store
        names = [path]
        top_parent_path = parent_of(path)
        top_parent = view.read(top_parent_path)
        while top_parent is None:
            if top_parent_path == "/":
                raise EIO("the root node is missing")
            names.append(top_parent_path)
            top_parent_path = parent_of(top_parent_path)
            top_parent = view.read(top_parent_path)
        perms = top_parent.perms
        ignored = top_parent.ignored
        unprivileged = not conn.privileged
        if unprivileged:
            perms = (Perm(perms[0].access, conn.domid), *perms[1:])
        generations: list[int] = []
        if unprivileged:
            quotas = self.quotas
            count = store.owned_by(conn.domid)
            deferred = view.in_transaction
            base = record_size(len(perms), 0, 0)
            for level in range(len(names)):
                if (count if deferred else count + level) >= quotas.nodes:
                    raise ENOSPC("node quota exceeded", path=path)
                # the new leaf holds the value; each new ancestor, one child name
                extra = len(value) if level == 0 else len(basename(names[level - 1])) + 1
                if base + extra >= quotas.node_size:
                    raise self._too_big(view, path)
                generations.append(store.bump())
            if top_parent.size(extra_child=basename(names[-1])) >= quotas.node_size:
                raise self._too_big(view, top_parent_path)
            generations.append(store.bump())
        else:
            generations = [store.bump() for _ in range(len(names) + 1)]
        # Apply, in 4.17's (bottom-up) write order.
        new_nodes = []
        for level in range(len(names)):
            node = Node(value if level == 0 else b"", perms, None, generations[level], ignored)
            if level:
                node.add_child(basename(names[level - 1]))
            new_nodes.append(node)
            view.store_node(names[level], node)
        top_parent.add_child(basename(names[-1]))
        top_parent.generation = generations[-1]
        view.store_node(top_parent_path, top_parent)
        owner = perms[0].domid
        self._touch_domain(owner)
        view.account(owner, len(names))
        parent = new_nodes[1] if len(names) > 1 else top_parent
        view.fire(path, False, new_nodes[0], None, parent)

    def op_rm(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
              txn: Transaction | None) -> None:
        path = self.path_arg(conn, payload)
        view = txn or self.glob
        try:
            node = self.get_node(view, conn, path, WRITE)
        except ENOENT:
            # Missing: fine if the parent exists (§2).
            if view.read(parent_of(path)) is not None:
                conn.reply(Op.RM, req_id, tx_id, OK)
                return
            raise
        if path == "/":
            raise EINVAL("cannot remove /")
        self._rm(view, path, node)
        conn.reply(Op.RM, req_id, tx_id, OK)

    def _rm(self, view: View, root: str, root_node: Node) -> None:
        """Remove a subtree (4.17's rm_node): post-order; each descendant fires an exact
        event, the root a normal one; every delete and child-list update takes a
        generation."""
        store = self.store
        parent_path = parent_of(root)
        parent = view.read(parent_path)
        if parent is None:
            raise EINVAL("parent missing", path=root)
        stack: list[tuple[str, Node, list[str], int]] = [
            (root, root_node, list(root_node.children), 0)]
        while stack:
            path, node, names, index = stack[-1]
            if index < len(names):
                stack[-1] = (path, node, names, index + 1)
                child_path = join(path, names[index])
                child = view.read(child_path)
                if child is None:
                    raise EIO("child missing", path=child_path)
                stack.append((child_path, child, list(child.children), 0))
                continue
            stack.pop()
            store.bump()
            view.remove_node(path)
            in_walk_parent = stack[-1][1] if stack else None
            view.fire(path, bool(stack), node, None, in_walk_parent)
            view.account(node.owner, -1)
            if in_walk_parent is not None:
                in_walk_parent.remove_child(basename(path))
                in_walk_parent.generation = store.bump()
                view.store_node(stack[-1][0], in_walk_parent)
        if not parent.remove_child(basename(root)):
            raise EIO("child not in parent's list", path=root)
        parent.generation = store.bump()
        view.store_node(parent_path, parent)

    def op_set_perms(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                     txn: Transaction | None) -> None:
        args = split_args(payload)
        if len(args) < 2:
            raise EINVAL("SET_PERMS needs a path and at least one permission")
        raw_path, *entries = args
        if not conn.privileged and len(entries) > self.quotas.permissions:
            raise ENOSPC("too many permissions")
        perms = parse_acl(entries)
        for entry in perms:
            self._touch_domain(entry.domid)
        if not self.domains.exists(perms[0].domid & 0xFFFFFFFF):
            raise ENOENT("owner domain does not exist")
        if raw_path.startswith(b"@"):
            self._set_special_perms(conn, raw_path.decode("latin-1"), perms)
            conn.reply(Op.SET_PERMS, req_id, tx_id, OK)
            return
        path = self.path_arg(conn, raw_path + b"\0")
        view = txn or self.glob
        node = self.get_node(view, conn, path, WRITE | OWNER)
        owner = perms[0].domid
        if not conn.privileged:
            if owner != node.owner:
                raise EPERM("only a privileged domain may change the owner", path=path)
            if (record_size(len(perms), len(node.value), node.childlen)
                    >= self.quotas.node_size):
                raise self._too_big(view, path)
        old = (node.perms, node.ignored)
        if owner != node.owner:
            view.account(node.owner, -1)
            view.account(owner, 1)
        node.perms = perms
        node.ignored = None
        node.generation = self.store.bump()
        view.store_node(path, node)
        view.fire(path, False, node, old)
        conn.reply(Op.SET_PERMS, req_id, tx_id, OK)

    def _set_special_perms(self, conn: Connection, name: str, perms: ACL) -> None:
        # 4.17 answers a stale errno for both failures (§1.2); EINVAL / EACCES here.
        current = self.special.get(name)
        if current is None:
            raise EINVAL(f"no special node {name!r}")
        if perm_for(conn, current) & (WRITE | OWNER) != WRITE | OWNER:
            raise EACCES(path=name)
        self.special[name] = perms

    # =====================================================================================
    # watches
    # =====================================================================================
    def op_watch(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
        args = split_args(payload)
        if len(args) != 2:
            raise EINVAL("WATCH takes a path and a token")
        raw_path, token = args
        text = raw_path.decode("latin-1")
        special = is_special(text)
        if special:
            if len(text) > REL_PATH_MAX:
                raise EINVAL("watch path too long")
            path, strip = text, 0
        else:
            path = validate(text, conn.home, path_max=self.quotas.path_max)
            strip = 0 if text.startswith("/") else len(conn.home) + 1
        key = (path, token)
        if key in conn.watches:
            raise EEXIST(path=path)
        domain = conn.domain
        if not conn.privileged and domain.watch_count > self.quotas.watches:
            raise E2BIG("too many watches")
        watch = Watch(path, token, strip)
        self.hub.add(conn, watch)
        if not conn.privileged:
            domain.watch_count += 1
        conn.reply(Op.WATCH, req_id, tx_id, OK)
        conn.event(watch.payload(path), special=special)

    def op_unwatch(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                   txn: Transaction | None) -> None:
        args = split_args(payload)
        if len(args) != 2:
            raise EINVAL("UNWATCH takes a path and a token")
        path = canonicalize(args[0].decode("latin-1"), conn.home)
        if self.hub.remove(conn, (path, args[1])) is None:
            raise ENOENT(path=path)
        if not conn.privileged and conn.domain.watch_count:
            conn.domain.watch_count -= 1
        conn.reply(Op.UNWATCH, req_id, tx_id, OK)

    def op_reset_watches(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                         txn: Transaction | None) -> None:
        self._reset_connection(conn)
        conn.reply(Op.RESET_WATCHES, req_id, tx_id, OK)

    # =====================================================================================
    # transactions
    # =====================================================================================
    def op_transaction_start(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                             txn: Transaction | None) -> None:
        if txn is not None:
            raise EBUSY("transactions do not nest")
        domain = conn.domain
        if not conn.privileged and domain.transaction_count > self.quotas.transactions:
            raise ENOSPC("too many transactions")
        new_id = conn.next_tx_id
        while new_id == 0 or new_id in conn.transactions:
            new_id = (new_id + 1) & 0xFFFFFFFF
        conn.next_tx_id = (new_id + 1) & 0xFFFFFFFF
        conn.transactions[new_id] = Transaction(new_id, self.store, self.quotas,
                                                limited=not conn.privileged)
        if not conn.privileged:
            domain.transaction_count += 1
        conn.reply(Op.TRANSACTION_START, req_id, tx_id, b"%d\0" % new_id)

    def op_transaction_end(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                           txn: Transaction | None) -> None:
        arg = onearg(payload)
        if arg != b"T" and arg != b"F":
            raise EINVAL("TRANSACTION_END takes T or F")
        if txn is None:
            raise ENOENT("no transaction")
        del conn.transactions[txn.id]
        if not conn.privileged and conn.domain.transaction_count:
            conn.domain.transaction_count -= 1
        if arg == b"T":
            self.commit(txn)
        conn.reply(Op.TRANSACTION_END, req_id, tx_id, OK)

    def commit(self, txn: Transaction) -> None:
        """ENOMEM if failed, ENOSPC over a node quota, EAGAIN on conflict; else apply (§7)."""
        if txn.failed:
            raise ENOMEM("transaction failed")
        store = self.store
        if txn.limited:  # only a guest's commit checks the node quota
            for domid, delta in txn.node_delta.items():
                if domid != 0 and store.owned_by(domid) + delta >= self.quotas.nodes:
                    raise ENOSPC("node quota exceeded at commit")
        if txn.conflicts():
            raise EAGAIN("transaction conflict")
        txn.apply(self.hub)

    # =====================================================================================
    # domains
    # =====================================================================================
    def op_get_domain_path(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                           txn: Transaction | None) -> None:
        arg = onearg(payload)
        if arg is None:
            raise EINVAL("GET_DOMAIN_PATH takes one argument")
        conn.reply(Op.GET_DOMAIN_PATH, req_id, tx_id,
                   home_path(atou(arg)).encode() + b"\0")

    def op_is_domain_introduced(self, conn: Connection, req_id: int, tx_id: int,
                                payload: bytes, txn: Transaction | None) -> None:
        arg = onearg(payload)
        if arg is None:
            raise EINVAL("IS_DOMAIN_INTRODUCED takes one argument")
        answer = b"T\0" if self.domains.is_introduced(atou(arg)) else b"F\0"
        conn.reply(Op.IS_DOMAIN_INTRODUCED, req_id, tx_id, answer)

    def _connected_domain(self, domid: int) -> Domain:
        domain = self.domains.introduced(domid)
        if domain is None:
            raise ENOENT(f"domain {domid} is not introduced")
        if domain.detached:
            raise EINVAL(f"domain {domid} has no connection")
        return domain

    def _onearg_domain(self, payload: bytes) -> Domain:
        arg = onearg(payload)
        if arg is None:
            raise EINVAL("takes one domid")
        domid = atou(arg)
        if domid == 0:
            raise EINVAL("not for domain 0")
        return self._connected_domain(domid)

    def op_introduce(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                     txn: Transaction | None) -> None:
        args = split_args(payload)
        if len(args) < 3:
            raise EINVAL("INTRODUCE takes domid, gfn and port")
        domid = atou(args[0])
        port = atou(args[2])
        if port == 0:
            raise EINVAL("bad event channel port")
        self.introduce(domid, port)
        conn.reply(Op.INTRODUCE, req_id, tx_id, OK)

    def introduce(self, domid: int, port: int = 1) -> Domain:
        """INTRODUCE: a new domain gets served and fires @introduceDomain; an introduced one
        has its connections reset (§8)."""
        domain = self._touch_domain(domid)
        if domain.introduced:
            domain.port = port
            if domid != 0:
                for member in domain.connections:
                    self._reset_connection(member)
                    member.discard_output()
            return domain
        try:
            self.transport.open_domain(domid)
        except OSError as exc:
            log.error("cannot serve domain", domid=domid, error=str(exc))
            raise EINVAL(f"cannot serve domain {domid}: {exc}") from exc
        domain.introduced = True
        domain.shutdown = False
        domain.port = port
        log.info("domain introduced", domid=domid)
        self.hub.fire_special(INTRODUCE_DOMAIN)
        return domain

    def op_release(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                   txn: Transaction | None) -> None:
        domain = self._onearg_domain(payload)
        if domain.held_by:
            # 4.17: freeing a connection another one references only drops that reference.
            domain.held_by.pop()
        else:
            self.destroy_domain(domain)
        conn.reply(Op.RELEASE, req_id, tx_id, OK)

    def op_resume(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                  txn: Transaction | None) -> None:
        domain = self._onearg_domain(payload)
        domain.shutdown = False
        conn.reply(Op.RESUME, req_id, tx_id, OK)

    def op_set_target(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                      txn: Transaction | None) -> None:
        args = split_args(payload)
        if len(args) < 2:
            raise EINVAL("SET_TARGET takes domid and target domid")
        domain = self._connected_domain(atou(args[0]))
        target = self._connected_domain(atou(args[1]))
        domain.target = target.domid
        target.held_by.append(domain.domid)
        conn.reply(Op.SET_TARGET, req_id, tx_id, OK)

    def destroy_domain(self, domain: Domain) -> None:
        """RELEASE or death: drop its connections, delete the nodes it owns (unless
        keep_orphans), take it out of the special ACLs, fire @releaseDomain."""
        domid = domain.domid
        domain.introduced = False
        for other in self.domains.table.values():
            if domid in other.held_by:
                other.held_by = [d for d in other.held_by if d != domid]
        self._close_connections(domain)
        if self.keep_orphans:
            self._chown_orphans(domid)
        else:
            self._remove_owned(domid)
        for name, acl in self.special.items():
            self.special[name] = _without_domid(acl, domid)
        self.domains.remove(domid)
        self._ignore_domid(domid)
        log.info("domain destroyed", domid=domid)
        self.hub.fire_special(RELEASE_DOMAIN)

    def _close_connections(self, domain: Domain) -> None:
        for member in list(domain.connections):
            self.disconnect(member)
        self.transport.close_domain(domain.domid)

    def _remove_owned(self, domid: int) -> None:
        """Pre-order walk from /; each subtree whose root the domain owns is removed."""
        store = self.store
        nodes = store.nodes
        pending = ["/"]
        while pending and store.owned_by(domid) > 0:
            path = pending.pop()
            node = nodes.get(path)
            if node is None:
                continue
            if node.owner == domid:
                try:
                    self._rm(self.glob, path, node)
                except XenStoreError as exc:
                    log.error("cannot delete orphaned node", path=path, error=str(exc))
                continue
            pending.extend(join(path, name) for name in reversed(list(node.children)))

    def _chown_orphans(self, domid: int) -> None:
        for node in self.store.nodes.values():
            if node.owner == domid:
                node.perms = (Perm(node.perms[0].access, 0), *node.perms[1:])
                self.store.account(domid, -1)
                self.store.account(0, 1)

    def _ignore_domid(self, domid: int) -> None:
        """ACL entries naming a vanished domain grant nothing from now on (sticky)."""
        for node in self.store.nodes.values():
            perms = node.perms
            for index in range(1, len(perms)):
                if perms[index].domid & 0xFFFFFFFF == domid:
                    node.ignored = frozenset(node.ignored or ()) | {index}

    def set_domain_state(self, domid: int, state: str) -> None:
        """The simulated hypervisor changed a domain's state (4.17's VIRQ_DOM_EXC handling):
        shutdown/crashed fire @releaseDomain once (until RESUME); dying/gone destroy it."""
        if state not in HYPERVISOR_STATES:
            raise EINVAL(f"unknown domain state {state!r}")
        if domid == 0:
            raise EINVAL("domain 0 cannot change state")
        self.domains.states[domid] = state
        domain = self.domains.get(domid)
        if domain is None:
            return
        if not domain.introduced:
            if state == "gone":
                self.domains.remove(domid)
                self._ignore_domid(domid)
            return
        if state in ("dying", "gone"):
            if domain.held_by:
                # 4.17 keeps a referenced connection (and so the domain) alive, but cut off
                # from the guest: no events, nothing deleted; RELEASE etc. answer EINVAL.
                domain.detached = True
                self._close_connections(domain)
            elif not domain.detached:
                self.destroy_domain(domain)
        elif state in ("shutdown", "crashed") and not domain.shutdown:
            domain.shutdown = True
            self.hub.fire_special(RELEASE_DOMAIN)

    # =====================================================================================
    # control
    # =====================================================================================
    def op_control(self, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                   txn: Transaction | None) -> None:
        if b"\0" not in payload:
            raise EINVAL("CONTROL needs a command")
        reply = handle_control(self, conn, split_args(payload))
        conn.reply(Op.CONTROL, req_id, tx_id, reply)


def _without_domid(acl: ACL, domid: int) -> ACL:
    """4.17's remove_domid_from_perm: the owner becomes dom0, other entries go."""
    owner = acl[0]
    if owner.domid & 0xFFFFFFFF == domid:
        owner = Perm(owner.access, 0)
    return (owner, *(p for p in acl[1:] if p.domid & 0xFFFFFFFF != domid))
