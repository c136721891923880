"""§8 Domain operations, domain life cycle events, and the xl layout a guest sees."""

from __future__ import annotations

import pytest

from xsactor.daemon.toolstack import GUEST_OWNED_NODES, GuestSpec
from xsactor.protocol import Op

from .conftest import Conn, Harness
from .util import (
    assert_error,
    assert_ok,
    assert_success,
    no_events,
    quota_field,
    vm_path,
    watch,
    wr,
)

UNKNOWN = 30000
RELEASED = (b"@releaseDomain", b"rel")
"""The event of a watch on ``@releaseDomain`` with the token ``rel``."""


# -- privilege ------------------------------------------------------------------------------

PRIVILEGED = [
    (Op.CONTROL, ("check",)), (Op.INTRODUCE, ("DOMID", "0", "1")), (Op.RELEASE, ("DOMID",)),
    (Op.RESUME, ("DOMID",)), (Op.SET_TARGET, ("DOMID", "0")), (Op.IS_DOMAIN_INTRODUCED, ("0",)),
]


@pytest.mark.parametrize("op, args", PRIVILEGED, ids=[Op(o).name for o, _ in PRIVILEGED])
def test_privileged_op_from_guest_is_eacces(daemon: Harness, op: int, args: tuple) -> None:
    g = daemon.guest()
    args = tuple(str(g.domid) if a == "DOMID" else a for a in args)
    assert_error(g.request(op, *args), "EACCES")
    assert g.read("domid") == str(g.domid).encode()


def test_guest_may_get_domain_paths(daemon: Harness) -> None:
    g = daemon.guest()
    assert g.call(Op.GET_DOMAIN_PATH, g.domid) == f"{g.home}\0".encode()
    assert g.call(Op.GET_DOMAIN_PATH, 0) == b"/local/domain/0\0"


# -- INTRODUCE ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [(), ("DOMID",), ("DOMID", "0"), ("DOMID", "0", "0"),
                                  ("DOMID", "0", "x"), ("DOMID", "0", "-0")])
def test_introduce_bad_arguments_are_einval(daemon: Harness, args: tuple) -> None:
    c = daemon.dom0()
    domid = daemon.new_domid()
    args = tuple(str(domid) if a == "DOMID" else a for a in args)
    assert_error(c.request(Op.INTRODUCE, *args), "EINVAL")
    assert c.call(Op.IS_DOMAIN_INTRODUCED, domid) == b"F\0"


def test_introduce_negative_port_is_accepted(daemon: Harness) -> None:
    g = daemon.guest(store_port=-3)
    assert g.read("domid") == str(g.domid).encode()
    assert daemon.dom0().call(Op.IS_DOMAIN_INTRODUCED, g.domid) == b"T\0"


def test_reintroduce_is_ok_and_resets_the_connection(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "t")
    tx = g.start()
    g.write("data/in-tx", b"", tx_id=tx)
    assert_ok(daemon.dom0().request(Op.INTRODUCE, g.domid, 0, 1))
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")
    g.write("data/x", b"")
    no_events(g)
    assert_error(g.request(Op.READ, "data/in-tx"), "ENOENT")
    watch(g, "data", "t")


def test_introduce_of_dom0_is_ok_without_event(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, "@introduceDomain", "i")
    assert_ok(c.request(Op.INTRODUCE, 0, 0, 1))
    no_events(c)
    assert c.call(Op.IS_DOMAIN_INTRODUCED, 0) == b"T\0"


