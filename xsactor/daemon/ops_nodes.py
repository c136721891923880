"""Requests on nodes: READ, DIRECTORY, DIRECTORY_PART, GET_PERMS, WRITE, MKDIR, RM, SET_PERMS.

Each handler is ``op_<name>(xs, conn, req_id, tx_id, payload, txn)``; it runs against the
transaction's view when ``txn`` is given, else the global tree. :func:`create` and
:func:`remove` are 4.17's construct_node/create_node and rm_node, also used when a domain's
nodes go (``ops_domains``). Section numbers refer to ``xenstore-semantics.md``.
"""

from __future__ import annotations

from ..protocol.errors import EACCES, EINVAL, EIO, ENOENT, ENOSPC, EPERM
from ..protocol.ops import PAYLOAD_MAX, Op
from ..protocol.packets import split_args
from ..protocol.paths import basename, join
from ..protocol.paths import parent as parent_of
from ..protocol.perms import ACL, Perm, parse_acl
from .access import OWNER, READ, WRITE, perm_for, void_entries
from .connection import Connection
from .cparse import atou
from .state import OK, State, View
from .store import GENERATION_BYTES, Node, pack_generation, record_size
from .transactions import Transaction

_READ = int(Op.READ)
_DIRECTORY = int(Op.DIRECTORY)
_CACHED_MAX = PAYLOAD_MAX + GENERATION_BYTES
"""The longest stored value :func:`cached_answer` reads (a longer one is E2BIG)."""


# -- reading ---------------------------------------------------------------------------------
def cached_answer(xs: State, conn: Connection, op: int, payload: bytes) -> bytes | None:
    """The reply's payload to a READ, DIRECTORY or GET_PERMS (:data:`CACHED_OPS`) outside a
    transaction, without the engine's dispatch (the sockets answer a lone request with it):
    when the path cache knows the path argument, the tree remembers its lookup and ``conn``
    may read the node. None for anything else, which the engine answers (filling both
    caches)."""
    path = xs.path_cache.known(conn.home, payload)
    node = None if path is None else xs.store.nodes.lookups.get(path)
    if node is None or not (conn.privileged or xs.rights(conn, node) & READ):
        return None
    if op == _READ:
        data = node.data  # node.value, inlined
        if type(data) is not bytes:
            return b""
        return data[:-GENERATION_BYTES] if len(data) <= _CACHED_MAX else None
    reply = node.child_blob() if op == _DIRECTORY else xs.store.perms_payload(node.perms)
    return reply if len(reply) <= PAYLOAD_MAX else None


CACHED_OPS = frozenset(int(op) for op in (Op.READ, Op.DIRECTORY, Op.GET_PERMS))
"""The requests :func:`cached_answer` answers: those that read one node and change nothing."""


def op_read(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
            txn: Transaction | None) -> None:
    node = xs.get_node(txn or xs.glob, conn, xs.path_arg(conn, payload), READ)
    conn.reply(Op.READ, req_id, tx_id, node.value)


