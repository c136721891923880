"""The tree: nodes (value, ACL, ordered children, generation), looked up by absolute path.

Mirrors the records of 4.17's TDB: a node's stored size is ``24 + 8*nperms + datalen +
childlen`` (the record header, the permission array, the value, the NUL-separated child
names), which is what the node-size quota measures. ``generation`` is 4.17's global
modification counter: every write or delete of a node takes the next value (see
:meth:`Store.bump`), and DIRECTORY_PART and transaction conflict detection read it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from struct import Struct
from sys import intern

from ..protocol.paths import join
from ..protocol.perms import ACL, Access, Perm, acl_payload

NO_GENERATION = -1
"""Recorded for a node that did not exist (4.17's ``NO_GENERATION``)."""

RECORD_HEADER = 24
PERM_SIZE = 8


def record_size(nperms: int, datalen: int, childlen: int) -> int:
    """The stored size of a node record (what the node-size quota measures)."""
    return RECORD_HEADER + PERM_SIZE * nperms + datalen + childlen


ROOT_ACL: ACL = (Perm(Access.NONE, 0),)
LOOKUPS_BUDGET = 1 << 20
"""Bytes of path lookups a :class:`Tree` remembers (then it starts afresh)."""
LOOKUP_COST = 120
"""What one remembered lookup costs beyond its path's characters (dict slot, str header)."""
SHARED_ACLS_MAX = 4096
"""How many distinct ACLs :meth:`Store.share` remembers (then it starts afresh)."""
GET_PERMS_ENTRY_MAX = 11
"""4.17 prints each GET_PERMS entry into a 12-byte buffer: ``r-2147483648`` loses its tail."""
PERMS_PAYLOADS_BUDGET = 256 << 10
"""Bytes of GET_PERMS payloads :meth:`Store.perms_payload` remembers (then it starts afresh)."""
PERMS_PAYLOAD_COST = 100
"""What one remembered payload costs beyond its bytes and its ACL's slots (dict slot, tuples,
bytes header)."""


class Children:
    """A directory's child names in creation order (interned: the same names recur under many
    parents), their stored size and, once asked for, the DIRECTORY payload.

    In the tree, each name maps to the child's node (None while the child is listed but not
    stored); in a transaction's copy those links are stale and never followed: the
    :class:`Tree` relinks a copy when it is committed."""

    __slots__ = ("blob", "names", "size")

    def __init__(self) -> None:
        self.names: dict[str, Node | None] = {}
        self.size = 0
        self.blob: bytes | None = None

    def copy(self) -> Children:
        clone = Children.__new__(Children)
        clone.names = self.names.copy()
        clone.size = self.size
        clone.blob = self.blob
        return clone

    def listing(self) -> Collection[str]:
        """The names as the node's record lists them, in order."""
        return self.names


class RepeatedChildren(Children):
    """A child list naming a child more than once: 4.17 appends a new child's name to its
    parent's list without looking, and a transaction's copy of the parent may still list a
    child that was removed outside the transaction since. Such a transaction cannot commit
    (the parent changed outside it); until it ends, its DIRECTORY shows the name twice and
    its RM meets the second one as a child it cannot read. ``order`` is the list as 4.17
    keeps it; removing a name takes its first occurrence."""

    __slots__ = ("order",)

    def __init__(self, kids: Children) -> None:
        self.names = kids.names
        self.size = kids.size
        self.blob = None
        self.order = list(kids.names)

    def copy(self) -> RepeatedChildren:
        clone = RepeatedChildren(self)
        clone.names = self.names.copy()
        clone.order = self.order.copy()
        return clone

    def listing(self) -> Collection[str]:
        return self.order


class IgnoringACL(tuple[Perm, ...]):
    """An ACL some of whose entries are flagged void (4.17's ``XS_PERM_IGNORE``): those a
    check found void when the node was written (:func:`~xsactor.daemon.access.void_entries`).
    ``ignored`` holds their indexes; they stay visible in GET_PERMS but grant nothing. Rare,
    so it lives in the ACL rather than in a slot of every node."""

    ignored: frozenset[int]


def with_ignored(perms: ACL, ignored: frozenset[int] | None) -> ACL:
    """``perms`` with the entries at ``ignored`` flagged (none: a plain tuple)."""
    if not ignored:
        return perms if type(perms) is tuple else tuple(perms)
    if getattr(perms, "ignored", None) == ignored:
        return perms
    acl = IgnoringACL(perms)
    acl.ignored = ignored
    return acl


GENERATION_BYTES = 8
"""A node with a value keeps its generation in the value's bytes object, after the value."""
pack_generation = Struct("<Q").pack
"""The :data:`GENERATION_BYTES` stored after a value for a generation."""


class Node:
    """One node. Mutable: the global tree mutates nodes in place; a transaction works on copies.

    Kept small (there is one per node, and a leaf is most nodes): three slots (a fourth
    would take CPython's allocator to the next 16-byte size class); a leaf has no
    :class:`Children` (``kids`` is None); nodes made alike share one ACL tuple, which also
    carries the rare ignored entries (:class:`IgnoringACL`); and ``data`` is the generation
    alone (an int) for an empty value, else one bytes object, the value followed by the
    generation in :data:`GENERATION_BYTES` little-endian bytes (no int object per node).
    """

    __slots__ = ("data", "kids", "perms")

    def __init__(self, value: bytes = b"", perms: ACL = ROOT_ACL, generation: int = 0,
                 ignored: frozenset[int] | None = None) -> None:
        self.data: bytes | int = value + pack_generation(generation) if value else generation
        self.perms = with_ignored(perms, ignored)
        self.kids: Children | None = None

    def copy(self) -> Node:
        clone = Node.__new__(Node)
        clone.data = self.data
        clone.perms = self.perms
        clone.kids = None if self.kids is None else self.kids.copy()
        return clone

    @property
    def value(self) -> bytes:
        data = self.data
        return b"" if isinstance(data, int) else data[:-GENERATION_BYTES]

    @property
    def generation(self) -> int:
        data = self.data
        if isinstance(data, int):
            return data
        return int.from_bytes(data[-GENERATION_BYTES:], "little")

    @generation.setter
    def generation(self, generation: int) -> None:
        data = self.data
        self.data = (generation if isinstance(data, int) else
                     data[:-GENERATION_BYTES] + pack_generation(generation))

    @property
    def value_len(self) -> int:
        data = self.data
        return 0 if isinstance(data, int) else len(data) - GENERATION_BYTES

    @property
    def ignored(self) -> frozenset[int] | None:
        """The indexes of the ACL entries flagged void when the node was written (see
        :class:`IgnoringACL`); an entry whose domain record is missing or newer than the
        node grants nothing either (:mod:`xsactor.daemon.access`)."""
        return getattr(self.perms, "ignored", None)

    @ignored.setter
    def ignored(self, ignored: frozenset[int] | None) -> None:
        self.perms = with_ignored(self.perms, ignored)

    @property
    def owner(self) -> int:
        return self.perms[0].domid

    @property
    def children(self) -> Collection[str]:
        """The child names, in creation order."""
        return () if self.kids is None else self.kids.listing()

    @property
    def childlen(self) -> int:
        """The stored size of the child names (each with its NUL)."""
        return 0 if self.kids is None else self.kids.size

    def size(self, *, extra_child: str | None = None) -> int:
        """The stored record size (optionally as if ``extra_child`` were added)."""
        size = record_size(len(self.perms), self.value_len, self.childlen)
        if extra_child is not None:
            size += len(extra_child) + 1
        return size

    def child_blob(self) -> bytes:
        """The children as DIRECTORY sends them: each name followed by NUL."""
        kids = self.kids
        if kids is None:
            return b""
        blob = kids.blob
        if blob is None:
            blob = kids.blob = "".join(name + "\0" for name in kids.listing()).encode("latin-1")
        return blob

    def add_child(self, name: str, *, repeat: bool = False) -> None:
        """List ``name`` (once, unless ``repeat``: then a name already listed is appended
        again, as 4.17 does; see :class:`RepeatedChildren`)."""
        kids = self.kids
        if kids is None:
            kids = self.kids = Children()
        name = intern(name)
        if name in kids.names:
            if not repeat:
                return
            if not isinstance(kids, RepeatedChildren):
                kids = self.kids = RepeatedChildren(kids)
        else:
            kids.names[name] = None
        if isinstance(kids, RepeatedChildren):
            kids.order.append(name)
        kids.size += len(name) + 1
        kids.blob = None

    def remove_child(self, name: str) -> bool:
        """Unlist ``name`` (its first occurrence); whether it was listed."""
        kids = self.kids
        if kids is None or name not in kids.names:
            return False
        if isinstance(kids, RepeatedChildren):
            kids.order.remove(name)
            if name not in kids.order:
                del kids.names[name]
        else:
            del kids.names[name]
        kids.size -= len(name) + 1
        kids.blob = None
        if not kids.names:
            self.kids = None
        return True

    def __repr__(self) -> str:
        acl = " ".join(str(p) for p in self.perms)
        return (f"Node(value={self.value[:32]!r}, perms={acl!r}, "
                f"children={list(self.children)[:8]!r}, generation={self.generation})")


class Tree:
    """The nodes by path, stored as a tree: a node is reached from its parent's
    :class:`Children` (no path string and no global table entry per node).

    Used as the mapping ``path -> node`` (``get``, ``[]``, ``in``, ``pop``, ``items``...).
    Storing a node links it under its parent if the parent lists its name; otherwise (the
    parent is not stored yet, or does not list it yet: a transaction's commit or a creation
    applies nodes child first) it waits, reachable by its path, until its parent is stored.
    Storing a node in place of another takes over the other's links to its children.

    Lookups of stored nodes are remembered (within :data:`LOOKUPS_BUDGET` bytes), and forgotten
    whenever a node is removed or replaced by another object (the global tree changes nodes
    in place: writes keep them).
    """

    __slots__ = ("lookup_bytes", "lookups", "orphans", "root")

    def __init__(self, root: Node) -> None:
        self.root = root
        self.orphans: dict[str, Node] = {}
        self.lookups: dict[str, Node] = {}
        self.lookup_bytes = 0

    def get(self, path: str, default: Node | None = None) -> Node | None:
        node = self.lookups.get(path)
        if node is not None:
            return node
        node = self.root
        if path != "/":
            for name in path[1:].split("/"):
                kids = node.kids
                node = None if kids is None else kids.names.get(name)
                if node is None:
                    orphans = self.orphans
                    return orphans.get(path, default) if orphans else default
            self.lookup_bytes += len(path) + LOOKUP_COST
            if self.lookup_bytes > LOOKUPS_BUDGET:
                self.forget_lookups()
                self.lookup_bytes = len(path) + LOOKUP_COST
            self.lookups[path] = node
        return node

    def __getitem__(self, path: str) -> Node:
        node = self.get(path)
        if node is None:
            raise KeyError(path)
        return node

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path) is not None

    def __len__(self) -> int:
        """How many nodes are stored (a walk: for reports and tests)."""
        return sum(1 for _ in self.items())

    def __setitem__(self, path: str, node: Node) -> None:
        if self.lookups.get(path) is node and not self.orphans:
            return  # already stored there (a write in place)
        if path == "/":
            old: Node | None = self.root
            self.root = node
        else:
            cut = path.rfind("/")
            parent = self.get(path[:cut] or "/")
            name = path[cut + 1:]
            names = None if parent is None or parent.kids is None else parent.kids.names
            if names is not None and name in names:
                old = names[name]
                names[name] = node
                if old is None:
                    old = self.orphans.pop(path, None)
            else:
                old = self.orphans.get(path)
                self.orphans[path] = node
        if node is not old:
            if old is not None:
                self.forget_lookups()
            if node.kids is not None:
                self._relink(node, old)
        if self.orphans:
            self._adopt(path, node)

    def forget_lookups(self) -> None:
        self.lookups.clear()
        self.lookup_bytes = 0

    def _relink(self, node: Node, old: Node | None) -> None:
        """``node`` replaces ``old``: its children are those stored now."""
        current = None if old is None or old.kids is None else old.kids.names
        names = node.kids.names  # type: ignore[union-attr]
        for name in names:
            names[name] = None if current is None else current.get(name)

    def _adopt(self, path: str, node: Node) -> None:
        """Link the waiting nodes whose parent ``node`` (at ``path``) is, if it lists them."""
        if node.kids is None:
            return
        names = node.kids.names
        prefix = path if path == "/" else path + "/"
        for orphan_path in [p for p in self.orphans if p.startswith(prefix)]:
            name = orphan_path[len(prefix):]
            if "/" not in name and name in names:
                names[name] = self.orphans.pop(orphan_path)

    def pop(self, path: str, default: Node | None = None) -> Node | None:
        """Remove the node at ``path`` (its stored descendants become unreachable)."""
        node = self.orphans.pop(path, None)
        if node is None and path != "/":
            cut = path.rfind("/")
            parent = self.get(path[:cut] or "/")
            kids = None if parent is None else parent.kids
            if kids is not None:
                node = kids.names.get(path[cut + 1:])
                if node is not None:
                    kids.names[path[cut + 1:]] = None
        if node is None:
            return default
        self.forget_lookups()
        return node

    def items(self) -> Iterator[tuple[str, Node]]:
        """Every stored node, parents before children."""
        stack: list[tuple[str, Node]] = [("/", self.root), *self.orphans.items()]
        stack.reverse()
        while stack:
            path, node = stack.pop()
            yield path, node
            if node.kids is not None:
                prefix = "" if path == "/" else path
                stack.extend((f"{prefix}/{name}", child)
                             for name, child in reversed(node.kids.names.items())
                             if child is not None)

    def values(self) -> Iterator[Node]:
        """Every stored node (no paths made)."""
        stack = [self.root, *self.orphans.values()]
        while stack:
            node = stack.pop()
            yield node
            if node.kids is not None:
                stack.extend(child for child in node.kids.names.values() if child is not None)

    def __iter__(self) -> Iterator[str]:
        return (path for path, _ in self.items())