def test_reintroduce_with_other_ring_and_port_is_ok(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    watch(c, "@introduceDomain", "i")
    assert_ok(c.request(Op.INTRODUCE, g.domid, 5, 1))
    assert_ok(c.request(Op.INTRODUCE, g.domid, 0, 7))
    no_events(c)
    assert g.read("domid") == str(g.domid).encode()


# -- IS_DOMAIN_INTRODUCED -------------------------------------------------------------------

@pytest.mark.parametrize("domid, answer", [(0, b"T\0"), (32752, b"T\0"), (UNKNOWN, b"F\0")])
def test_is_domain_introduced(daemon: Harness, domid: int, answer: bytes) -> None:
    c = daemon.dom0()
    assert c.call(Op.IS_DOMAIN_INTRODUCED, domid) == answer


def test_is_domain_introduced_for_guest(daemon: Harness) -> None:
    c = daemon.dom0()
    domid = daemon.new_domid()
    assert c.call(Op.IS_DOMAIN_INTRODUCED, domid) == b"F\0"
    daemon.add_guest(daemon.spec(domid))
    assert c.call(Op.IS_DOMAIN_INTRODUCED, domid) == b"T\0"
    c.release(domid)
    assert c.call(Op.IS_DOMAIN_INTRODUCED, domid) == b"F\0"


# -- RELEASE --------------------------------------------------------------------------------

@pytest.mark.parametrize("arg, error", [("0", "EINVAL"), ("abc", "EINVAL"),
                                        (str(UNKNOWN), "ENOENT")])
def test_release_errors(daemon: Harness, arg: str, error: str) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.RELEASE, arg), error)


