"""§5 permissions: the access decision, ENOENT-vs-EACCES hiding, inheritance, SET_PERMS."""

from __future__ import annotations

import pytest

from xsactor.daemon.access import ALL, OWNER, READ, WRITE, perm_for, void_entries
from xsactor.daemon.domains import Domain
from xsactor.protocol import Op
from xsactor.protocol.perms import parse_acl

from .conftest import Client, Engine


class Who:
    def __init__(self, domid: int, privileged: bool = False, target: int | None = None):
        self.domid, self.privileged, self.target = domid, privileged, target


@pytest.mark.parametrize(("acl", "who", "expected"), [
    ("n0 r5", Who(5), READ),
    ("n0 r5", Who(6), 0),
    ("b0", Who(6), READ | WRITE),
    ("w5 n0", Who(5), ALL),                 # the owner has everything, whatever its letter
    ("n0 r5", Who(6, privileged=True), ALL),
    ("n7 r5", Who(6, target=7), ALL),        # target of the owner
    ("n0 r7", Who(6, target=7), READ),       # inherits the target's entries
    ("n0 r5 w5", Who(5), READ),              # the first matching entry decides
    ("r0 n5", Who(5), 0),
])
def test_access_decision(acl: str, who: Who, expected: int) -> None:
    assert perm_for(who, parse_acl(acl.split())) == expected


def test_ignored_entries_grant_nothing() -> None:
    acl = parse_acl(["n0", "r5", "b5"])
    assert perm_for(Who(5), acl, frozenset({1})) == READ | WRITE
    assert perm_for(Who(5), acl, frozenset({1, 2})) == 0
    assert OWNER & perm_for(Who(0), acl) == OWNER


def test_an_entry_counts_only_for_a_domain_record_no_newer_than_the_node() -> None:
    """4.17's chk_domain_generation, judged on every check."""
    acl = parse_acl(["n0", "r5", "b6"])
    records = {5: Domain(5, generation=10), 6: Domain(6, generation=11)}
    assert perm_for(Who(5), acl, None, 10, records) == READ
    assert perm_for(Who(6), acl, None, 10, records) == 0      # record newer than the node
    assert perm_for(Who(6), acl, None, 11, records) == READ | WRITE
    assert perm_for(Who(7), parse_acl(["r0", "b7"]), None, 99, records) == READ  # no record
    assert void_entries(acl, None, 10, records) == frozenset({2})
    assert void_entries(acl, frozenset({1}), 11, records) == frozenset({1})
    assert void_entries(acl, None, 11, records) is None


@pytest.fixture
def guest(engine: Engine) -> Client:
    engine.add_guest(5)
    engine.add_guest(6)
    return engine.guest(5)


def test_enoent_only_when_nearest_ancestor_grants_the_right(guest: Client) -> None:
    # home is n0 r5: reading a missing child is ENOENT; another domain's home is EACCES.
    assert guest.err(Op.READ, "/local/domain/5/missing") == "ENOENT"
    assert guest.err(Op.READ, "/local/domain/6/missing") == "EACCES"
    assert guest.err(Op.READ, "/nonexistent") == "EACCES"
    assert guest.err(Op.READ, "/local/domain/5/a/b/c") == "ENOENT"
    # existing but unreadable
    assert guest.err(Op.READ, "/local/domain/6/name") == "EACCES"
    # write ops need write on the nearest ancestor
    assert guest.err(Op.WRITE, "/local/domain/5/newnode", "x") == "EACCES"
    assert guest.err(Op.MKDIR, "/local/domain/5/newdir") == "EACCES"
    assert guest.err(Op.RM, "/local/domain/5/missing") == "EACCES"
    assert guest.err(Op.RM, "/local/domain/5/data/missing/deeper") == "ENOENT"
    guest.rm("/local/domain/5/data/missing")


def test_relative_paths_resolve_in_guest_home(guest: Client) -> None:
    guest.ok_write("data/x", "1")
    assert guest.read("/local/domain/5/data/x") == b"1"
    assert guest.read("data/x") == b"1"


def test_new_nodes_copy_parent_acl_and_guest_becomes_owner(engine: Engine,
                                                           guest: Client) -> None:
    dom0 = engine.dom0()
    dom0.chmod("/local/domain/5/data", "n5", "r6")
    guest.ok_write("data/a/b/c", "v")
    for path in ("data/a", "data/a/b", "data/a/b/c"):
        assert guest.perms(path) == ["n5", "r6"]
    dom0.ok_write("/p", "")
    dom0.chmod("/p", "r5", "b6")
    dom0.ok_write("/p/q/r")
    assert dom0.perms("/p/q") == ["r5", "b6"] and dom0.perms("/p/q/r") == ["r5", "b6"]
    dom0.chmod("/p", "n0")
    assert dom0.perms("/p/q") == ["r5", "b6"]


