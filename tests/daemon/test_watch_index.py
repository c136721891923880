"""The watch index against a naive scan of every watch (the rules of §6, written plainly).

Random trees with random ACLs, watchers (privileged or guests) registering and removing
watches on random paths (special ones included), then random changes: each connection must
get the same events, in the same order, from :class:`WatchHub` as from the scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from xsactor.daemon.access import READ, perm_for
from xsactor.daemon.store import Node, Store
from xsactor.daemon.watches import Watch, WatchHub
from xsactor.protocol.ops import PAYLOAD_MAX
from xsactor.protocol.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, join
from xsactor.protocol.paths import parent as parent_of
from xsactor.protocol.perms import ACL, Access, Perm

NAMES = ["a", "b"]
SPECIAL = [INTRODUCE_DOMAIN, RELEASE_DOMAIN, "@other"]
REL = st.lists(st.sampled_from(NAMES), max_size=3)
PATHS = REL.map(lambda parts: "/" + "/".join(parts))
DEEP = st.lists(st.sampled_from(NAMES), min_size=2, max_size=3).map(
    lambda parts: "/" + "/".join(parts))
WATCHED = st.one_of(PATHS, st.sampled_from(SPECIAL))
ACLS = st.lists(st.tuples(st.sampled_from([Access.NONE, Access.READ, Access.WRITE]),
                          st.integers(0, 3)), min_size=1, max_size=3).map(
    lambda entries: tuple(Perm(access, domid) for access, domid in entries))


@dataclass(eq=False)
class FakeConn:
    id: int
    domid: int
    privileged: bool
    target: int | None = None
    watches: dict[tuple[str, bytes], Watch] = field(default_factory=dict)
    events: list[bytes] = field(default_factory=list)

    def event(self, payload: bytes, *, special: bool = False) -> None:
        self.events.append(payload)

    def flush(self) -> None:
        pass


def _matches(watched: str, path: str, exact: bool) -> bool:
    if exact:
        return path == watched
    return watched == "/" or path == watched or path.startswith(watched + "/")


def _can_read(conn: FakeConn, acl: ACL | None) -> bool:
    return acl is not None and bool(perm_for(conn, acl) & READ)


def naive_fire(conns: list[FakeConn], store: Store, path: str, exact: bool,
               old: ACL | None) -> None:
    """Every connection, every watch, in registration order (as 4.17's fire_watches); the
    filter is 4.17's watch_permitted: the old ACL, else (if the node exists) its ACL or its
    parent's."""
    node = store.nodes.get(path)
    parent = store.nodes.get(parent_of(path)) if node is not None and path != "/" else None
    for conn in conns:
        for watch in conn.watches.values():
            if not _matches(watch.path, path, exact):
                continue
            if not (_can_read(conn, old) or (node is not None and (
                    conn.privileged or _can_read(conn, node.perms)
                    or _can_read(conn, parent.perms if parent is not None else None)))):
                continue  # nobody, dom0 included, sees a node with no old ACL that is gone
            payload = watch.payload(path)
            if len(payload) <= PAYLOAD_MAX:
                conn.event(payload)


def naive_special(conns: list[FakeConn], name: str, acl: ACL) -> None:
    for conn in conns:
        for watch in conn.watches.values():
            if watch.path == name and _can_read(conn, acl):
                conn.event(watch.payload(name), special=True)


def build_store(nodes: list[tuple[str, ACL]]) -> Store:
    store = Store()
    for path, acl in nodes:
        parts = [p for p in path.split("/") if p]
        current = "/"
        for part in parts:
            child = join(current, part)
            if child not in store.nodes:
                store.nodes[current].add_child(part)
                store.nodes[child] = Node(b"", acl)
            current = child
        store.nodes[current].perms = acl
    return store


SCENARIO = st.fixed_dictionaries({
    "nodes": st.lists(st.tuples(PATHS, ACLS), max_size=8),
    "conns": st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.sampled_from([None, 1, 2])),
                      min_size=1, max_size=3),
    # (connection index (modulo their number), watched path, token, unregister instead)
    "registrations": st.lists(st.tuples(st.integers(0, 3), WATCHED, st.sampled_from(
        [b"t", b"u", b"v", b"w"]), st.booleans()), min_size=2, max_size=30),
    # (path, exact, ACL before the change) for tree changes, or (special name, None, None)
    "changes": st.lists(st.one_of(st.tuples(DEEP, st.booleans(), st.none() | ACLS),
                                  st.tuples(st.sampled_from(SPECIAL), st.none(), st.none())),
                        min_size=1, max_size=10),
    "special_acl": ACLS,
})


