"""§6 Watches: registration, identity, matching, which operations fire, relative reporting,
the permission filter, special watches and RESET_WATCHES."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op, Packet

from .conftest import RESET_IN_TRANSACTION, STALE_ERRNO, Conn, Harness, embedded_only
from .util import (
    OK,
    assert_error,
    assert_ok,
    no_events,
    watch,
)


def ev(path: str, token: str) -> tuple[bytes, bytes]:
    return path.encode(), token.encode()


# -- registration and identity --------------------------------------------------------------

def test_initial_event_for_missing_path(daemon: Harness) -> None:
    c = daemon.dom0()
    c.watch(daemon.p("does", "not", "exist"), "tok")
    assert c.next_event() == ev(daemon.p("does", "not", "exist"), "tok")
    no_events(c)


def test_initial_event_for_unreadable_path(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"/libxl/{g.domid}"
    g.watch(path, "t")
    assert g.next_event() == ev(path, "t")


def test_initial_event_keeps_relative_path(daemon: Harness) -> None:
    g = daemon.guest()
    g.watch("data", "rel")
    assert g.next_event() == (b"data", b"rel")


@pytest.mark.parametrize("token", [b"", b"with spaces", b"\xff\x01bin", b"@/x", b"t" * 1000])
def test_token_bytes(daemon: Harness, token: bytes) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    watch(c, path, token)
    c.write(path, b"1")
    assert c.next_event() == (path.encode(), token)


def test_duplicate_watch_is_eexist(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("w"), "t")
    assert_error(c.request(Op.WATCH, daemon.p("w"), "t"), "EEXIST")
    no_events(c)


def test_duplicate_relative_and_absolute_from_guest(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "t")
    assert_error(g.request(Op.WATCH, f"{g.home}/data", "t"), "EEXIST")
    h = daemon.guest()
    watch(h, f"{h.home}/data", "t")
    assert_error(h.request(Op.WATCH, "data", "t"), "EEXIST")


def test_duplicate_relative_and_absolute_from_socket(daemon: Harness) -> None:
    c = daemon.dom0()
    rel = daemon.component
    watch(c, rel, "t")
    assert_error(c.request(Op.WATCH, f"/local/domain/0/{rel}", "t"), "EEXIST")


def test_same_path_other_token_is_another_watch(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    watch(c, path, "one")
    watch(c, path, "two")
    c.write(path, b"x")
    assert sorted(c.drain_events()) == [ev(path, "one"), ev(path, "two")]


def test_same_watch_on_two_connections(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    path = daemon.p("w")
    watch(a, path, "t")
    watch(b, path, "t")
    a.write(path, b"x")
    assert a.drain_events() == [ev(path, "t")]
    assert b.next_event() == ev(path, "t")


def test_unwatch_stops_events(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    watch(c, path, "t")
    assert_ok(c.request(Op.UNWATCH, path, "t"))
    c.write(path, b"x")
    no_events(c)


def test_unwatch_by_the_other_form(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "t")
    assert_ok(g.request(Op.UNWATCH, f"{g.home}/data", "t"))
    watch(g, f"{g.home}/data", "u")
    assert_ok(g.request(Op.UNWATCH, "data", "u"))
    g.write("data/x", b"1")
    no_events(g)


def test_unwatch_unknown_is_enoent(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.UNWATCH, daemon.p("w"), "t"), "ENOENT")
    watch(c, daemon.p("w"), "t")
    assert_error(c.request(Op.UNWATCH, daemon.p("w"), "other"), "ENOENT")
    assert_error(c.request(Op.UNWATCH, daemon.p("w", "sub"), "t"), "ENOENT")


def test_unwatch_only_affects_own_connection(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    path = daemon.p("w")
    watch(a, path, "t")
    assert_error(b.request(Op.UNWATCH, path, "t"), "ENOENT")
    b.write(path, b"1")
    assert a.next_event() == ev(path, "t")


def test_watch_ignores_tx_id(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    reply = c.exchange(Packet.request(Op.WATCH, path, "t", req_id=5, tx_id=4242))
    assert (reply.op, reply.tx_id, reply.payload) == (Op.WATCH, 4242, OK)
    assert c.next_event() == ev(path, "t")
    reply = c.exchange(Packet.request(Op.UNWATCH, path, "t", req_id=6, tx_id=777))
    assert (reply.op, reply.tx_id, reply.payload) == (Op.UNWATCH, 777, OK)


def test_watch_inside_transaction_fires_outside(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    path = daemon.p("w")
    reply = c.exchange(Packet.request(Op.WATCH, path, "t", req_id=5, tx_id=tx))
    assert reply.payload == OK
    assert c.next_event() == ev(path, "t")
    c.end(tx, commit=False)
    daemon.dom0().write(path, b"1")
    assert c.next_event() == ev(path, "t")


# -- matching -------------------------------------------------------------------------------

def test_watch_fires_for_node_and_descendants(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("w"), "t")
    c.write(daemon.p("w"), b"1")
    c.write(daemon.p("w", "x", "y"), b"2")
    assert w.drain_events() == [ev(daemon.p("w"), "t"), ev(daemon.p("w", "x", "y"), "t")]


def test_watch_does_not_fire_for_name_prefix(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("w"), "t")
    c.write(daemon.p("wother"), b"1")
    c.write(daemon.p("w-x"), b"1")
    c.write(daemon.p(), b"parent")
    no_events(w)


def test_watch_on_root_fires_for_everything(fresh_daemon: Harness) -> None:
    c, w = fresh_daemon.dom0(), fresh_daemon.dom0()
    watch(w, "/", "root")
    c.write("/a/b", b"1")
    c.write("/local/domain/0/x", b"1")
    assert w.drain_events() == [ev("/a/b", "root"), ev("/local/domain/0/x", "root")]


def test_watch_on_root_ignores_special_events(fresh_daemon: Harness) -> None:
    w = fresh_daemon.dom0()
    watch(w, "/", "root")
    domid = fresh_daemon.add_guest()
    events = w.drain_events()
    assert ev("@introduceDomain", "root") not in events
    assert all(not p.startswith(b"@") for p, _ in events)
    fresh_daemon.dom0().release(domid)
    assert all(not p.startswith(b"@") for p, _ in w.drain_events())


def test_watches_fire_in_registration_order(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    x = daemon.p("x")
    for token, path in [("t1", x), ("t2", f"{x}/y"), ("t3", daemon.p()), ("t0", f"{x}/y")]:
        watch(w, path, token)
    c.write(f"{x}/y", b"1")
    assert w.drain_events() == [ev(f"{x}/y", t) for t in ("t1", "t2", "t3", "t0")]


def test_watch_order_follows_registration_not_depth(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    x = daemon.p("x")
    for token, path in [("deep", f"{x}/y"), ("top", daemon.p()), ("mid", x)]:
        watch(w, path, token)
    c.write(f"{x}/y", b"1")
    assert w.drain_events() == [ev(f"{x}/y", t) for t in ("deep", "top", "mid")]


# -- which operations fire ------------------------------------------------------------------

def test_write_fires_only_for_the_written_node(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("a"), "top")
    watch(w, daemon.p("a", "b"), "mid")
    c.write(daemon.p("a", "b", "c"), b"1")
    events = w.drain_events()
    assert sorted(events) == sorted([ev(daemon.p("a", "b", "c"), "top"),
                                     ev(daemon.p("a", "b", "c"), "mid")])


def test_mkdir_fires_only_for_the_named_node(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p(), "top")
    c.mkdir(daemon.p("x", "y", "z"))
    assert w.drain_events() == [ev(daemon.p("x", "y", "z"), "top")]


def test_rewriting_same_value_fires(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("a"), b"same")
    watch(w, daemon.p("a"), "t")
    c.write(daemon.p("a"), b"same")
    assert w.next_event() == ev(daemon.p("a"), "t")


def test_mkdir_fires_only_when_creating(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("m"), "t")
    c.mkdir(daemon.p("m"))
    assert w.next_event() == ev(daemon.p("m"), "t")
    c.mkdir(daemon.p("m"))
    no_events(w)


def test_set_perms_fires_even_if_unchanged(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("p"), b"")
    watch(w, daemon.p("p"), "t")
    c.set_perms(daemon.p("p"), ["n0"])
    assert w.next_event() == ev(daemon.p("p"), "t")


def test_failed_requests_fire_nothing(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p(), "t")
    c.request(Op.SET_PERMS, daemon.p("missing"), "n0")
    c.request(Op.RM, daemon.p("missing", "deeper"))
    c.request(Op.WRITE, daemon.p("bad.path"), "x")
    no_events(w)


def test_rm_of_missing_node_fires_nothing(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("parent"), b"")
    watch(w, daemon.p("parent"), "t")
    assert_ok(c.request(Op.RM, daemon.p("parent", "missing")))
    no_events(w)


def test_rm_leaf_fires_for_ancestor_watch(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("r", "a", "b"), b"")
    watch(w, daemon.p("r"), "t")
    c.rm(daemon.p("r", "a", "b"))
    assert w.drain_events() == [ev(daemon.p("r", "a", "b"), "t")]


def test_rm_subtree_fires_post_order(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    r = daemon.p("r")
    c.write(f"{r}/a/b", b"")
    c.write(f"{r}/c", b"")
    watch(w, f"{r}/a/b", "wb")
    watch(w, f"{r}/a", "wa")
    watch(w, f"{r}/c", "wc")
    watch(w, f"{r}/a/b/never", "wn")
    watch(w, r, "wr")
    watch(w, daemon.p(), "wtop")
    c.rm(r)
    events = w.drain_events()
    assert events[:3] == [ev(f"{r}/a/b", "wb"), ev(f"{r}/a", "wa"), ev(f"{r}/c", "wc")]
    assert sorted(events[3:]) == sorted([ev(r, "wr"), ev(r, "wtop")])


def test_rm_subtree_descendants_fire_exact_watches_only(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    r = daemon.p("r")
    c.write(f"{r}/a/b/c", b"")
    watch(w, f"{r}/a", "wa")
    c.rm(r)
    assert w.drain_events() == [ev(f"{r}/a", "wa")]


def test_rm_subtree_event_to_other_connection_order(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    r = daemon.p("r")
    c.write(f"{r}/x/y", b"")
    watch(w, f"{r}/x/y", "1")
    watch(w, f"{r}/x", "2")
    watch(w, r, "3")
    c.rm(r)
    assert w.drain_events() == [ev(f"{r}/x/y", "1"), ev(f"{r}/x", "2"), ev(r, "3")]


def test_event_longer_than_a_payload_is_dropped(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    top = daemon.p("w")
    token = b"t" * (4096 - 2 - len(top) - 90)
    watch(w, top, token)
    fits = f"{top}/{'a' * 89}"  # path + token + 2 NULs = 4096
    too_long = f"{top}/{'a' * 90}"
    c.write(too_long, b"")
    c.write(fits, b"")
    assert w.drain_events() == [(fits.encode(), token)]


def test_rm_of_guest_home_fires_relative_exact_events(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "d")
    watch(g, "control/shutdown", "s")
    watch(g, g.home, "h")
    watch(g, "/local/domain", "top")
    daemon.dom0().rm(g.home)
    # post-order over children in creation order: control/ comes before data
    assert g.drain_events() == [(b"control/shutdown", b"s"), (b"data", b"d"),
                                ev(g.home, "h"), ev(g.home, "top")]


# -- event paths ----------------------------------------------------------------------------

def test_event_carries_modified_path_not_watch_path(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("w"), "t")
    c.write(daemon.p("w", "deep", "node"), b"")
    assert w.next_event() == ev(daemon.p("w", "deep", "node"), "t")


def test_relative_watch_from_socket_reports_relative(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    rel = daemon.component
    watch(w, rel, "t")
    c.write(f"/local/domain/0/{rel}/q", b"")
    assert w.next_event() == (f"{rel}/q".encode(), b"t")
    c.rm(f"/local/domain/0/{rel}")
    assert w.next_event() == (rel.encode(), b"t")


def test_relative_watch_from_guest_reports_relative(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "t")
    daemon.dom0().write(f"{g.home}/data/x", b"1")
    assert g.next_event() == (b"data/x", b"t")
    g.write(f"{g.home}/data/y", b"1")
    assert g.next_event() == (b"data/y", b"t")


def test_absolute_watch_from_guest_reports_absolute(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, f"{g.home}/data", "t")
    g.write("data/x", b"1")
    assert g.next_event() == ev(f"{g.home}/data/x", "t")


# -- permission filter ----------------------------------------------------------------------

def guest_watching(daemon: Harness, *below: str, readable: bool = True
                   ) -> tuple[Conn, Conn, str]:
    """A guest watching node ``n`` (token ``t``), a dom0 connection, and ``n``'s path.

    dom0 has written ``n`` (or ``n/<below...>``) and, when ``readable``, given ``n`` the ACL
    ``n0 r<guest>``; otherwise ``n`` has dom0's default ACL ``n0``.
    """
    g = daemon.guest()
    c = daemon.dom0()
    n = daemon.p("n")
    c.write("/".join((n, *below)), b"")
    if readable:
        c.set_perms(n, ["n0", f"r{g.domid}"])
    watch(g, n, "t")
    return g, c, n


def test_no_event_for_unreadable_node(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon, readable=False)
    c.write(n, b"secret")
    c.write(f"{n}/x", b"secret")
    no_events(g)


def test_event_for_readable_node(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon)
    c.write(n, b"1")
    assert g.next_event() == ev(n, "t")


def test_event_when_parent_is_readable(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon, "s")
    c.write(f"{n}/s", b"hidden")
    assert g.next_event() == ev(f"{n}/s", "t")
    assert_error(g.request(Op.READ, f"{n}/s"), "EACCES")


def test_no_event_when_neither_node_nor_parent_readable(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon, "s", "t")
    c.write(f"{n}/s/t", b"hidden")
    no_events(g)


def test_set_perms_event_uses_old_acl(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon)
    c.set_perms(n, ["n0"])
    assert g.next_event() == ev(n, "t")
    c.write(n, b"1")
    no_events(g)


def test_set_perms_event_uses_new_acl(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon, readable=False)
    c.set_perms(n, ["n0", f"r{g.domid}"])
    assert g.next_event() == ev(n, "t")


def test_rm_event_uses_acl_before_deletion(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon)
    c.rm(n)
    assert g.next_event() == ev(n, "t")


def test_rm_of_unreadable_node_sends_nothing(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon, readable=False)
    c.rm(n)
    no_events(g)


def test_rm_descendant_events_are_filtered_by_node_or_parent(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    n = daemon.p("n")
    c.write(f"{n}/s/deep", b"")
    c.set_perms(n, ["n0", f"r{g.domid}"])
    c.set_perms(f"{n}/s", ["n0"])
    c.set_perms(f"{n}/s/deep", ["n0"])
    watch(g, f"{n}/s", "s")  # unreadable, but its parent is readable
    watch(g, f"{n}/s/deep", "deep")  # neither it nor its parent is readable
    watch(g, n, "n")
    c.rm(n)
    assert g.drain_events() == [ev(f"{n}/s", "s"), ev(n, "n")]


def test_set_perms_in_transaction_event_uses_old_acl(daemon: Harness) -> None:
    g, c, n = guest_watching(daemon)
    tx = c.start()
    c.set_perms(n, ["n0"], tx_id=tx)
    c.end(tx)
    assert g.drain_events() == [ev(n, "t")]


def test_guest_sees_dom0_writes_in_its_home(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "memory", "m")
    daemon.dom0().write(f"{g.home}/memory/target", b"1024")
    assert g.next_event() == (b"memory/target", b"m")


# -- special watches ------------------------------------------------------------------------

def test_introduce_fires_introduce_domain(daemon: Harness) -> None:
    w = daemon.dom0()
    watch(w, "@introduceDomain", "intro")
    daemon.add_guest()
    assert w.drain_events() == [(b"@introduceDomain", b"intro")]


def test_reintroduce_does_not_fire(daemon: Harness) -> None:
    domid = daemon.add_guest()
    w = daemon.dom0()
    watch(w, "@introduceDomain", "intro")
    assert_ok(w.request(Op.INTRODUCE, domid, 0, 1))
    no_events(w)


def test_release_fires_release_domain(daemon: Harness) -> None:
    domid = daemon.add_guest()
    w = daemon.dom0()
    watch(w, "@releaseDomain", "rel")
    w.release(domid)
    assert w.drain_events() == [(b"@releaseDomain", b"rel")]


@pytest.mark.parametrize("path", ["@", "@releaseDomain/DOMID", "@introduceDomain/DOMID",
                                  "@releaseDomainX", "@other"])
def test_only_exact_special_watches_fire(daemon: Harness, path: str) -> None:
    domid = daemon.new_domid()
    w = daemon.dom0()
    path = path.replace("DOMID", str(domid))
    watch(w, path, "t")
    daemon.add_guest(daemon.spec(domid))
    w.release(domid)
    no_events(w)


def test_guest_cannot_see_special_events_by_default(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "@introduceDomain", "i")
    watch(g, "@releaseDomain", "r")
    other = daemon.add_guest()
    daemon.dom0().release(other)
    no_events(g)


def test_special_acl_grants_guest_events(fresh_daemon: Harness) -> None:
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.SET_PERMS, "@releaseDomain", "n0", f"r{g.domid}"))
    watch(g, "@releaseDomain", "r")
    watch(g, "@introduceDomain", "i")
    other = fresh_daemon.add_guest()
    c.release(other)
    assert g.drain_events() == [(b"@releaseDomain", b"r")]


def test_special_acl_entry_naming_a_vanished_domain_grants_nothing(
        fresh_daemon: Harness) -> None:
    """Differential finding: like a node's ACL, a special ACL entry naming a domain that is
    gone (no record, unknown to the hypervisor) is kept but flagged ignored by 4.17, for
    good: a new domain with that domid does not see the events it names."""
    c = fresh_daemon.dom0()
    gone = fresh_daemon.add_guest()
    fresh_daemon.set_domain_state(gone, "gone")
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", "n0", f"r{gone}"))
    fresh_daemon.add_guest(fresh_daemon.spec(gone))
    again = fresh_daemon.connect(gone)
    watch(again, "@introduceDomain", "i")
    fresh_daemon.add_guest()
    no_events(again)
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", "n0", f"r{gone}"))  # known now
    fresh_daemon.add_guest()
    assert again.drain_events() == [(b"@introduceDomain", b"i")]


def test_guest_owner_of_special_acl_may_set_it(fresh_daemon: Harness) -> None:
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", f"n{g.domid}"))
    assert_ok(g.request(Op.SET_PERMS, "@introduceDomain", f"n{g.domid}", "r0"))
    watch(g, "@introduceDomain", "i")
    fresh_daemon.add_guest()
    assert g.drain_events() == [(b"@introduceDomain", b"i")]


def test_guest_owner_may_give_special_acl_away(fresh_daemon: Harness) -> None:
    """4.17 skips the owner-change check (EPERM) for the special paths."""
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", f"n{g.domid}"))
    assert_ok(g.request(Op.SET_PERMS, "@introduceDomain", "n0"))
    watch(g, "@introduceDomain", "i")
    fresh_daemon.add_guest()
    no_events(g)


@embedded_only(STALE_ERRNO)
def test_guest_cannot_take_a_given_away_special_acl_back(fresh_daemon: Harness) -> None:
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.SET_PERMS, "@introduceDomain", f"n{g.domid}"))
    assert_ok(g.request(Op.SET_PERMS, "@introduceDomain", "n0"))
    assert_error(g.request(Op.SET_PERMS, "@introduceDomain", f"n{g.domid}"), "EACCES")
    watch(g, "@introduceDomain", "i")
    fresh_daemon.add_guest()
    no_events(g)


# -- RESET_WATCHES --------------------------------------------------------------------------

def test_reset_watches_removes_all_watches(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("a"), "1")
    watch(w, daemon.p("b"), "2")
    assert_ok(w.request(Op.RESET_WATCHES))
    c.write(daemon.p("a"), b"")
    c.write(daemon.p("b"), b"")
    no_events(w)
    watch(w, daemon.p("a"), "1")


def test_reset_watches_from_guest(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "t")
    assert_ok(g.request(Op.RESET_WATCHES))
    g.write("data/x", b"")
    no_events(g)


def test_reset_watches_ignores_payload(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("a"), "1")
    assert_ok(c.request(Op.RESET_WATCHES, "anything", "at", "all"))
    c.write(daemon.p("a"), b"")
    no_events(c)


def test_reset_watches_discards_transactions(daemon: Harness) -> None:
    c = daemon.dom0()
    tx = c.start()
    c.write(daemon.p("a"), b"in-tx", tx_id=tx)
    assert_ok(c.request(Op.RESET_WATCHES))
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")
    assert_error(c.request(Op.READ, daemon.p("a")), "ENOENT")


@embedded_only(RESET_IN_TRANSACTION)
def test_reset_watches_with_a_transaction_id(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("a"), "1")
    tx = c.start()
    reply = c.exchange(Packet(Op.RESET_WATCHES, 4, tx, b""))
    assert (reply.op, reply.tx_id, reply.payload) == (Op.RESET_WATCHES, tx, OK)
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")
    c.write(daemon.p("a"), b"")
    no_events(c)


def test_reset_watches_only_affects_own_connection(daemon: Harness) -> None:
    a, b = daemon.dom0(), daemon.dom0()
    watch(a, daemon.p("w"), "t")
    assert_ok(b.request(Op.RESET_WATCHES))
    b.write(daemon.p("w"), b"")
    assert a.next_event() == ev(daemon.p("w"), "t")


# -- transactions and events ----------------------------------------------------------------

def test_transaction_events_at_commit_in_first_touch_order(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    for name in ("a", "b", "c"):
        c.write(daemon.p(name), b"0")
    watch(w, daemon.p(), "t")
    tx = c.start()
    c.write(daemon.p("c"), b"1", tx_id=tx)
    c.write(daemon.p("a"), b"1", tx_id=tx)
    c.write(daemon.p("c"), b"2", tx_id=tx)
    c.set_perms(daemon.p("a"), ["b0"], tx_id=tx)
    c.write(daemon.p("b"), b"1", tx_id=tx)
    no_events(w)
    c.end(tx)
    assert w.drain_events() == [ev(daemon.p("c"), "t"), ev(daemon.p("a"), "t"),
                                ev(daemon.p("b"), "t")]


def test_transaction_implicit_parents_do_not_fire(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p(), b"")
    watch(w, daemon.p(), "t")
    tx = c.start()
    c.write(daemon.p("new", "leaf"), b"1", tx_id=tx)
    c.mkdir(daemon.p("m", "n"), tx_id=tx)
    c.end(tx)
    assert w.drain_events() == [ev(daemon.p("new", "leaf"), "t"), ev(daemon.p("m", "n"), "t")]


def test_transaction_rm_then_write_fires_once(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("m", "child"), b"")
    watch(w, daemon.p(), "t")
    tx = c.start()
    c.rm(daemon.p("m"), tx_id=tx)
    c.write(daemon.p("m"), b"again", tx_id=tx)
    c.end(tx)
    assert w.drain_events() == [ev(daemon.p("m"), "t")]


@pytest.mark.parametrize("creator", ["dom0", "guest"])
def test_node_created_and_removed_in_one_transaction_fires_nothing(daemon: Harness,
                                                                   creator: str) -> None:
    """Differential finding: at commit 4.17 lets a watcher see a node's event only through
    the node's ACL before the transaction, or the node (or its parent) as committed. A node
    the transaction both created and removed has neither, so nobody is told, dom0's own
    watchers included; its surviving sibling still fires."""
    g = daemon.guest()
    w, c = daemon.dom0(), daemon.dom0()
    actor = c if creator == "dom0" else g
    base = daemon.p() if creator == "dom0" else f"{g.home}/data"
    c.write(base, b"")
    if creator == "guest":
        c.set_perms(base, [f"n{g.domid}"])
    watch(w, base, "t")
    watch(g, base, "g")
    tx = actor.start()
    actor.write(f"{base}/gone", b"1", tx_id=tx)
    actor.write(f"{base}/kept", b"1", tx_id=tx)
    actor.rm(f"{base}/gone", tx_id=tx)
    actor.end(tx)
    assert w.drain_events() == [ev(f"{base}/kept", "t")]
    expected_for_guest = [ev(f"{base}/kept", "g")] if creator == "guest" else []
    assert g.drain_events() == expected_for_guest


def test_aborted_transaction_fires_nothing(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p(), "t")
    tx = c.start()
    c.write(daemon.p("a"), b"1", tx_id=tx)
    c.end(tx, commit=False)
    no_events(w)


def test_failed_commit_fires_nothing(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    c.write(daemon.p("a"), b"0")
    tx = c.start()
    c.read(daemon.p("a"), tx_id=tx)
    c.write(daemon.p("b"), b"1", tx_id=tx)
    c.write(daemon.p("a"), b"outside")
    watch(w, daemon.p(), "t")
    assert_error(c.request(Op.TRANSACTION_END, "T", tx_id=tx), "EAGAIN")
    no_events(w)


def test_transaction_rm_subtree_fires_root_first(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    r = daemon.p("r")
    c.write(f"{r}/a/b", b"")
    watch(w, f"{r}/a/b", "wb")
    watch(w, f"{r}/a", "wa")
    watch(w, r, "wr")
    tx = c.start()
    c.rm(r, tx_id=tx)
    no_events(w)
    c.end(tx)
    events = w.drain_events()
    assert events[0] == ev(r, "wr")
    assert sorted(events[1:]) == sorted([ev(f"{r}/a/b", "wb"), ev(f"{r}/a", "wa")])


def test_transaction_events_go_to_the_committing_connection_first(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("a"), "t")
    tx = c.start()
    c.write(daemon.p("a"), b"1", tx_id=tx)
    c.send(Packet.request(Op.TRANSACTION_END, "T", req_id=99, tx_id=tx))
    first, second = c.recv(), c.recv()
    assert (first.op, first.payload) == (Op.WATCH_EVENT, daemon.p("a").encode() + b"\0t\0")
    assert (second.op, second.req_id, second.payload) == (Op.TRANSACTION_END, 99, OK)


def test_coalesced_events_are_at_least_one(daemon: Harness) -> None:
    c, w = daemon.dom0(), daemon.dom0()
    watch(w, daemon.p("a"), "t")
    c.send(*[Packet.write(daemon.p("a"), str(i), req_id=100 + i) for i in range(10)])
    for i in range(10):
        c.reply_to(100 + i)
    events = w.drain_events()
    assert 1 <= len(events) <= 10
    assert set(events) == {ev(daemon.p("a"), "t")}


def test_a_rewatch_pipelined_behind_its_unwatch_shares_the_unsent_first_event(
        daemon: Harness) -> None:
    """WATCH, UNWATCH, WATCH of one path and token in one write: 4.17 does not queue an event
    identical to one still unsent, so the three requests give one event, before the UNWATCH's
    reply. (The bus relies on it: a re-watch waits for a pending UNWATCH's reply.)"""
    c = daemon.dom0()
    args = (daemon.p("w"), "t")
    c.send(Packet.request(Op.WATCH, *args, req_id=1), Packet.request(Op.UNWATCH, *args, req_id=2),
           Packet.request(Op.WATCH, *args, req_id=3),
           Packet.request(Op.READ, daemon.p("nothing"), req_id=4))
    got = [c.recv() for _ in range(5)]
    assert [(p.op, p.req_id) for p in got] == [
        (Op.WATCH, 1), (Op.WATCH_EVENT, 0), (Op.UNWATCH, 2), (Op.WATCH, 3), (Op.ERROR, 4)]
    assert got[1].payload == daemon.p("w").encode() + b"\0t\0"
    no_events(c)
