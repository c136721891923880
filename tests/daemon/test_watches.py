"""§6 watches: registration, identity, matching, event paths, permission filter, RM order,
transactions, coalescing, special watches, quota."""

from __future__ import annotations

from xsactor.protocol import Op

from .conftest import Client, Engine


def ev(path: str, token: str = "t") -> tuple[bytes, bytes]:
    return path.encode(), token.encode()


def test_watch_fires_once_up_front_as_given(dom0: Client) -> None:
    dom0.watch("/nonexistent/w", "tok en")
    dom0.watch("relw", "r")
    assert dom0.take_events() == [ev("/nonexistent/w", "tok en"), ev("relw", "r")]


def test_identity_is_canonical_path_and_token(dom0: Client) -> None:
    dom0.watch("/local/domain/0/w", "a")
    assert dom0.err(Op.WATCH, "w", "a") == "EEXIST"
    dom0.watch("w", "b")
    dom0.call(Op.UNWATCH, "w", "a")           # relative form removes the absolute one
    assert dom0.err(Op.UNWATCH, "w", "a") == "ENOENT"
    dom0.watch("/local/domain/0/w", "a")


def test_empty_token_allowed(dom0: Client) -> None:
    assert dom0.raw(Op.WATCH, b"/w\0\0").payload == b"OK\0"
    assert dom0.take_events() == [(b"/w", b"")]


def test_prefix_matching(dom0: Client) -> None:
    dom0.watch("/w")
    dom0.take_events()
    dom0.ok_write("/w/a/b", "1")
    dom0.ok_write("/wother", "1")
    dom0.ok_write("/w", "2")
    assert dom0.take_events() == [ev("/w/a/b"), ev("/w")]


def test_root_watch_sees_everything(dom0: Client) -> None:
    dom0.watch("/", "root")
    dom0.take_events()
    dom0.ok_write("/x/y", "1")
    assert dom0.take_events() == [ev("/x/y", "root")]


def test_relative_watch_reports_relative_paths(dom0: Client) -> None:
    dom0.watch("relw", "r")
    dom0.take_events()
    dom0.ok_write("/local/domain/0/relw/q", "1")
    assert dom0.take_events() == [ev("relw/q", "r")]


def test_write_fires_only_target_not_created_parents(dom0: Client) -> None:
    other = Client(dom0.xs)
    other.watch("/p", "parent")
    other.watch("/p/q", "exact")
    other.take_events()
    dom0.ok_write("/p/q/r", "v")
    assert other.take_events() == [ev("/p/q/r", "parent"), ev("/p/q/r", "exact")]
    dom0.ok_write("/p/q/r", "v")                   # same value fires again
    assert len(other.take_events()) == 2


def test_set_perms_fires_even_if_unchanged(dom0: Client) -> None:
    dom0.ok_write("/s")
    dom0.watch("/s")
    dom0.take_events()
    dom0.chmod("/s", "n0")
    assert dom0.take_events() == [ev("/s")]


def test_rm_fires_descendants_exact_post_order_then_root(dom0: Client) -> None:
    for path in ("/r/a/x", "/r/b"):
        dom0.ok_write(path)
    w = Client(dom0.xs)
    for path in ("/r/a/x", "/r/a", "/r/b", "/r/b/below", "/r", "/"):
        w.watch(path, path)
    w.take_events()
    dom0.rm("/r")
    assert w.take_events() == [
        ev("/r/a/x", "/r/a/x"),
        ev("/r/a", "/r/a"),
        ev("/r/b", "/r/b"),
        ev("/r", "/r"),
        ev("/r", "/"),
    ]
    dom0.rm("/r")
    assert w.take_events() == []


def test_permission_filter(engine: Engine) -> None:
    engine.add_guest(5)
    dom0 = engine.dom0()
    g = engine.guest(5)
    g.watch("/local/domain/0", "dom0home")
    g.watch("/local/domain/5", "home")
    g.take_events()
    dom0.ok_write("/local/domain/0/secret", "x")              # unreadable node and parent
    dom0.ok_write("/local/domain/5/data/x", "y")              # readable
    dom0.ok_write("/local/domain/5/newfile", "z")             # n0 r5 inherited: readable
    assert g.take_events() == [ev("/local/domain/5/data/x", "home"),
                               ev("/local/domain/5/newfile", "home")]
    dom0.chmod("/local/domain/5/newfile", "n0")               # old ACL still allowed it
    assert g.take_events() == [ev("/local/domain/5/newfile", "home")]
    dom0.ok_write("/local/domain/5/newfile", "again")         # parent (home) readable
    assert g.take_events() == [ev("/local/domain/5/newfile", "home")]
    dom0.ok_write("/local/domain/5/hidden", "")
    dom0.chmod("/local/domain/5/hidden", "n0")
    g.take_events()
    dom0.ok_write("/local/domain/5/hidden/deeper", "")        # node and parent unreadable
    assert g.take_events() == []


