"""§8 domain operations, the simulated hypervisor, §3 quotas and CONTROL commands."""

from __future__ import annotations

import pytest

from xsactor.daemon.toolstack import GUEST_OWNED_NODES
from xsactor.protocol import Op

from .conftest import Client, Engine


def test_introduce_argument_rules(dom0: Client) -> None:
    assert dom0.err(Op.INTRODUCE, 5, 0) == "EINVAL"
    assert dom0.err(Op.INTRODUCE, 5, 0, 0) == "EINVAL"
    assert dom0.err(Op.INTRODUCE, 5, 0, "abc") == "EINVAL"
    dom0.call(Op.INTRODUCE, 5, 0, -3)
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 5) == b"T\0"


def test_is_domain_introduced(dom0: Client) -> None:
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 0) == b"T\0"
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 32752) == b"T\0"
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 4) == b"F\0"


def test_release_deletes_owned_nodes_only(engine: Engine) -> None:
    engine.add_guest(9)
    dom0 = engine.dom0()
    g = engine.guest(9)
    g.ok_write("data/mine", "1")
    dom0.ok_write("/local/domain/9/y", "stays")          # owned by dom0
    dom0.ok_write("/elsewhere/g", "x")
    dom0.chmod("/elsewhere/g", "n9")                     # owned by 9, outside its home
    dom0.call(Op.RELEASE, 9)
    assert dom0.read("/local/domain/9/y") == b"stays"
    for gone in ("/local/domain/9/data", "/local/domain/9/data/mine", "/elsewhere/g",
                 "/local/domain/9/control/shutdown"):
        assert dom0.err(Op.READ, gone) == "ENOENT", gone
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 9) == b"F\0"
    assert dom0.err(Op.RELEASE, 9) == "ENOENT"
    assert engine.xs.store.problems() == []
    assert engine.xs.store.owned_by(9) == 0
    assert g.conn.closed


def test_release_argument_rules(dom0: Client) -> None:
    assert dom0.err(Op.RELEASE, 0) == "EINVAL"
    assert dom0.err(Op.RELEASE, "abc") == "EINVAL"
    assert dom0.err(Op.RELEASE, 4) == "ENOENT"
    assert dom0.err(Op.RESUME, 0) == "EINVAL"
    assert dom0.err(Op.RESUME, 4) == "ENOENT"
    assert dom0.err(Op.SET_TARGET, 4) == "EINVAL"
    assert dom0.err(Op.SET_TARGET, 4, 0) == "ENOENT"


def test_release_removes_domid_from_special_acls(engine: Engine) -> None:
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.chmod("@releaseDomain", "r5", "r7", "r5")
    dom0.call(Op.RELEASE, 5)
    assert engine.xs.special["@releaseDomain"][0].domid == 0
    assert [p.domid for p in engine.xs.special["@releaseDomain"]] == [0, 7]


def test_reintroduce_resets_connection_state(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    g.watch("data", "w")
    tx = g.start()
    engine.dom0().call(Op.INTRODUCE, 5, 0, 1)
    assert g.conn.watches == {} and g.conn.transactions == {}
    assert g.err(Op.READ, "name", tx_id=tx) == "ENOENT"
    domain = engine.xs.domains.get(5)
    assert domain is not None
    assert domain.watch_count == 0


@pytest.mark.parametrize("state", ["shutdown", "crashed"])
def test_shutdown_fires_release_once_until_resume(engine: Engine, state: str) -> None:
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.watch("@releaseDomain", "r")
    dom0.take_events()
    dom0.call(Op.CONTROL, "hypervisor", 5, state)
    dom0.call(Op.CONTROL, "hypervisor", 5, state)
    assert dom0.take_events() == [(b"@releaseDomain", b"r")]
    dom0.call(Op.RESUME, 5)
    dom0.call(Op.CONTROL, "hypervisor", 5, state)
    assert dom0.take_events() == [(b"@releaseDomain", b"r")]
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 5) == b"T\0"


@pytest.mark.parametrize("state", ["dying", "gone"])
def test_death_destroys_domain(engine: Engine, state: str) -> None:
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.watch("@releaseDomain", "r")
    dom0.take_events()
    engine.guest(5).ok_write("data/x", "1")
    dom0.call(Op.CONTROL, "hypervisor", 5, state)
    assert dom0.take_events() == [(b"@releaseDomain", b"r")]
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 5) == b"F\0"
    assert dom0.err(Op.READ, "/local/domain/5/data") == "ENOENT"


def test_hypervisor_command_errors(dom0: Client) -> None:
    assert dom0.err(Op.CONTROL, "hypervisor", 5) == "EINVAL"
    assert dom0.err(Op.CONTROL, "hypervisor", 5, "asleep") == "EINVAL"
    assert dom0.err(Op.CONTROL, "hypervisor", 0, "gone") == "EINVAL"


