"""A small in-process xenstored for the bus tests: gevent-native, on the client's hub.

Not the embedded daemon (``xsactor.daemon``): a compact stand-in that follows 4.17 closely
enough for the client (tree, ACLs, relative paths, watches with their first event,
transactions with per-node conflict detection, E2BIG replies, DIRECTORY_PART, guest sockets)
and gives tests hooks the real daemons do not have:

- ``all_received``: every packet the clients sent, in order (to prove nothing was sent);
- ``gate``: while cleared, requests are read and counted but not answered (to prove many
  requests were in flight at once);
- ``drop_connections()`` / ``stop()`` + ``start()``: lose every client (reconnect tests);
- ``inject(packet)``: push raw packets to every client (bad replies, unknown tokens);
- ``on_request(conn, packet)``: called before each request is handled;
- ``watch_count()``: the watches the daemon holds.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import gevent.socket
from gevent.event import Event
from gevent.queue import Queue

from xsactor.daemon.access import perm_for
from xsactor.daemon.toolstack import Entry, GuestSpec, device_steps, dom0_entries, guest_steps
from xsactor.protocol import Decoder, Op, Packet
from xsactor.protocol.errors import (
    E2BIG,
    EACCES,
    EAGAIN,
    EBUSY,
    EEXIST,
    EINVAL,
    ENOENT,
    ENOSYS,
    EPERM,
    XenStoreError,
)
from xsactor.protocol.ops import PAYLOAD_MAX
from xsactor.protocol.packets import join_args
from xsactor.protocol.paths import (
    SPECIAL_NODES,
    home_path,
    is_within,
    join,
    parent,
    relative_to,
    validate,
)
from xsactor.protocol.perms import Access, Perm, acl_payload, parse_acl


@dataclass
class Node:
    value: bytes = b""
    acl: tuple[Perm, ...] = (Perm(Access.NONE, 0),)
    children: list[str] = field(default_factory=list)
    gen: int = 0


class Store:
    """path -> Node, with a global generation counter.

    A transaction's store is a :meth:`snapshot`: it shares the nodes and copies one before
    changing it (:meth:`mutable`).
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {"/": Node()}
        self.counter = 0
        self.shared: set[str] | None = None
        for path in ("/tool", "/tool/xenstored"):
            self.create(path, b"", None)

    def snapshot(self) -> Store:
        snap = Store.__new__(Store)
        snap.nodes = dict(self.nodes)
        snap.counter = self.counter
        snap.shared = set(self.nodes)
        return snap

    def mutable(self, path: str) -> Node:
        node = self.nodes[path]
        if self.shared is not None and path in self.shared:
            self.shared.discard(path)
            node = self.nodes[path] = Node(node.value, node.acl, list(node.children), node.gen)
        return node

    def stamp(self, node: Node) -> None:
        self.counter += 1
        node.gen = self.counter

    def create(self, path: str, value: bytes, creator: int | None) -> list[str]:
        """Create ``path`` and missing parents (ACL copied from the parent); returns them."""
        made = []
        missing = []
        p = path
        while p not in self.nodes:
            missing.append(p)
            p = parent(p)
        for p in reversed(missing):
            up = self.mutable(parent(p))
            acl = up.acl
            if creator is not None and creator != 0:
                acl = (Perm(acl[0].access, creator), *acl[1:])
            node = Node(b"", acl)
            self.stamp(node)
            self.nodes[p] = node
            up.children.append(p.rsplit("/", 1)[1])
            self.stamp(up)
            made.append(p)
        self.mutable(path).value = value
        return made

    def remove(self, path: str) -> list[str]:
        """Remove a subtree; returns the removed paths, deepest first, root last."""
        out: list[str] = []

        def walk(p: str) -> None:
            for child in self.nodes[p].children:
                walk(join(p, child))
            out.append(p)
        walk(path)
        for p in out:
            del self.nodes[p]
        up = self.mutable(parent(path))
        up.children.remove(path.rsplit("/", 1)[1])
        self.stamp(up)
        return out


