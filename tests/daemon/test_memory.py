"""What the daemon keeps per node and per domain: small nodes, shared ACLs and names, and
nothing left behind by a domain once it is destroyed (memory itself is measured by
``bench/daemon_domains.py`` and ``bench/daemon_scale.py``, not here)."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsactor.daemon.connection import Connection
from xsactor.daemon.core import XenStore
from xsactor.daemon.domains import Domain
from xsactor.daemon.server import Daemon
from xsactor.daemon.sockets import SocketConnection
from xsactor.daemon.store import Node, Store
from xsactor.daemon.toolstack import GuestSpec, replaced_paths
from xsactor.protocol import Decoder, Op, Packet
from xsactor.protocol.perms import Access, Perm
from xsactor.testing.util import wait_for

from .conftest import Client, Engine

WATCHED = ("control/shutdown", "control/sysrq", "memory/target", "device", "device/vif",
           "device/vbd", "console", "data", "attr", "@releaseDomain")
"""Ten watches, as a PV guest's frontends and agents hold them."""


def bookkeeping(xs: XenStore) -> dict[str, object]:
    """Everything the daemon holds that grows with domains, connections or watches."""
    gc.collect()
    return {
        "domains": sorted(xs.domains.table),
        "hypervisor states": dict(xs.domains.states),
        "owned counts": dict(xs.store.owned),
        "nodes": sorted(xs.store.nodes),
        "watch index": {path: [(conn.id, watch.token) for conn, watch in bucket.values()]
                        for path, bucket in xs.hub.index.items()},
        "connections": sorted(xs.connections),
        "dirty": len(xs.hub.dirty),
        "path cache homes": sorted(xs.path_cache.homes),
        "special ACLs": dict(xs.special),
        "shared ACLs": sorted(" ".join(map(str, acl)) for acl in xs.store._acls),
        "Connection objects": sum(isinstance(o, Connection) for o in gc.get_objects()),
        "Domain objects": sum(isinstance(o, Domain) for o in gc.get_objects()),
    }


def busy_guest(engine: Engine, domid: int) -> Client:
    """A guest in xl's layout, connected, with ten watches, a write and an open transaction."""
    engine.add_guest(domid)
    guest = engine.guest(domid)
    for number, path in enumerate(WATCHED):
        guest.watch(path, f"t{number}")
    guest.ok_write("data/agent", "up")
    guest.read("data/agent")
    tx = guest.start()
    guest.ok_write("data/in-tx", "1", tx_id=tx)
    guest.take_events()
    return guest


@pytest.mark.parametrize("end", ["release", "dying", "gone"])
def test_a_destroyed_domain_leaves_nothing_behind(end: str) -> None:
    engine = Engine()
    xs = engine.xs
    dom0 = engine.dom0()
    dom0.watch("@releaseDomain", "dom0")
    before: dict[str, object] = {}
    for cycle in range(3):
        # cycle 0, one domain: xl's first guest leaves /vm and /libxl behind; cycles 1 and 2
        # must end where cycle 0 did, and cycle 2 find nothing of cycle 1
        domids = range(10, 11 if cycle == 0 else 30)
        guests = [busy_guest(engine, domid) for domid in domids]
        if cycle:
            during = bookkeeping(xs)
            assert len(during["domains"]) == len(before["domains"]) + 20  # type: ignore[arg-type]
            assert during["watch index"] != before["watch index"]
        for guest in guests:
            if end == "release":
                dom0.call(Op.RELEASE, guest.domid)
            else:
                xs.set_domain_state(guest.domid, end)
                xs.flush()
            for path in replaced_paths(GuestSpec(guest.domid)):  # xl's part of destroy
                dom0.rm(path)
        del guests, guest
        after = bookkeeping(xs)
        if end != "release":
            # the simulated hypervisor remembers those domids' last state (as Xen would)
            assert after.pop("hypervisor states") == dict.fromkeys(domids, end)
            xs.domains.states.clear()
            after["hypervisor states"] = {}
        if cycle == 0:
            before = after
        assert after == before, f"cycle {cycle}"
        assert dom0.take_events()