@settings(max_examples=200, deadline=None)
@given(SCENARIO)
def test_index_delivers_what_a_full_scan_delivers(scenario: dict) -> None:
    store = build_store(scenario["nodes"])
    special_acl: ACL = scenario["special_acl"]
    hub = WatchHub(store, lambda name: special_acl)
    indexed: list[FakeConn] = []
    scanned: list[FakeConn] = []
    for number, (domid, privileged, target) in enumerate(scenario["conns"], 1):
        indexed.append(FakeConn(number, domid, privileged, target))
        scanned.append(FakeConn(number, domid, privileged, target))
    for index, path, token, unregister in scenario["registrations"]:
        conn, model = indexed[index % len(indexed)], scanned[index % len(scanned)]
        key = (path, token)
        if unregister:
            assert (hub.remove(conn, key) is None) == (model.watches.pop(key, None) is None)
        elif key not in conn.watches:
            hub.add(conn, Watch(path, token))
            model.watches[key] = Watch(path, token)
    for path, exact, old in scenario["changes"]:
        if exact is None:
            hub.fire_special(path)
            naive_special(scanned, path, special_acl)
        else:
            hub.fire(path, exact, old=None if old is None else (old, None, 0))
            naive_fire(scanned, store, path, exact, old)
    for conn, model in zip(indexed, scanned, strict=True):
        assert conn.events == model.events, f"connection {conn.id}"
        assert list(conn.watches) == list(model.watches)
    assert {(conn.id, w.seq) for conn in indexed for w in conn.watches.values()} == {
        (conn.id, w.seq) for bucket in hub.index.values() for conn, w in bucket.values()}
    for bucket in hub.index.values():
        assert list(bucket) == [w.seq for _, w in bucket.values()] == sorted(bucket)


def test_unrelated_watches_are_never_looked_at() -> None:
    """A change visits only the buckets of its path and its ancestors."""
    store = build_store([("/a/b/c", (Perm(Access.NONE, 0),))])
    hub = WatchHub(store, lambda name: None)
    conn = FakeConn(1, 0, True)
    for i in range(1000):
        hub.add(conn, Watch(f"/elsewhere/{i}", b"t"))
    hub.add(conn, Watch("/a", b"mine"))

    class Counting(dict):
        looked: list[str] = []

        def get(self, key, default=None):
            self.looked.append(key)
            return super().get(key, default)

    hub.index = Counting(hub.index)
    hub.fire("/a/b/c")
    assert Counting.looked == ["/", "/a", "/a/b", "/a/b/c"]
    assert conn.events == [b"/a/b/c\0mine\0"]
    Counting.looked.clear()
    hub.fire("/a/b/c", exact=True)
    assert Counting.looked == ["/a/b/c"]
    hub.fire_special(RELEASE_DOMAIN)
    assert Counting.looked == ["/a/b/c", RELEASE_DOMAIN]


def test_the_permission_filter_runs_for_matching_connections_only() -> None:
    store = build_store([("/a/b", (Perm(Access.READ, 0),))])
    hub = WatchHub(store, lambda name: (Perm(Access.READ, 0),))
    others = [FakeConn(number, number, False) for number in range(1, 101)]
    for conn in others:
        hub.add(conn, Watch(f"/elsewhere/{conn.id}", b"t"))
        hub.add(conn, Watch("@introduceDomain", b"t"))
    mine = FakeConn(500, 5, False)
    hub.add(mine, Watch("/a", b"t"))
    hub.add(mine, Watch("/a/b", b"u"))
    checked: list[int] = []
    permitted = hub._permitted

    def counting(conn, *args):
        checked.append(conn.id)
        return permitted(conn, *args)

    hub._permitted = counting  # type: ignore[method-assign]
    hub.fire("/a/b")
    assert checked == [500]
    assert mine.events == [b"/a/b\0t\0", b"/a/b\0u\0"]
    hub.fire_special(RELEASE_DOMAIN)
    assert checked == [500]
    assert all(not conn.events for conn in others)


def test_watches_leave_the_index_with_their_connection() -> None:
    hub = WatchHub(Store(), lambda name: None)
    conn = FakeConn(1, 5, False)
    hub.add(conn, Watch("/a", b"1"))
    hub.add(conn, Watch("/a", b"2"))
    hub.add(conn, Watch(RELEASE_DOMAIN, b"3"))
    assert hub.remove(conn, ("/a", b"1")) is not None
    assert hub.clear(conn) == 2
    assert hub.index == {}
    assert conn.watches == {}


def test_removing_a_watch_does_not_scan_its_path() -> None:
    """Many watches on one path (every guest on @releaseDomain): each goes in one step."""
    hub = WatchHub(Store(), lambda name: None)
    conns = [FakeConn(number, number, False) for number in range(1, 2001)]
    for conn in conns:
        hub.add(conn, Watch(RELEASE_DOMAIN, b"t"))

    class NoScan(dict):
        def __iter__(self):
            raise AssertionError("a bucket was scanned")

        def values(self):
            raise AssertionError("a bucket was scanned")

        items = values

    hub.index[RELEASE_DOMAIN] = NoScan(hub.index[RELEASE_DOMAIN])
    for conn in conns[:-1]:
        assert hub.clear(conn) == 1
    assert len(hub.index[RELEASE_DOMAIN]) == 1