@dataclass
class Transaction:
    store: Store
    touched: dict[str, int | None]  # path -> gen at first touch (None: absent)
    start: int = 0  # the store's counter when it began: larger gens were stamped inside
    events: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class FakeConnection:
    def __init__(self, server: FakeXenStored, sock: gevent.socket.socket, domid: int) -> None:
        self.server = server
        self.sock = sock
        self.domid = domid
        self.home = home_path(domid)
        self.privileged = domid == 0
        self.target: int | None = None  # no SET_TARGET here
        self.watches: list[tuple[str, str, bytes]] = []  # (as given, canonical, token)
        self.transactions: dict[int, Transaction] = {}
        self.next_tx = 1
        self.out: Queue[bytes | None] = Queue()
        self.reader = gevent.spawn(self._read_loop)
        self.writer = gevent.spawn(self._write_loop)

    # -- I/O -----------------------------------------------------------------------------
    def send(self, packet: Packet) -> None:
        self.out.put(packet.encode())

    def _write_loop(self) -> None:
        while True:
            data = self.out.get()
            if data is None:
                return
            chunks = [data]
            while not self.out.empty() and len(chunks) < 256:
                more = self.out.get_nowait()
                if more is None:
                    self.sock.sendall(b"".join(chunks))
                    return
                chunks.append(more)
            try:
                self.sock.sendall(b"".join(chunks))
            except OSError:
                return

    def _read_loop(self) -> None:
        decoder = Decoder()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                packets = decoder.feed(data)
                self.server.all_received.extend(packets)
                self.server._arrived()
                for packet in packets:
                    if not self.server.gate.is_set():
                        self.server.gate.wait()
                    if self.server.on_request is not None:
                        self.server.on_request(self, packet)
                    self.handle(packet)
                if decoder.error is not None:
                    break
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.server.connections.discard(self)
        self.out.put(None)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.watches.clear()
        self.transactions.clear()

    # -- requests ------------------------------------------------------------------------
    def handle(self, packet: Packet) -> None:
        try:
            reply = self.dispatch(packet)
        except _Replied:
            return
        except XenStoreError as exc:
            self.send(packet.reply(exc.wire, Op.ERROR))
            return
        self.send(packet.reply(reply))

    def canon(self, raw: bytes) -> str:
        return validate(raw.decode("latin-1"), self.home)

    def check(self, store: Store, path: str, need: Access) -> Node | None:
        """The node if the caller has ``need`` on it; None if missing (ENOENT/EACCES rules)."""
        node = store.nodes.get(path)
        if node is not None:
            if not perm_for(self, node.acl) & need:
                raise EACCES(path=path)
            return node
        p = path
        while p not in store.nodes:
            p = parent(p)
        if not perm_for(self, store.nodes[p].acl) & need:
            raise EACCES(path=path)
        return None

    def store_for(self, tx_id: int) -> tuple[Store, Transaction | None]:
        if tx_id == 0:
            return self.server.store, None
        tx = self.transactions.get(tx_id)
        if tx is None:
            raise ENOENT("unknown transaction")
        return tx.store, tx

    @staticmethod
    def touch(tx: Transaction | None, store: Store, *paths: str) -> None:
        if tx is None:
            return
        for p in paths:
            if p not in tx.touched:
                node = store.nodes.get(p)
                tx.touched[p] = None if node is None else node.gen

    def touch_chain(self, tx: Transaction | None, store: Store, path: str) -> None:
        """Touch ``path`` and, while missing, its ancestors up to the first existing one."""
        if tx is None:
            return
        p = path
        self.touch(tx, store, p)
        while p not in store.nodes:
            p = parent(p)
            self.touch(tx, store, p)

    def fire(self, tx: Transaction | None, path: str) -> None:
        if tx is not None:
            if path not in tx.events:
                tx.events.append(path)
        else:
            self.server.fire(path)

    def dispatch(self, packet: Packet) -> bytes:
        op, args = packet.op, packet.args
        if op in (Op.WATCH, Op.UNWATCH):
            if len(args) != 2:
                raise EINVAL
            given = args[0].decode("latin-1")
            canonical = validate(given, self.home, allow_special=True)
            token = args[1]
            found = [w for w in self.watches if w[1] == canonical and w[2] == token]
            if op == Op.UNWATCH:
                if not found:
                    raise ENOENT
                self.watches.remove(found[0])
                return b"OK\0"
            if found:
                raise EEXIST
            self.watches.append((given, canonical, token))
            self.send(packet.reply(b"OK\0"))
            self.send(Packet(Op.WATCH_EVENT, 0, 0, join_args(args[0], token)))
            raise _Replied
        if op == Op.GET_DOMAIN_PATH:
            if len(args) != 1:
                raise EINVAL
            return join_args(home_path(int(args[0] or 0)))
        if op == Op.TRANSACTION_START:
            if packet.tx_id:
                raise EBUSY if packet.tx_id in self.transactions else ENOENT
            tx_id = self.next_tx
            self.next_tx += 1
            store = self.server.store.snapshot()
            self.transactions[tx_id] = Transaction(store, {}, start=store.counter)
            return join_args(tx_id)
        if op == Op.TRANSACTION_END:
            if packet.payload not in (b"T\0", b"F\0"):
                raise EINVAL
            tx = self.transactions.pop(packet.tx_id, None)
            if tx is None:
                raise ENOENT
            if packet.payload == b"T\0":
                self.server.commit(tx)
            return b"OK\0"
        if op not in (Op.READ, Op.WRITE, Op.MKDIR, Op.RM, Op.DIRECTORY, Op.DIRECTORY_PART,
                      Op.GET_PERMS, Op.SET_PERMS):
            raise ENOSYS
        store, tx = self.store_for(packet.tx_id)
        if op == Op.WRITE:
            raw, sep, value = packet.payload.partition(b"\0")
            if not sep:
                raise EINVAL
            path = self.canon(raw)
            self.touch_chain(tx, store, path)
            node = self.check(store, path, Access.WRITE)
            if node is None:
                store.create(path, value, self.domid)
            else:
                store.mutable(path).value = value
            store.stamp(store.mutable(path))
            self.fire(tx, path)
            return b"OK\0"
        if not args:
            raise EINVAL
        if op == Op.SET_PERMS and args[0].startswith(b"@"):
            if args[0].decode("latin-1") not in SPECIAL_NODES or len(args) < 2:
                raise EINVAL
            parse_acl(args[1:])
            return b"OK\0"
        path = self.canon(args[0])
        self.touch_chain(tx, store, path)
        if op == Op.READ:
            node = self.check(store, path, Access.READ)
            if node is None:
                raise ENOENT(path=path)
            return node.value
        if op in (Op.DIRECTORY, Op.DIRECTORY_PART):
            node = self.check(store, path, Access.READ)
            if node is None:
                raise ENOENT(path=path)
            listing = join_args(*node.children)
            if op == Op.DIRECTORY:
                if len(listing) > PAYLOAD_MAX:
                    raise E2BIG
                return listing
            if len(args) != 2:
                raise EINVAL
            return self.server.directory_part(node, listing, int(args[1] or 0))
        if op == Op.GET_PERMS:
            node = self.check(store, path, Access.READ)
            if node is None:
                raise ENOENT(path=path)
            return acl_payload(node.acl)
        if op == Op.MKDIR:
            node = self.check(store, path, Access.WRITE)
            if node is None:
                store.create(path, b"", self.domid)
                self.fire(tx, path)
            return b"OK\0"
        if op == Op.RM:
            if path == "/":
                raise EINVAL
            node = self.check(store, path, Access.WRITE)
            if node is None:
                if parent(path) not in store.nodes:
                    raise ENOENT(path=path)
                return b"OK\0"
            self.touch(tx, store, parent(path))
            removed = store.remove(path)
            if tx is not None:
                tx.removed.extend(removed)
                self.fire(tx, path)
            else:
                self.server.fire_removal(removed)
            return b"OK\0"
        # SET_PERMS
        acl = parse_acl(args[1:])
        node = self.check(store, path, Access.WRITE)
        if node is None:
            raise ENOENT(path=path)
        if not self.privileged:
            if node.acl[0].domid != self.domid:
                raise EACCES(path=path)
            if acl[0].domid != self.domid:
                raise EPERM(path=path)
        node = store.mutable(path)
        node.acl = acl
        store.stamp(node)
        self.fire(tx, path)
        return b"OK\0"