def test_release_deletes_owned_nodes_and_fires(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    g.write("data/mine", b"1")
    c.write(f"{g.home}/dom0-owned", b"stays")
    c.write(daemon.p("shared"), b"")
    c.set_perms(daemon.p("shared"), ["n0", f"b{g.domid}"])
    g.write(daemon.p("shared", "guest-made"), b"")
    watch(c, "@releaseDomain", "rel")
    c.release(g.domid)
    assert c.drain_events() == [RELEASED]
    for gone in ("data", "data/mine", "control/shutdown", "error", "attr", "feature"):
        assert_error(c.request(Op.READ, f"{g.home}/{gone}"), "ENOENT")
    assert_error(c.request(Op.READ, daemon.p("shared", "guest-made")), "ENOENT")
    assert c.read(f"{g.home}/dom0-owned") == b"stays"
    assert c.read(f"{g.home}/domid") == str(g.domid).encode()
    assert c.directory(daemon.p("shared")) == []


def test_release_closes_the_guest_connection(daemon: Harness) -> None:
    g = daemon.guest()
    daemon.dom0().release(g.domid)
    assert g.is_closed(timeout=5)


def test_release_twice_is_enoent(daemon: Harness) -> None:
    domid = daemon.add_guest()
    c = daemon.dom0()
    assert_ok(c.request(Op.RELEASE, domid))
    assert_error(c.request(Op.RELEASE, domid), "ENOENT")


def test_release_keeps_ownership_elsewhere_working(daemon: Harness) -> None:
    g = daemon.guest()
    h = daemon.guest()
    h.write("data/h", b"1")
    daemon.dom0().release(g.domid)
    assert h.read("data/h") == b"1"


# -- RESUME ---------------------------------------------------------------------------------

@pytest.mark.parametrize("arg, error", [("0", "EINVAL"), (str(UNKNOWN), "ENOENT")])
def test_resume_errors(daemon: Harness, arg: str, error: str) -> None:
    assert_error(daemon.dom0().request(Op.RESUME, arg), error)


def test_resume_of_running_domain_is_ok(daemon: Harness) -> None:
    domid = daemon.add_guest()
    assert_ok(daemon.dom0().request(Op.RESUME, domid))


# -- GET_DOMAIN_PATH ------------------------------------------------------------------------

@pytest.mark.parametrize("arg, path", [
    ("7", "/local/domain/7"), ("00007", "/local/domain/7"), ("abc", "/local/domain/0"),
    ("-1", "/local/domain/4294967295"), ("12abc", "/local/domain/12"),
    (" 9", "/local/domain/9"), ("+5", "/local/domain/5"), ("", "/local/domain/0"),
    ("32767", "/local/domain/32767"), ("0x10", "/local/domain/0"),
])
def test_get_domain_path_uses_atoi(daemon: Harness, arg: str, path: str) -> None:
    reply = daemon.dom0().request(Op.GET_DOMAIN_PATH, arg)
    assert (reply.op, reply.payload) == (Op.GET_DOMAIN_PATH, path.encode() + b"\0")


# -- SET_TARGET -----------------------------------------------------------------------------

def test_set_target_argument_errors(daemon: Harness) -> None:
    c = daemon.dom0()
    a = daemon.add_guest()
    assert_error(c.request(Op.SET_TARGET, a), "EINVAL")
    assert_error(c.request(Op.SET_TARGET, UNKNOWN, a), "ENOENT")
    assert_error(c.request(Op.SET_TARGET, a, UNKNOWN), "ENOENT")


def test_set_target_gives_owner_rights(daemon: Harness) -> None:
    a = daemon.guest()
    b = daemon.guest()
    c = daemon.dom0()
    b.write("data/x", b"b's")
    assert_error(a.request(Op.READ, f"{b.home}/data/x"), "EACCES")
    assert_ok(c.request(Op.SET_TARGET, a.domid, b.domid))
    assert a.read(f"{b.home}/data/x") == b"b's"
    assert_ok(wr(a, f"{b.home}/data/x", b"by a"))
    assert_ok(a.request(Op.SET_PERMS, f"{b.home}/data/x", f"n{b.domid}", f"r{a.domid}"))
    assert_error(a.request(Op.SET_PERMS, f"{b.home}/data/x", f"n{a.domid}"), "EPERM")
    assert b.read("data/x") == b"by a"


def test_set_target_inherits_targets_acl_entries(daemon: Harness) -> None:
    a = daemon.guest()
    b = daemon.guest()
    c = daemon.dom0()
    assert_ok(c.request(Op.SET_TARGET, a.domid, b.domid))
    assert a.read(f"{b.home}/domid") == str(b.domid).encode()
    assert_error(wr(a, f"{b.home}/name", b"x"), "EACCES")
    assert_error(a.request(Op.READ, f"/libxl/{b.domid}"), "EACCES")


@pytest.mark.parametrize("acl, can_read, can_write", [
    (["n0", "r{target}", "w{ctl}"], True, False),
    (["n0", "w{ctl}", "r{target}"], False, True),
    (["b0", "n{target}"], False, False),
])
def test_set_target_first_matching_entry(daemon: Harness, acl: list[str], can_read: bool,
                                         can_write: bool) -> None:
    ctl = daemon.guest()
    target = daemon.add_guest()
    c = daemon.dom0()
    assert_ok(c.request(Op.SET_TARGET, ctl.domid, target))
    c.write(daemon.p("n"), b"v")
    c.set_perms(daemon.p("n"), [e.format(ctl=ctl.domid, target=target) for e in acl])
    read = ctl.request(Op.READ, daemon.p("n"))
    assert (read.payload == b"v") is can_read, read
    assert (wr(ctl, daemon.p("n"), b"x").payload == b"OK\0") is can_write


def test_set_target_is_one_way(daemon: Harness) -> None:
    a = daemon.guest()
    b = daemon.guest()
    assert_ok(daemon.dom0().request(Op.SET_TARGET, a.domid, b.domid))
    a.write("data/a", b"1")
    assert_error(b.request(Op.READ, f"{a.home}/data/a"), "EACCES")


# -- life cycle -----------------------------------------------------------------------------

def shut_down(daemon: Harness, state: str = "shutdown") -> tuple[Conn, Conn]:
    """A guest the hypervisor has put in ``state``, and a dom0 connection watching
    ``@releaseDomain`` that has had the event for it."""
    g = daemon.guest()
    c = daemon.dom0()
    watch(c, "@releaseDomain", "rel")
    daemon.set_domain_state(g.domid, state)
    assert c.next_event() == RELEASED
    return g, c


@pytest.mark.parametrize("state", ["shutdown", "crashed"])
def test_shutdown_fires_release_domain_once(daemon: Harness, state: str) -> None:
    g, c = shut_down(daemon, state)
    daemon.set_domain_state(g.domid, state)
    no_events(c)
    assert c.call(Op.IS_DOMAIN_INTRODUCED, g.domid) == b"T\0"
    assert g.read("domid") == str(g.domid).encode()
    assert c.read(f"{g.home}/control/shutdown") == b""


def test_shutdown_then_crash_fires_once(daemon: Harness) -> None:
    g, c = shut_down(daemon)
    daemon.set_domain_state(g.domid, "crashed")
    no_events(c)


def test_resume_rearms_release_domain(daemon: Harness) -> None:
    g, c = shut_down(daemon)
    daemon.set_domain_state(g.domid, "running")
    no_events(c)
    assert_ok(c.request(Op.RESUME, g.domid))
    daemon.set_domain_state(g.domid, "shutdown")
    assert c.next_event() == RELEASED


def test_running_again_without_resume_does_not_rearm(daemon: Harness) -> None:
    g, c = shut_down(daemon)
    daemon.set_domain_state(g.domid, "running")
    daemon.set_domain_state(g.domid, "shutdown")
    no_events(c)


def test_resume_of_a_still_shut_down_domain_fires_again_on_any_domain_exception(
        fresh_daemon: Harness) -> None:
    """Differential finding: on every domain-exception VIRQ 4.17 checks every domain again
    (``domain_cleanup``), so a domain RESUMEd while the hypervisor still reports it shut down
    fires ``@releaseDomain`` again when *another* domain changes state."""
    g, c = shut_down(fresh_daemon)
    other = fresh_daemon.add_guest()
    assert_ok(c.request(Op.RESUME, g.domid))
    no_events(c)
    fresh_daemon.set_domain_state(other, "running")
    assert c.next_event() == RELEASED
    fresh_daemon.set_domain_state(other, "running")
    no_events(c)


@pytest.mark.parametrize("newer_dies", [True, False])
def test_death_and_a_resumed_shut_down_domain_in_one_domain_exception(
        fresh_daemon: Harness, newer_dies: bool) -> None:
    """Differential finding: 4.17 checks domains newest first; destroying one fires
    ``@releaseDomain`` and starts the check over, dropping a notification found before it.
    A resumed domain that is still shut down therefore adds a second event only when it was
    made before the one that dies."""
    older, c = shut_down(fresh_daemon)
    newer = fresh_daemon.guest()
    if newer_dies:
        resumed, dying = older, newer
    else:
        fresh_daemon.set_domain_state(newer.domid, "shutdown")
        assert c.next_event() == RELEASED
        resumed, dying = newer, older
    assert_ok(c.request(Op.RESUME, resumed.domid))
    no_events(c)
    fresh_daemon.set_domain_state(dying.domid, "gone")
    assert c.drain_events() == ([RELEASED, RELEASED] if newer_dies else [RELEASED])


@pytest.mark.parametrize("sender", ["dom0", "guest"])
def test_a_refused_set_perms_makes_the_records_of_the_domains_it_names(
        fresh_daemon: Harness, sender: str) -> None:
    """Differential finding (narrow 2003, 2021): 4.17 makes a record for each domain an ACL
    names (``domain_alloc_permrefs``) before it looks for the node, so a SET_PERMS refused,
    from dom0 or a guest, still makes them. A domain introduced later keeps that older record
    and its place in the newest-first check: a resumed, still crashed domain introduced after
    the record was made is checked before it, and its notification is dropped when it dies."""
    ctl, c = fresh_daemon.dom0(), fresh_daemon.dom0()
    named = fresh_daemon.new_domid()
    if sender == "dom0":
        refused = ctl.request(Op.SET_PERMS, fresh_daemon.p("missing"), "n0", f"r{named}")
    else:
        g = fresh_daemon.guest()
        refused = g.request(Op.SET_PERMS, fresh_daemon.p("missing"), f"n{g.domid}",
                            f"r{named}")
    assert refused.op == Op.ERROR
    resumed = fresh_daemon.add_guest()
    fresh_daemon.add_guest(fresh_daemon.spec(named))
    watch(c, "@releaseDomain", "rel")
    fresh_daemon.set_domain_state(resumed, "crashed")
    assert c.next_event() == RELEASED
    assert_ok(ctl.request(Op.RESUME, resumed))
    fresh_daemon.set_domain_state(named, "gone")
    assert c.drain_events() == [RELEASED]


def test_an_acl_may_name_a_domain_the_daemon_knows_though_the_hypervisor_does_not(
        fresh_daemon: Harness) -> None:
    """Differential finding: 4.17 takes an ACL entry's domain as existing when it has a record
    for it (``domain_alloc_permrefs``), and asks the hypervisor only otherwise. A domain
    re-INTRODUCEd after it was gone (no VIRQ since) may own nodes; one merely gone may not
    (ENOENT), and an entry naming it grants nothing, even to a new domain with its domid."""
    c = fresh_daemon.dom0()
    back, gone = fresh_daemon.add_guest(), fresh_daemon.add_guest()
    for domid in (back, gone):
        fresh_daemon.set_domain_state(domid, "gone")
    c.introduce(back, 0, 1)
    c.write("/acl", b"")
    assert_ok(c.request(Op.SET_PERMS, "/acl", f"n{back}", "r0"))
    assert c.get_perms("/acl") == [f"n{back}", "r0"]
    assert_error(c.request(Op.SET_PERMS, "/acl", f"n{gone}"), "ENOENT")
    assert_ok(c.request(Op.SET_PERMS, "/acl", "n0", f"r{gone}"))
    assert c.get_perms("/acl") == ["n0", f"r{gone}"]
    fresh_daemon.add_guest(fresh_daemon.spec(gone))
    assert_error(fresh_daemon.connect(gone).request(Op.READ, "/acl"), "EACCES")


def test_an_acl_entry_counts_for_a_domain_record_no_newer_than_the_node(
        fresh_daemon: Harness) -> None:
    """Differential finding (narrow plan, seed 417): 4.17 judges an ACL entry on every check
    (``chk_domain_generation``): it counts if the named domain has a record made no later
    than the node was last written. A record made right after a write has that write's
    generation, so a domid back after RELEASE regains its entry on the node written last,
    not on older ones, nor on one written while it had no record (that write keeps the
    entry flagged for good)."""
    c = fresh_daemon.dom0()
    domid = fresh_daemon.new_domid()
    for path in ("/older", "/kept", "/newest"):
        c.write(path, b"v")
        assert_ok(c.request(Op.SET_PERMS, path, "n0", f"b{domid}"))
    c.introduce(domid, 0, 1)
    c.release(domid)
    c.write("/kept", b"w")                  # no record for domid: its entry stays flagged
    c.introduce(domid, 0, 1)                # a record newer than every node: entries void
    tx = c.start()
    assert_ok(c.request(Op.SET_PERMS, "/newest", "n0", f"b{domid}", tx_id=tx))  # fresh flags
    c.write("/newest", b"w", tx_id=tx)
    c.end(tx)                               # the last write before the new record
    c.release(domid)
    assert_ok(c.request(Op.SET_PERMS, "@releaseDomain", "n0", f"r{domid}"))  # a new record
    fresh_daemon.add_guest(fresh_daemon.spec(domid))
    g = fresh_daemon.connect(domid)
    assert g.read("/newest") == b"w"
    tx = g.start()
    assert_ok(g.request(Op.MKDIR, "/newest", tx_id=tx))
    g.end(tx)
    for path in ("/older", "/kept"):
        assert_error(g.request(Op.READ, path), "EACCES")
        assert c.get_perms(path) == ["n0", f"b{domid}"]


@pytest.mark.parametrize("state", ["dying", "gone"])
def test_domain_death_deletes_owned_nodes(daemon: Harness, state: str) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    g.write("data/mine", b"1")
    c.write(f"{g.home}/kept", b"dom0's")
    watch(c, "@releaseDomain", "rel")
    daemon.set_domain_state(g.domid, state)
    assert c.next_event() == RELEASED
    assert_error(c.request(Op.READ, f"{g.home}/data"), "ENOENT")
    assert_error(c.request(Op.READ, f"{g.home}/control/shutdown"), "ENOENT")
    assert c.read(f"{g.home}/kept") == b"dom0's"
    assert c.read(f"{g.home}/name") == f"guest{g.domid}".encode()
    assert c.call(Op.IS_DOMAIN_INTRODUCED, g.domid) == b"F\0"
    assert_error(c.request(Op.RELEASE, g.domid), "ENOENT")


def test_domain_death_closes_its_connection(daemon: Harness) -> None:
    g = daemon.guest()
    daemon.set_domain_state(g.domid, "gone")
    assert g.is_closed(timeout=5)


def test_shutdown_then_death_fires_again(daemon: Harness) -> None:
    g, c = shut_down(daemon)
    daemon.set_domain_state(g.domid, "dying")
    assert c.next_event() == RELEASED


def test_other_domains_unaffected_by_death(daemon: Harness) -> None:
    g = daemon.guest()
    h = daemon.guest()
    h.write("data/h", b"1")
    daemon.set_domain_state(g.domid, "gone")
    assert h.read("data/h") == b"1"
    assert daemon.dom0().call(Op.IS_DOMAIN_INTRODUCED, h.domid) == b"T\0"


# -- the xl layout as a guest sees it -------------------------------------------------------

def test_guest_home_values(daemon: Harness) -> None:
    g = daemon.guest(name="web-1", memory_kb=524288)
    assert g.read("domid") == str(g.domid).encode()
    assert g.read("name") == b"web-1"
    assert g.read("vm") == vm_path(g.domid).encode()
    assert g.read("memory/target") == b"524288"
    assert g.read("memory/static-max") == b"524288"
    assert g.read("memory/videoram") == b"0"
    assert g.read("cpu/0/availability") == b"online"
    assert g.read("store/port") == b"1"
    assert g.read("store/ring-ref") == b"0"
    assert g.read("control/platform-feature-xs_reset_watches") == b"1"
    assert g.read("control/platform-feature-multiprocessor-suspend") == b"1"


def test_guest_home_listing(daemon: Harness) -> None:
    g = daemon.guest()
    assert sorted(g.directory(g.home)) == sorted(
        [b"vm", b"name", b"cpu", b"memory", b"device", b"control", b"data", b"drivers",
         b"feature", b"attr", b"error", b"domid", b"store", b"console"])
    assert sorted(g.directory("control")) == sorted(
        [b"shutdown", b"feature-poweroff", b"feature-reboot", b"feature-suspend", b"sysrq",
         b"platform-feature-multiprocessor-suspend", b"platform-feature-xs_reset_watches"])
    assert g.directory("device") == [b"suspend"]


def test_guest_home_permissions(daemon: Harness) -> None:
    g = daemon.guest()
    for path in ("", "/cpu", "/memory", "/device", "/control", "/name", "/domid"):
        assert g.get_perms(g.home + path) == ["n0", f"r{g.domid}"], path
    for path in ("control/shutdown", "data", "drivers", "feature", "attr", "error",
                 "device/suspend/event-channel", "control/sysrq"):
        assert g.get_perms(path) == [f"n{g.domid}"], path


@pytest.mark.parametrize("path", ["control/shutdown", "control/feature-poweroff", "data",
                                  "drivers", "feature", "attr", "error",
                                  "device/suspend/event-channel"])
def test_guest_writable_nodes(daemon: Harness, path: str) -> None:
    g = daemon.guest()
    assert_ok(wr(g, path, b"1"))
    assert g.read(path) == b"1"


@pytest.mark.parametrize("path", ["name", "domid", "vm", "memory/target", "control",
                                  "device", "store/port", "cpu/0/availability"])
def test_guest_readonly_nodes(daemon: Harness, path: str) -> None:
    g = daemon.guest()
    assert_error(wr(g, path, b"x"), "EACCES")


def test_guest_reads_its_vm_but_not_libxl(daemon: Harness) -> None:
    g = daemon.guest()
    assert g.read(f"{vm_path(g.domid)}/uuid") == GuestSpec(g.domid).uuid.encode()
    assert_error(wr(g, f"{vm_path(g.domid)}/uuid", b"x"), "EACCES")
    assert_error(g.request(Op.DIRECTORY, f"/libxl/{g.domid}"), "EACCES")
    assert_error(g.request(Op.DIRECTORY, "/local/domain"), "EACCES")


def test_guest_cannot_read_other_guests(daemon: Harness) -> None:
    g = daemon.guest()
    h = daemon.guest()
    assert_error(g.request(Op.READ, f"{h.home}/name"), "EACCES")
    assert_error(h.request(Op.READ, f"{g.home}/name"), "EACCES")


def test_dom0_sees_vm_and_libxl(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    vm = vm_path(g.domid)
    assert c.read(f"{vm}/uuid") == vm.split("/")[-1].encode()
    assert c.read(f"{vm}/name") == f"guest{g.domid}".encode()
    assert c.get_perms(vm) == ["n0", f"r{g.domid}"]
    assert c.directory(f"/libxl/{g.domid}") == [b"device", b"type", b"dm-version"]


def test_guest_owns_twelve_nodes(daemon: Harness) -> None:
    g = daemon.guest()
    text = assert_success(daemon.dom0().request(Op.CONTROL, "quota", g.domid)).decode()
    assert quota_field(text, "nodes")[0] == str(GUEST_OWNED_NODES)