def test_transaction_events_at_commit_in_first_touch_order(dom0: Client) -> None:
    w = Client(dom0.xs)
    w.watch("/", "all")
    w.take_events()
    tx = dom0.start()
    dom0.read("/local/domain/0/name", tx)
    dom0.ok_write("/tb", "1", tx)
    dom0.ok_write("/ta", "1", tx)
    dom0.ok_write("/tb", "2", tx)
    dom0.chmod("/tb", "n0", tx_id=tx)
    assert w.take_events() == []
    assert dom0.end(tx).payload == b"OK\0"
    assert w.take_events() == [ev("/tb", "all"), ev("/ta", "all")]


def test_transaction_abort_sends_nothing(dom0: Client) -> None:
    w = Client(dom0.xs)
    w.watch("/", "all")
    w.take_events()
    tx = dom0.start()
    dom0.ok_write("/x", "1", tx)
    dom0.end(tx, commit=False)
    assert w.take_events() == []


def test_rm_in_transaction_fires_root_then_descendants(dom0: Client) -> None:
    dom0.ok_write("/r/a")
    dom0.ok_write("/r/b")
    w = Client(dom0.xs)
    for path in ("/r", "/r/a", "/r/b"):
        w.watch(path, path)
    w.take_events()
    tx = dom0.start()
    dom0.rm("/r", tx)
    dom0.end(tx)
    assert w.take_events() == [ev("/r", "/r"), ev("/r/a", "/r/a"), ev("/r/b", "/r/b")]


def test_identical_unsent_events_coalesce(dom0: Client) -> None:
    w = Client(dom0.xs)
    w.watch("/c")
    w.take_events()
    for value in "123":
        dom0.ok_write("/c", value)
    assert w.take_events() == [ev("/c")]
    dom0.ok_write("/c", "4")
    assert w.take_events() == [ev("/c")]


def test_special_watches(engine: Engine) -> None:
    dom0 = engine.dom0()
    for path in ("@introduceDomain", "@releaseDomain", "@", "/", "@releaseDomain/9", "@xyz"):
        dom0.watch(path, path)
    dom0.take_events()
    engine.add_guest(9)
    assert [e for e in dom0.take_events() if e[0].startswith(b"@")] == [
        ev("@introduceDomain", "@introduceDomain")]
    dom0.call(Op.INTRODUCE, 9, 0, 1)          # re-introduce: no event
    assert dom0.take_events() == []
    dom0.call(Op.RELEASE, 9)
    assert [e for e in dom0.take_events() if e[0].startswith(b"@")] == [
        ev("@releaseDomain", "@releaseDomain")]


def test_special_events_need_read_on_special_acl(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    g.watch("@introduceDomain", "i")
    assert g.take_events() == [ev("@introduceDomain", "i")]
    engine.add_guest(8)
    assert g.take_events() == []
    engine.dom0().chmod("@introduceDomain", "n0", "r5")
    engine.add_guest(9)
    assert g.take_events() == [ev("@introduceDomain", "i")]


def test_special_events_do_not_coalesce(engine: Engine) -> None:
    dom0 = engine.dom0()
    w = Client(engine.xs)
    w.watch("@introduceDomain", "i")
    w.take_events()
    engine.add_guest(5)
    engine.add_guest(6)
    assert w.take_events() == [ev("@introduceDomain", "i")] * 2
    del dom0


def test_reset_watches_drops_watches_and_transactions(dom0: Client) -> None:
    dom0.watch("/w")
    tx = dom0.start()
    dom0.call(Op.RESET_WATCHES, "")
    dom0.take_events()
    dom0.ok_write("/w", "1")
    assert dom0.take_events() == []
    assert dom0.err(Op.READ, "/w", tx_id=tx) == "ENOENT"


def test_watch_quota_allows_quota_plus_one(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    engine.dom0().call(Op.CONTROL, "quota", "set", "watches", "3")
    for i in range(4):
        g.watch(f"/w{i}")
    assert g.err(Op.WATCH, "/w9", "t") == "E2BIG"
    other = engine.guest(5)                     # the quota is the domain's
    assert other.err(Op.WATCH, "/w9", "t") == "E2BIG"


def test_disconnect_drops_watches(dom0: Client) -> None:
    w = Client(dom0.xs)
    w.watch("/d")
    w.close()
    dom0.ok_write("/d", "1")
    assert w.conn.out == []


def test_overlong_event_is_dropped(dom0: Client) -> None:
    token = "t" * 2100
    dom0.watch("/", token)
    dom0.take_events()
    dom0.ok_write("/" + "a" * 2000, "")
    assert dom0.take_events() == []