class _Replied(Exception):
    """The op sent its own reply (WATCH: the OK, then the first event)."""


class FakeXenStored:
    """The fake daemon: a dom0 socket and one socket per guest domain."""

    def __init__(self, rundir: str) -> None:
        self.rundir = rundir
        self.socket_path = os.path.join(rundir, "socket")
        self.store = Store()
        for entry in dom0_entries():
            self._apply(entry)
        self.guest_sockets: dict[int, str] = {}
        self.connections: set[FakeConnection] = set()
        self.all_received: list[Packet] = []
        self.gate = Event()
        self.gate.set()
        self.on_request: Callable[[FakeConnection, Packet], None] | None = None
        self._arrival_waiters: list[tuple[Callable[[], bool], Event]] = []
        self._listeners: list[gevent.Greenlet] = []
        self._sockets: list[gevent.socket.socket] = []

    def _apply(self, entry: Entry) -> None:
        path = entry.path
        if path not in self.store.nodes:
            self.store.create(path, b"", None)
        if entry.value is not None:
            self.store.nodes[path].value = entry.value
        if entry.acl is not None:
            self.store.nodes[path].acl = entry.acl

    # -- lifetime ------------------------------------------------------------------------
    def start(self) -> FakeXenStored:
        self._listen(self.socket_path, 0)
        for domid, path in self.guest_sockets.items():
            self._listen(path, domid)
        return self

    def _listen(self, path: str, domid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(128)
        self._sockets.append(sock)
        self._listeners.append(gevent.spawn(self._accept_loop, sock, domid))

    def _accept_loop(self, sock: gevent.socket.socket, domid: int) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.connections.add(FakeConnection(self, conn, domid))

    def add_guest(self, domid: int) -> str:
        spec = GuestSpec(domid)
        for step in [*guest_steps(spec), *device_steps(spec)]:
            for entry in step.entries:
                if not entry.remove:
                    self._apply(entry)
        path = os.path.join(self.rundir, f"guest{domid}")
        self.guest_sockets[domid] = path
        if self._listeners:
            self._listen(path, domid)
        return path

    def drop_connections(self) -> None:
        """Close every client connection (as if the daemon had restarted)."""
        for conn in list(self.connections):
            conn.reader.kill(block=False)
            conn.close()

    def stop(self) -> None:
        """Stop listening and drop every connection; ``start()`` serves again."""
        for sock in self._sockets:
            sock.close()
        for g in self._listeners:
            g.kill(block=False)
        self._sockets.clear()
        self._listeners.clear()
        self.drop_connections()
        for path in [self.socket_path, *self.guest_sockets.values()]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # -- hooks ---------------------------------------------------------------------------
    def _arrived(self) -> None:
        for condition, event in list(self._arrival_waiters):
            if condition():
                event.set()
                self._arrival_waiters.remove((condition, event))

    def wait_received(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` packets have arrived in total."""
        if len(self.all_received) >= count:
            return True
        event = Event()
        self._arrival_waiters.append((lambda: len(self.all_received) >= count, event))
        return event.wait(timeout)

    def inject(self, packet: Packet) -> None:
        for conn in list(self.connections):
            conn.send(packet)

    def watch_count(self) -> int:
        return sum(len(c.watches) for c in self.connections)

    def watch_tokens(self) -> list[bytes]:
        return [w[2] for c in self.connections for w in c.watches]

    # -- semantics -----------------------------------------------------------------------
    def fire(self, path: str, exact: bool = False) -> None:
        for conn in list(self.connections):
            for given, canonical, token in conn.watches:
                if canonical.startswith("@"):
                    continue
                if (path == canonical) if exact else is_within(path, canonical):
                    reported = path if given.startswith("/") else relative_to(path, conn.home)
                    conn.send(Packet(Op.WATCH_EVENT, 0, 0, join_args(reported, token)))

    def fire_removal(self, removed: list[str]) -> None:
        for path in removed[:-1]:
            self.fire(path, exact=True)
        self.fire(removed[-1])

    def commit(self, tx: Transaction) -> None:
        live = self.store.nodes
        for path, gen in tx.touched.items():
            node = live.get(path)
            if (None if node is None else node.gen) != gen:
                raise EAGAIN
        # Apply what the transaction removed, then every node it stamped.
        for path in tx.removed:
            if path in live and path not in tx.store.nodes:
                del live[path]
        for path, node in tx.store.nodes.items():
            if node.gen > tx.start:
                fresh = copy.deepcopy(node)
                self.store.stamp(fresh)
                live[path] = fresh
        for path in tx.events:
            self.fire(path)

    def directory_part(self, node: Node, listing: bytes, offset: int) -> bytes:
        gen = join_args(node.gen)
        if offset >= len(listing):
            return gen + b"\0"
        budget = PAYLOAD_MAX - len(gen) - 1
        rest = listing[offset:]
        if len(rest) <= budget:
            return gen + rest + b"\0"
        cut = rest.rfind(b"\0", 0, budget) + 1
        return gen + rest[:cut]