def test_a_leaf_has_no_children_container() -> None:
    engine = Engine()
    dom0 = engine.dom0()
    dom0.ok_write("/a/b", "1")
    nodes = engine.xs.store.nodes
    assert nodes["/a/b"].kids is None
    assert nodes["/a"].kids is not None
    dom0.rm("/a/b")
    assert nodes["/a"].kids is None
    assert nodes["/a"].child_blob() == b""
    assert nodes["/a"].childlen == 0


def test_a_node_is_three_slots_and_its_value_holds_its_generation() -> None:
    """Per node: one three-slot object and one bytes object for value and generation (no int
    per node); an empty value keeps just the generation; no slot for the rare ignored entries."""
    engine = Engine()
    dom0 = engine.dom0()
    dom0.ok_write("/a/b", "x" * 32)
    nodes = engine.xs.store.nodes
    leaf, parent = nodes["/a/b"], nodes["/a"]
    assert Node.__slots__ == ("data", "kids", "perms")
    assert isinstance(leaf.data, bytes) and len(leaf.data) == 32 + 8
    assert leaf.value == b"x" * 32 and leaf.value_len == 32
    assert parent.data == parent.generation and parent.value == b""
    generation = leaf.generation
    leaf.generation = generation + 5
    assert (leaf.value, leaf.generation) == (b"x" * 32, generation + 5)
    assert leaf.ignored is None and type(leaf.perms) is tuple


@given(value=st.binary(max_size=64), generation=st.integers(0, 2**64 - 1),
       later=st.integers(0, 2**64 - 1))
def test_value_and_generation_round_trip_through_data(value: bytes, generation: int,
                                                       later: int) -> None:
    node = Node(value, generation=generation)
    assert (node.value, node.value_len, node.generation) == (value, len(value), generation)
    node.generation = later
    assert (node.value, node.generation) == (value, later)
    assert node.copy().data == node.data


def test_ignored_entries_ride_on_the_acl() -> None:
    node = Node(b"v", (Perm(Access.NONE, 0), Perm(Access.READ, 9)), 7, frozenset({1}))
    assert node.ignored == frozenset({1}) and [str(p) for p in node.perms] == ["n0", "r9"]
    clone = node.copy()
    assert clone.ignored == frozenset({1}) and clone.generation == 7
    node.ignored = None
    assert node.ignored is None and type(node.perms) is tuple
    assert clone.ignored == frozenset({1})


def test_nodes_share_child_names_and_acls() -> None:
    engine = Engine()
    engine.add_guest(7)
    guest = engine.guest(7)
    for parent in ("x", "y"):
        guest.ok_write(f"data/{parent}/state", "1")
    nodes = engine.xs.store.nodes
    home = "/local/domain/7/data"
    x_name, = nodes[f"{home}/x"].children
    y_name, = nodes[f"{home}/y"].children
    assert x_name is y_name
    assert nodes[f"{home}/x/state"].perms is nodes[f"{home}/y/state"].perms
    assert nodes[f"{home}/x"].perms is nodes[f"{home}/y/state"].perms
    guest.chmod("data/x/state", "b7")
    guest.chmod("data/y/state", "b7")
    assert nodes[f"{home}/x/state"].perms is nodes[f"{home}/y/state"].perms