class Store:
    """The global tree, the generation counter and per-domain node ownership counts; the
    ACLs nodes share, and their GET_PERMS payloads."""

    def __init__(self) -> None:
        self.generation = 0
        self.owned: dict[int, int] = {}
        self._acls: dict[ACL, ACL] = {ROOT_ACL: ROOT_ACL}
        self._payloads: dict[int, tuple[ACL, bytes]] = {}
        self._payload_bytes = 0
        # 4.17's setup_structure(): /, /tool, /tool/xenstored, all n0, written in that order.
        self.nodes = Tree(Node(generation=self.bump()))
        self.nodes["/"].add_child("tool")
        for path, child in (("/tool", "xenstored"), ("/tool/xenstored", None)):
            node = Node(generation=self.bump())
            if child:
                node.add_child(child)
            self.nodes[path] = node
        self.owned[0] = 3

    def share(self, acl: ACL) -> ACL:
        """The one tuple equal to ``acl`` that nodes share (most nodes have one of a few ACLs).
        Bounded: past :data:`SHARED_ACLS_MAX` distinct ACLs the table starts afresh."""
        shared = self._acls.get(acl)
        if shared is None:
            if len(self._acls) >= SHARED_ACLS_MAX:
                self._acls.clear()
            shared = self._acls[acl] = acl
        return shared

    def perms_payload(self, acl: ACL) -> bytes:
        """GET_PERMS's payload for ``acl``, remembered by the ACL object (nodes share a few:
        see :meth:`share`)."""
        known = self._payloads.get(id(acl))
        if known is not None and known[0] is acl:
            return known[1]
        payload = acl_payload(acl, entry_max=GET_PERMS_ENTRY_MAX)
        cost = len(payload) + 8 * len(acl) + PERMS_PAYLOAD_COST  # the ACL is kept alive too
        self._payload_bytes += cost
        if self._payload_bytes > PERMS_PAYLOADS_BUDGET:
            self._payloads.clear()
            self._payload_bytes = cost
        self._payloads[id(acl)] = (acl, payload)
        return payload

    def forget_acls(self, domid: int) -> None:
        """Stop sharing the ACLs that name ``domid`` (its domain is gone)."""
        for acl in [acl for acl in self._acls
                    if any(p.domid & 0xFFFFFFFF == domid for p in acl)]:
            del self._acls[acl]

    def bump(self) -> int:
        """The next generation (4.17 takes one on every node write or delete, and on every
        TRANSACTION_START)."""
        self.generation += 1
        return self.generation

    def account(self, domid: int, delta: int) -> None:
        count = self.owned.get(domid, 0) + delta
        if count > 0:
            self.owned[domid] = count
        else:
            self.owned.pop(domid, None)

    def owned_by(self, domid: int) -> int:
        return self.owned.get(domid, 0)

    # -- inspection ------------------------------------------------------------------------
    def walk(self, root: str = "/") -> Iterator[tuple[str, Node]]:
        """Pre-order, children in list order (as 4.17's walk_node_tree)."""
        node = self.nodes.get(root)
        if node is None:
            return
        stack = [(root, node)]
        while stack:
            path, node = stack.pop()
            yield path, node
            for name in reversed(list(node.children)):
                child_path = join(path, name)
                child = self.nodes.get(child_path)
                if child is not None:
                    stack.append((child_path, child))

    def problems(self) -> list[str]:
        """Inconsistencies between child lists, nodes and ownership counts (empty if none)."""
        out: list[str] = []
        tree = self.nodes
        out += [f"{path}: stored, but its parent is not" for path in tree.orphans]
        saved, tree.lookups = tree.lookups, {}
        out += [f"{path}: remembered lookup is stale" for path, node in saved.items()
                if tree.get(path) is not node]
        tree.lookups = saved
        reachable = set()
        for path, node in self.walk():
            reachable.add(path)
            for name in node.children:
                if join(path, name) not in self.nodes:
                    out.append(f"{path}: child {name!r} not found")
            if node.childlen != sum(len(n) + 1 for n in node.children):
                out.append(f"{path}: childlen {node.childlen} is wrong")
            if not node.perms:
                out.append(f"{path}: no permissions")
        for path in self.nodes:
            if path not in reachable:
                out.append(f"{path}: orphaned")
        counts: dict[int, int] = {}
        for node in self.nodes.values():
            counts[node.owner] = counts.get(node.owner, 0) + 1
        for domid in set(counts) | {d for d, n in self.owned.items() if n}:
            if counts.get(domid, 0) != self.owned.get(domid, 0):
                out.append(f"domain {domid}: owns {counts.get(domid, 0)} nodes, "
                           f"accounted {self.owned.get(domid, 0)}")
        return out

    def dump(self) -> dict[str, tuple[bytes, tuple[str, ...]]]:
        """Every node's value and ACL, for tests (generations left out)."""
        return {path: (node.value, tuple(str(p) for p in node.perms))
                for path, node in self.nodes.items()}