def op_directory(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
    node = xs.get_node(txn or xs.glob, conn, xs.path_arg(conn, payload), READ)
    conn.reply(Op.DIRECTORY, req_id, tx_id, node.child_blob())


def op_directory_part(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                      txn: Transaction | None) -> None:
    # §1.1: exactly two strings; the offset is atoi'd into an unsigned int.
    if payload.count(b"\0") != 2:
        raise EINVAL("DIRECTORY_PART takes a path and an offset")
    raw_path, raw_offset, _ = payload.split(b"\0")
    node = xs.get_node(txn or xs.glob, conn, xs.path_arg(conn, raw_path + b"\0"), READ)
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


def op_get_perms(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
    node = xs.get_node(txn or xs.glob, conn, xs.path_arg(conn, payload), READ)
    conn.reply(Op.GET_PERMS, req_id, tx_id, xs.store.perms_payload(node.perms))


# -- writing ---------------------------------------------------------------------------------
def op_write(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
             txn: Transaction | None) -> None:
    cut = payload.find(b"\0")
    if cut < 0:
        raise EINVAL("WRITE needs a path and a NUL")
    path = xs.path_arg(conn, payload[:cut + 1])
    value = payload[cut + 1:]
    node = xs.store.nodes.get(path) if txn is None else txn.read(path)
    if node is None:
        create(xs, txn or xs.glob, conn, path, value)
    else:
        update(xs, conn, txn, path, node, value)
    conn.reply(Op.WRITE, req_id, tx_id, OK)


def cached_write(xs: State, conn: Connection, payload: bytes) -> bool:
    """WRITE's common case outside a transaction, without the engine's dispatch (the engine
    answers a lone request with it): an existing node whose path argument the path cache
    knows and whose lookup the tree remembers is updated (:func:`update`; its errors are
    raised) and True returned, the reply left to the caller. False for anything else, which
    :func:`op_write` answers (filling both caches)."""
    cut = payload.find(b"\0")
    path = None if cut < 0 else xs.path_cache.known(conn.home, payload[:cut + 1])
    if path is None:
        return False
    node = xs.store.nodes.lookups.get(path)
    if node is None:
        return False
    update(xs, conn, None, path, node, payload[cut + 1:])
    return True


def update(xs: State, conn: Connection, txn: Transaction | None, path: str, node: Node,
           value: bytes) -> None:
    """Give the existing ``node`` at ``path`` the value ``value`` (4.17's write of a node
    that exists): the caller's right to write and the node-size quota, then the new value and
    generation, then the events."""
    if not conn.privileged:
        if not xs.rights(conn, node) & WRITE:
            raise xs.refuse(txn or xs.glob, conn, path, True, WRITE)
        if record_size(len(node.perms), len(value), node.childlen) >= xs.quotas.node_size:
            raise xs.too_big(txn or xs.glob, path)
    xs.keep_void(node)
    # the new value and generation in ``data`` (see Node), and outside a transaction the
    # view's calls inlined: a hot request
    generation = xs.store.bump()
    node.data = value + pack_generation(generation) if value else generation
    if txn is None:
        xs.store.nodes[path] = node
        xs.hub.fire(path, False, node)
    else:
        txn.store_node(path, node)
        txn.fire(path, False, node)


def op_mkdir(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
             txn: Transaction | None) -> None:
    path = xs.path_arg(conn, payload)
    view = txn or xs.glob
    node = view.read(path)
    if node is None:
        create(xs, view, conn, path, b"")
    elif not (conn.privileged or xs.rights(conn, node) & WRITE):
        raise xs.refuse(view, conn, path, True, WRITE)
    conn.reply(Op.MKDIR, req_id, tx_id, OK)


def create(xs: State, view: View, conn: Connection, path: str, value: bytes) -> None:
    """Create the missing node ``path`` and any missing ancestors (4.17's
    construct_node/create_node), then fire its watches.

    A guest needs write access to the nearest existing ancestor (§5); inside a
    transaction that lookup is made for dom0 too (its reads are touches). New nodes copy
    the parent's ACL; an unprivileged creator becomes their owner. The checks and
    generations follow 4.17's bottom-up write order: node quota before each new node,
    then its size; finally the existing parent, with the new child, is sized.
    """
    if not conn.privileged or view.in_transaction:
        refusal = xs.refuse(view, conn, path, False, WRITE)
        if not isinstance(refusal, ENOENT):
            raise refusal
    if isinstance(view, Transaction):
        view.node_created = True  # before the quota checks, as 4.17 (commit checks quota)
    store = xs.store
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
    # the new nodes copy its ACL as read, with the entries judged void flagged
    ignored = void_entries(perms, top_parent.ignored, top_parent.generation, xs.domains.table)
    unprivileged = not conn.privileged
    if unprivileged:
        perms = store.share((Perm(perms[0].access, conn.domid), *perms[1:]))
    generations: list[int] = []
    if unprivileged:
        quotas = xs.quotas
        count = store.owned_by(conn.domid)
        deferred = view.in_transaction
        base = record_size(len(perms), 0, 0)
        for level in range(len(names)):
            if (count if deferred else count + level) >= quotas.nodes:
                raise ENOSPC("node quota exceeded", path=path)
            # the new leaf holds the value; each new ancestor, one child name
            extra = len(value) if level == 0 else len(basename(names[level - 1])) + 1
            if base + extra >= quotas.node_size:
                raise xs.too_big(view, path)
            generations.append(store.bump())
        if top_parent.size(extra_child=basename(names[-1])) >= quotas.node_size:
            raise xs.too_big(view, top_parent_path)
        generations.append(store.bump())
    else:
        generations = [store.bump() for _ in range(len(names) + 1)]
    # Apply, in 4.17's (bottom-up) write order.
    new_nodes = []
    for level in range(len(names)):
        node = Node(value if level == 0 else b"", perms, generations[level], ignored)
        if level:
            node.add_child(basename(names[level - 1]))
        new_nodes.append(node)
        view.store_node(names[level], node)
    top_parent.ignored = ignored
    # 4.17 appends the name unlooked: a transaction's stale copy may list it already
    top_parent.add_child(basename(names[-1]), repeat=view.in_transaction)
    top_parent.generation = generations[-1]
    view.store_node(top_parent_path, top_parent)
    owner = perms[0].domid
    xs.touch_domain(owner)
    view.account(owner, len(names))
    parent = new_nodes[1] if len(names) > 1 else top_parent
    view.fire(path, False, new_nodes[0], None, parent)


def op_rm(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
          txn: Transaction | None) -> None:
    path = xs.path_arg(conn, payload)
    view = txn or xs.glob
    try:
        node = xs.get_node(view, conn, path, WRITE)
    except ENOENT:
        # Missing: fine if the parent exists (§2).
        if view.read(parent_of(path)) is not None:
            conn.reply(Op.RM, req_id, tx_id, OK)
            return
        raise
    if path == "/":
        raise EINVAL("cannot remove /")
    remove(xs, view, path, node)
    conn.reply(Op.RM, req_id, tx_id, OK)


def remove(xs: State, view: View, root: str, root_node: Node) -> None:
    """Remove a subtree (4.17's rm_node): post-order; each descendant fires an exact
    event, the root a normal one; every delete and child-list update takes a
    generation."""
    store = xs.store
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
            try:
                child = view.read(child_path)
            except ENOSPC:  # the transaction-nodes quota (the transaction is failed)
                child = None
            if child is None:  # 4.17's delete_node gives up on any child it cannot read
                raise EIO("cannot read a child", path=child_path)
            stack.append((child_path, child, list(child.children), 0))
            continue
        stack.pop()
        store.bump()
        view.remove_node(path)
        in_walk_parent = stack[-1][1] if stack else None
        view.fire(path, bool(stack), node, None, in_walk_parent)
        view.account(node.owner, -1)
        if in_walk_parent is not None:
            xs.keep_void(in_walk_parent)
            in_walk_parent.remove_child(basename(path))
            in_walk_parent.generation = store.bump()
            view.store_node(stack[-1][0], in_walk_parent)
    if not parent.remove_child(basename(root)):
        raise EIO("child not in parent's list", path=root)
    xs.keep_void(parent)
    parent.generation = store.bump()
    view.store_node(parent_path, parent)


def op_set_perms(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
    args = split_args(payload)
    if len(args) < 2:
        raise EINVAL("SET_PERMS needs a path and at least one permission")
    raw_path, *entries = args
    if not conn.privileged and len(entries) > xs.quotas.permissions:
        raise ENOSPC("too many permissions")
    perms = parse_acl(entries)
    # 4.17 makes the records before anything can refuse (domain_alloc_permrefs): a refused
    # request makes them too, and their age decides the order domains are checked in.
    ignored = _alloc_permrefs(xs, perms)
    if 0 in ignored:
        raise ENOENT("owner domain does not exist")
    if raw_path.startswith(b"@"):
        # A special ACL's ignored entries can never be read back (GET_PERMS refuses @
        # paths) and never grant anything: keep it without them.
        _set_special_perms(xs, conn, raw_path.decode("latin-1"),
                           tuple(p for i, p in enumerate(perms) if i not in ignored))
        conn.reply(Op.SET_PERMS, req_id, tx_id, OK)
        return
    path = xs.path_arg(conn, raw_path + b"\0")
    view = txn or xs.glob
    node = xs.get_node(view, conn, path, WRITE | OWNER)
    owner = perms[0].domid
    if not conn.privileged:
        if owner != node.owner:
            raise EPERM("only a privileged domain may change the owner", path=path)
        if (record_size(len(perms), node.value_len, node.childlen)
                >= xs.quotas.node_size):
            raise xs.too_big(view, path)
    old = (node.perms, node.ignored, node.generation)
    # 4.17 takes the node from its old owner's count and gives it to the new one, the same
    # or not: in a transaction both count as touched (the commit's quota check sees them).
    view.account(node.owner, -1)
    view.account(owner, 1)
    node.perms = xs.store.share(perms)
    node.ignored = ignored or None
    node.generation = xs.store.bump()
    view.store_node(path, node)
    view.fire(path, False, node, old)
    conn.reply(Op.SET_PERMS, req_id, tx_id, OK)


def _alloc_permrefs(xs: State, perms: ACL) -> frozenset[int]:
    """4.17's domain_alloc_permrefs: an entry names a valid domain if the daemon has a record
    for it, or else if the hypervisor knows it (a record is made for it then); the indexes of
    the others, which are kept but grant nothing (an unknown owner is ENOENT)."""
    domains = xs.domains
    unknown = []
    for index, entry in enumerate(perms):
        domid = entry.domid & 0xFFFFFFFF
        if domains.get(domid) is not None or domains.exists(domid):
            xs.touch_domain(domid)
        else:
            unknown.append(index)
    return frozenset(unknown)


def _set_special_perms(xs: State, conn: Connection, name: str, perms: ACL) -> None:
    # 4.17 answers a stale errno for both failures (§1.2); EINVAL / EACCES here.
    current = xs.special.get(name)
    if current is None:
        raise EINVAL(f"no special node {name!r}")
    if perm_for(conn, current) & (WRITE | OWNER) != WRITE | OWNER:
        raise EACCES(path=name)
    xs.special[name] = perms