def test_release_fires_node_events_then_release_event_then_reply(engine: Engine) -> None:
    engine.add_guest(5)
    dom0 = engine.dom0()
    dom0.watch("/local/domain/5/data", "d")
    dom0.watch("@releaseDomain", "r")
    dom0.take_events()
    dom0.call(Op.RELEASE, 5)
    assert dom0.take_events() == [(b"/local/domain/5/data", b"d"), (b"@releaseDomain", b"r")]
    assert dom0.received[-1].op == Op.RELEASE


def test_keep_orphans_gives_nodes_to_dom0() -> None:
    from xsactor.daemon.quota import Quotas

    engine = Engine(Quotas())
    engine.xs.keep_orphans = True
    engine.add_guest(5)
    engine.dom0().call(Op.RELEASE, 5)
    assert engine.dom0().perms("/local/domain/5/data") == ["n0"]
    assert engine.xs.store.problems() == []


# -- §3 quotas -------------------------------------------------------------------------------
def test_node_quota_enospc_changes_nothing(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    assert engine.xs.store.owned_by(5) == GUEST_OWNED_NODES
    engine.dom0().call(Op.CONTROL, "quota", "set", "nodes", str(GUEST_OWNED_NODES + 3))
    g.ok_write("data/a", "1")
    g.ok_write("data/b", "1")
    before = engine.xs.store.dump()
    generation = engine.xs.store.generation
    assert g.err(Op.WRITE, "data/c/d", "1") == "ENOSPC"
    g.ok_write("data/c", "1")                       # the last one the quota allows
    assert g.err(Op.WRITE, "data/e", "1") == "ENOSPC"
    assert g.err(Op.MKDIR, "data/e") == "ENOSPC"
    after = engine.xs.store.dump()
    del after["/local/domain/5/data/c"]
    before["/local/domain/5/data"] = after["/local/domain/5/data"]
    assert after == before
    assert engine.xs.store.generation > generation
    g.ok_write("data/a", "rewrite is fine")
    engine.dom0().ok_write("/local/domain/5/data/dom0made", "x")   # dom0 is not limited
    assert engine.xs.store.problems() == []


def test_node_size_quota(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    engine.dom0().chmod("/local/domain/5/data", "n5", "r0")
    # 24 + 8*2 + datalen must stay below 2048
    g.ok_write("data/v", b"x" * 2007)
    assert g.err(Op.WRITE, "data/v", b"x" * 2008) == "ENOSPC"
    assert g.read("data/v") == b"x" * 2007
    engine.dom0().ok_write("/local/domain/5/data/v", b"x" * 3000)


def test_parent_size_checked_when_child_added(engine: Engine) -> None:
    engine.add_guest(5)
    g = engine.guest(5)
    g.ok_write("data/p", b"x" * 1990)              # 24 + 8 + 1990 = 2022
    g.ok_write("data/p/abcdefghijklmnopq")           # +18 = 2040
    assert g.err(Op.WRITE, "data/p/abcdefgh", "") == "ENOSPC"   # +9 = 2049
    assert g.ls("data/p") == ["abcdefghijklmnopq"]


def test_quotas_do_not_bind_dom0(dom0: Client) -> None:
    dom0.call(Op.CONTROL, "quota", "set", "nodes", "1")
    dom0.ok_write("/many/a/b/c", "x")


# -- CONTROL -----------------------------------------------------------------------------------
def test_control_commands(engine: Engine, tmp_path) -> None:
    dom0 = engine.dom0()
    assert dom0.call(Op.CONTROL, "check") == b"OK\0"
    assert dom0.err(Op.CONTROL, "check", "x") == "EINVAL"
    assert dom0.call(Op.CONTROL, "log", "on") == b"OK\0"
    assert dom0.err(Op.CONTROL, "log", "maybe") == "EINVAL"
    assert dom0.call(Op.CONTROL, "print", "hello") == b"OK\0"
    assert dom0.call(Op.CONTROL, "logfile", str(tmp_path / "f")) == b"OK\0"
    assert dom0.err(Op.CONTROL, "memreport") == "EINVAL"
    assert dom0.call(Op.CONTROL, "memreport", str(tmp_path / "m")) == b"OK\0"
    assert (tmp_path / "m").read_text()
    assert dom0.err(Op.CONTROL, "nosuch") == "EINVAL"
    assert dom0.raw_err(Op.CONTROL, b"check") == "EINVAL"
    help_text = dom0.call(Op.CONTROL, "help")
    assert help_text.startswith(b"check\t\nlog\ton|off\n") and help_text.endswith(b"help\t\n\0")
    assert b"hypervisor" not in help_text
    assert dom0.call(Op.CONTROL, "live-update", "-a") == b"No live-update session active.\0"
    assert dom0.err(Op.CONTROL, "live-update") == "EINVAL"


def test_control_quota(engine: Engine) -> None:
    dom0 = engine.dom0()
    listing = dom0.call(Op.CONTROL, "quota").decode()
    assert listing.startswith("Quota settings:\nnodes            :     1000 Nodes per domain\n")
    assert "watches          :      128 Watches per domain\n" in listing
    assert listing.endswith("permissions      :        5 Max. number of permissions per node\n\0")
    soft = dom0.call(Op.CONTROL, "quota-soft").decode()
    assert soft == ("Quota settings:\nmemory           :  2097152 "
                    "Total Xenstore memory per domain (warning level)\n\0")
    assert dom0.call(Op.CONTROL, "quota", "set", "watches", "7") == b"OK\0"
    assert "watches          :        7" in dom0.call(Op.CONTROL, "quota").decode()
    assert dom0.err(Op.CONTROL, "quota", "set", "watches", "0") == "EINVAL"
    assert dom0.err(Op.CONTROL, "quota", "set", "bogus", "3") == "EINVAL"
    assert dom0.err(Op.CONTROL, "quota", "set", "watches") == "EINVAL"
    assert dom0.err(Op.CONTROL, "quota-soft", "set", "nodes", "3") == "EINVAL"
    assert dom0.err(Op.CONTROL, "quota-soft", "x") == "EINVAL"
    engine.add_guest(5)
    usage = dom0.call(Op.CONTROL, "quota", "5").decode()
    lines = usage.rstrip("\0").splitlines()
    assert lines[0] == "Domain 5:"
    assert lines[1] == f"nodes           : {GUEST_OWNED_NODES:8d}"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "nodes", "watches", "transactions", "outstanding", "memory"]
    assert dom0.err(Op.CONTROL, "quota", "4") == "ENOENT"


def test_live_update_session_is_emulated_without_updating(dom0: Client) -> None:
    other = Client(dom0.xs)
    assert dom0.call(Op.CONTROL, "live-update", "-s") == b"Not in live-update session.\0"
    assert dom0.call(Op.CONTROL, "live-update", "-f", "/nonexistent") == \
        b"File not accessible.\0"
    assert dom0.call(Op.CONTROL, "live-update", "-f", "/bin/sh") == b"OK\0"
    assert dom0.call(Op.CONTROL, "live-update", "-f", "/bin/sh") == \
        b"live-update session already active.\0"
    assert other.call(Op.CONTROL, "live-update", "-c", "x") == b"Not in live-update session.\0"
    assert dom0.call(Op.CONTROL, "live-update", "-c", "x") == b"OK\0"
    assert dom0.call(Op.CONTROL, "live-update", "-a") == b"OK\0"
    assert dom0.call(Op.CONTROL, "live-update", "-a") == b"No live-update session active.\0"


def test_domain_memory_usage_as_4_17_counts_it(engine: Engine) -> None:
    """Values taken from the C daemon for the same steps."""
    engine.add_guest(5)
    dom0 = engine.dom0()

    def memory() -> int:
        text = dom0.call(Op.CONTROL, "quota", "5").decode()
        return int(text.rstrip("\0").splitlines()[-1].split(":")[1])

    assert memory() == 756
    g = engine.guest(5)
    g.watch("data", "tok")
    assert memory() == 756 + len("/local/domain/5/data") + 3


def test_release_of_a_set_target_target_drops_one_reference(engine: Engine) -> None:
    """4.17: SET_TARGET N T makes N's connection reference T's; RELEASE T then only drops
    the most recent reference (OK, nothing else happens)."""
    engine.add_guest(5)
    engine.add_guest(6)
    dom0 = engine.dom0()
    dom0.watch("@releaseDomain", "r")
    dom0.take_events()
    dom0.call(Op.SET_TARGET, 5, 6)
    dom0.call(Op.RELEASE, 6)
    assert dom0.take_events() == []
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 6) == b"T\0"
    assert engine.guest(5).read("/local/domain/6/name") == b"guest6"
    dom0.call(Op.RELEASE, 6)
    assert dom0.take_events()[-1] == (b"@releaseDomain", b"r")
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 6) == b"F\0"


def test_death_of_a_referenced_target_detaches_it(engine: Engine) -> None:
    engine.add_guest(5)
    engine.add_guest(6)
    dom0 = engine.dom0()
    dom0.call(Op.SET_TARGET, 5, 6)
    g6 = engine.guest(6)
    dom0.call(Op.CONTROL, "hypervisor", 6, "dying")
    assert g6.conn.closed
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 6) == b"T\0"
    assert dom0.err(Op.RELEASE, 6) == "EINVAL"
    assert dom0.err(Op.RESUME, 6) == "EINVAL"
    assert dom0.read("/local/domain/6/name") == b"guest6"