def test_guest_cannot_create_under_readable_but_unwritable(engine: Engine,
                                                           guest: Client) -> None:
    assert guest.read("/local/domain/5/name") == b"guest5"
    assert guest.err(Op.WRITE, "/local/domain/5/name/x", "1") == "EACCES"


def test_mkdir_existing_unwritable_is_eacces(guest: Client) -> None:
    assert guest.err(Op.MKDIR, "/local/domain/5/name") == "EACCES"


def test_rm_needs_no_rights_on_parent(engine: Engine, guest: Client) -> None:
    dom0 = engine.dom0()
    dom0.ok_write("/local/domain/5/owned", "x")
    dom0.chmod("/local/domain/5/owned", "n5")
    guest.rm("/local/domain/5/owned")
    assert dom0.err(Op.READ, "/local/domain/5/owned") == "ENOENT"


def test_set_perms_rules(engine: Engine, guest: Client) -> None:
    guest.ok_write("data/s", "x")
    guest.chmod("data/s", "b5", "n0")          # still owner 5
    assert guest.perms("data/s") == ["b5", "n0"]
    assert guest.err(Op.SET_PERMS, "data/s", "n6") == "EPERM"
    assert guest.err(Op.SET_PERMS, "data/s", *["n5"] + ["r1"] * 5) == "ENOSPC"
    guest.chmod("data/s", *["n5"] + ["r1"] * 4)
    assert guest.err(Op.SET_PERMS, "/local/domain/5/name", "n5") == "EACCES"
    assert guest.err(Op.SET_PERMS, "data/missing", "n5") == "ENOENT"
    assert guest.err(Op.SET_PERMS, "data/s", "R5") == "EINVAL"
    assert guest.raw_err(Op.SET_PERMS, b"data/s\0") == "EINVAL"
    dom0 = engine.dom0()
    dom0.chmod("/local/domain/5/data/s", *["n7"] + ["r1"] * 9)
    assert len(dom0.perms("/local/domain/5/data/s")) == 10


def test_perm_parsing_strtol(dom0: Client) -> None:
    dom0.ok_write("/p")
    dom0.chmod("/p", "r0x10", "w010", "b 5", "n-1", "r4294967296")
    assert dom0.perms("/p") == ["r16", "w8", "b5", "n-1", "r0"]
    for bad in ("R0", "r", "x0", "r5x"):
        assert dom0.err(Op.SET_PERMS, "/p", bad) == "EINVAL"


def test_target_domain_acts_as_owner_but_cannot_chown(engine: Engine, guest: Client) -> None:
    dom0 = engine.dom0()
    dom0.call(Op.SET_TARGET, 5, 6)
    assert guest.read("/local/domain/6/name") == b"guest6"  # home is n0 r6: inherited entry
    guest.ok_write("/local/domain/6/data/x", "1")           # data is n6: target of owner
    assert guest.perms("/local/domain/6/data/x") == ["n5"]
    dom0.ok_write("/local/domain/6/data/y", "1")
    assert guest.perms("/local/domain/6/data/y") == ["n6"]
    guest.chmod("/local/domain/6/data/y", "n6", "r9")
    assert guest.err(Op.SET_PERMS, "/local/domain/6/data/y", "n5") == "EPERM"


def test_special_acl_default_and_set(engine: Engine, guest: Client) -> None:
    dom0 = engine.dom0()
    assert guest.err(Op.SET_PERMS, "@releaseDomain", "n5") in ("EACCES", "EINVAL")
    assert dom0.err(Op.SET_PERMS, "@other", "n0") == "EINVAL"
    dom0.chmod("@releaseDomain", "b5")
    guest.chmod("@releaseDomain", "n0", "r5")


def test_released_domain_entries_stay_visible_but_grant_nothing(engine: Engine,
                                                                guest: Client) -> None:
    dom0 = engine.dom0()
    dom0.ok_write("/shared", "x")
    dom0.chmod("/shared", "n0", "r7")
    engine.add_guest(7)
    assert engine.guest(7).read("/shared") == b"x"
    dom0.call(Op.RELEASE, 7)
    assert dom0.perms("/shared") == ["n0", "r7"]
    engine.add_guest(7)
    assert engine.guest(7).err(Op.READ, "/shared") == "EACCES"
    dom0.chmod("/shared", "n0", "r7")
    assert engine.guest(7).read("/shared") == b"x"


def test_get_perms_truncates_entries_to_11_characters(dom0: Client) -> None:
    """4.17 prints each entry into a 12-byte buffer."""
    dom0.ok_write("/t")
    dom0.chmod("/t", "n0", "r2147483648", "w-1000000000", "b2147483647")
    assert dom0.perms("/t") == ["n0", "r-214748364", "w-100000000", "b2147483647"]