def test_a_destroyed_domain_leaves_no_server_state(inproc: Daemon) -> None:
    """The same through the sockets: listeners, socket connections, descriptors."""
    import gevent
    import gevent.socket

    toolstack = inproc._toolstack
    assert toolstack is not None

    def server_state() -> dict[str, object]:
        gc.collect()
        return {
            "listeners": sorted(inproc._listeners),
            "guest paths": dict(inproc._guest_paths),
            "sockets": {domid: len(group) for domid, group in inproc.sockets.items() if group},
            "by connection": sorted(inproc.by_conn),
            "descriptors": inproc.descriptors.used,
            "SocketConnection objects": sum(isinstance(o, SocketConnection)
                                            for o in gc.get_objects()),
            "engine": bookkeeping(inproc.xs),
        }

    def cycle(domids: range) -> None:
        """Guests connect and watch; the hypervisor says gone; xl removes their trees."""
        socks = []
        for domid in domids:
            sock = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
            sock.connect(inproc.add_guest(GuestSpec(domid)))
            sock.sendall(b"".join(Packet.request(Op.WATCH, path, f"t{n}", req_id=n).encode()
                                  for n, path in enumerate(WATCHED)))
            decoder = Decoder()
            packets: list[Packet] = []
            while len(packets) < 2 * len(WATCHED):  # each reply, and each first event
                packets += decoder.feed(sock.recv(65536))
            socks.append(sock)
        assert len(inproc.by_conn) >= len(domids)
        for domid in domids:
            inproc.set_domain_state(domid, "gone")
            del inproc.xs.domains.states[domid]  # the domid may be used again
            for path in replaced_paths(GuestSpec(domid)):
                toolstack.call(Packet.request(Op.RM, path))
        for sock in socks:
            assert sock.recv(65536) == b""  # the daemon closed it
            sock.close()

    cycle(range(10, 11))  # xl's first guest leaves /vm and /libxl behind
    before = server_state()
    for _ in range(2):
        cycle(range(10, 20))
        wait_for(lambda: server_state() == before, 5, "the server state to drop back",
                 sleep=gevent.sleep)


def test_the_tree_links_nodes_stored_child_first() -> None:
    """A commit or a creation stores a node before its parent lists it: it waits, reachable,
    and is linked when the parent is stored."""
    store = Store()
    tree = store.nodes
    leaf, middle = Node(b"leaf"), Node(b"")
    middle.add_child("c")
    tree["/a/b/c"] = leaf
    assert tree.get("/a/b/c") is leaf and "/a/b/c" in tree.orphans
    tree["/a/b"] = middle
    assert tree.get("/a/b") is middle and tree.orphans == {"/a/b": middle}
    top = Node(b"")
    top.add_child("b")
    tree["/a"] = top  # / does not list a yet: waits too
    tree["/"].add_child("a")
    tree["/"] = tree["/"]
    assert tree.orphans == {}
    assert [path for path in tree if path.startswith("/a")] == ["/a", "/a/b", "/a/b/c"]
    assert [p for p in store.problems() if "accounted" not in p] == []  # stored unaccounted


def test_a_replaced_node_keeps_the_current_children() -> None:
    store = Store()
    tree = store.nodes
    tree["/"].add_child("a")
    a = Node()
    tree["/a"] = a
    a.add_child("x")
    x = Node(b"1")
    tree["/a/x"] = x
    stale = a.copy()  # a transaction's copy of /a ...
    x2 = Node(b"2")
    tree["/a/x"] = x2  # ... while /a/x is replaced (another commit)
    stale.add_child("y")
    tree["/a"] = stale  # the copy is committed
    assert tree.get("/a/x") is x2
    assert list(stale.children) == ["x", "y"] and tree.get("/a/y") is None
    assert tree.pop("/a") is stale
    assert tree.get("/a/x") is None and tree.get("/a") is None


def test_remembered_lookups_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from xsactor.daemon import store as store_module

    monkeypatch.setattr(store_module, "LOOKUPS_BUDGET", 2000)
    engine = Engine()
    dom0 = engine.dom0()
    tree = engine.xs.store.nodes
    for number in range(100):
        path = f"/long/{'x' * 200}/{number}"
        dom0.ok_write(path, "v")
        assert dom0.read(path) == b"v"
        assert tree.lookup_bytes <= 2000
        assert sum(len(p) + store_module.LOOKUP_COST for p in tree.lookups) == tree.lookup_bytes
    assert tree.lookups
