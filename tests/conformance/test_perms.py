"""§5 Permissions: the wire format, access decisions, hiding existence, inheritance and the
SET_PERMS rules."""

from __future__ import annotations

import pytest

from xsactor.protocol import Op

from .conftest import Conn, Harness
from .util import assert_error, assert_ok, wr

# -- parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [
    ("r0x10", "r16"), ("r010", "r8"), ("r 5", "r5"), ("r-1", "r-1"), ("r4294967296", "r0"),
    ("b0X1f", "b31"), ("w+7", "w7"), ("n4294967295", "n-1"), ("r\t3", "r3"), ("r00", "r0"),
    ("r-5", "r-5"), ("r2147483647", "r2147483647"),
    # 4.17 prints into a buffer of 12 bytes: an id of 11 characters loses its last digit
    ("r2147483648", "r-214748364"), ("w-1000000000", "w-100000000"),
])
def test_strtol_forms(daemon: Harness, given: str, stored: str) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_ok(c.request(Op.SET_PERMS, daemon.p("n"), "n0", given))
    assert c.get_perms(daemon.p("n")) == ["n0", stored]


@pytest.mark.parametrize("bad", ["R0", "r", "x0", "r5x", "", "rr5", "r0x", "b 5 "])
def test_invalid_permission_is_einval(daemon: Harness, bad: str) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_error(c.request(Op.SET_PERMS, daemon.p("n"), "n0", bad), "EINVAL")
    assert c.get_perms(daemon.p("n")) == ["n0"]


def test_owner_entry_parsed_with_strtol(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_ok(c.request(Op.SET_PERMS, daemon.p("n"), "b0x5"))
    assert c.get_perms(daemon.p("n")) == ["b5"]


def test_duplicate_entries_are_kept(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    c.set_perms(daemon.p("n"), ["n0", "r5", "w5", "r5", "n0"])
    assert c.get_perms(daemon.p("n")) == ["n0", "r5", "w5", "r5", "n0"]


# -- access decisions -----------------------------------------------------------------------

def shared_node(daemon: Harness, perms: list[str], value: bytes = b"v") -> tuple[Conn, str]:
    """A dom0-created node with ``perms`` (``{g}`` is the guest's domid) and a guest."""
    g = daemon.guest()
    c = daemon.dom0()
    path = daemon.p("n")
    c.write(path, value)
    c.set_perms(path, [p.format(g=g.domid) for p in perms])
    return g, path


def test_owner_has_full_access_whatever_its_letter(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n{g}"])
    assert g.read(path) == b"v"
    assert_ok(wr(g, path, b"mine"))
    assert_ok(g.request(Op.SET_PERMS, path, f"w{g.domid}"))
    assert g.read(path) == b"mine"


def test_owner_letter_is_the_default_access(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["r0"])
    assert g.read(path) == b"v"
    assert_error(wr(g, path, b"x"), "EACCES")


def test_owner_letter_none_denies_others(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0"])
    assert_error(g.request(Op.READ, path), "EACCES")
    assert_error(wr(g, path, b"x"), "EACCES")
    assert_error(g.request(Op.GET_PERMS, path), "EACCES")
    assert_error(g.request(Op.DIRECTORY, path), "EACCES")


def test_owner_letter_both_grants_others(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["b0"])
    assert_ok(wr(g, path, b"x"))
    assert g.read(path) == b"x"


def test_write_only_entry(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "w{g}"])
    assert_error(g.request(Op.READ, path), "EACCES")
    assert_ok(wr(g, path, b"blind"))
    assert daemon.dom0().read(path) == b"blind"


def test_first_matching_entry_decides(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "r{g}", "w{g}"])
    assert g.read(path) == b"v"
    assert_error(wr(g, path, b"x"), "EACCES")


def test_entry_overrides_owner_letter(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["b0", "n{g}"])
    assert_error(g.request(Op.READ, path), "EACCES")


def test_entries_for_other_domains_do_not_apply(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "b30000"])
    assert_error(g.request(Op.READ, path), "EACCES")


def test_dom0_ignores_acls(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    c.write(f"{g.home}/data/private", b"p")
    g.set_perms(f"{g.home}/data/private", [f"n{g.domid}"])
    assert c.read(f"{g.home}/data/private") == b"p"
    assert_ok(wr(c, f"{g.home}/data/private", b"q"))


def test_set_perms_by_non_owner_is_eacces(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["b0"])
    assert_error(g.request(Op.SET_PERMS, path, "b0"), "EACCES")


# -- existence hiding -----------------------------------------------------------------------

def test_missing_node_under_readable_home_is_enoent(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.READ, f"{g.home}/missing"), "ENOENT")
    assert_error(g.request(Op.READ, f"{g.home}/missing/deeper"), "ENOENT")


def test_missing_node_under_other_home_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    other = daemon.add_guest()
    assert_error(g.request(Op.READ, f"/local/domain/{other}/missing"), "EACCES")
    assert_error(g.request(Op.READ, f"/local/domain/{other}/domid"), "EACCES")


def test_missing_top_level_node_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.READ, "/nonexistent-node"), "EACCES")
    assert_error(g.request(Op.DIRECTORY, daemon.p("x")), "EACCES")


def test_guest_cannot_read_root(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.GET_PERMS, "/"), "EACCES")
    assert_error(g.request(Op.READ, "/"), "EACCES")
    assert_error(g.request(Op.DIRECTORY, "/local"), "EACCES")


def test_existing_unreadable_node_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.READ, f"/libxl/{g.domid}/type"), "EACCES")
    assert_error(g.request(Op.READ, f"/libxl/{g.domid}"), "EACCES")
    assert_error(g.request(Op.GET_PERMS, f"/libxl/{g.domid}"), "EACCES")


def test_write_under_readable_but_unwritable_ancestor_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(wr(g, f"{g.home}/newnode", b"x"), "EACCES")
    assert_error(g.request(Op.MKDIR, f"{g.home}/newdir"), "EACCES")
    assert_error(wr(g, f"{g.home}/memory/new/deep", b"x"), "EACCES")


def test_write_under_writable_ancestor_creates(daemon: Harness) -> None:
    g = daemon.guest()
    assert_ok(wr(g, f"{g.home}/data/a/b/c", b"x"))
    assert g.read(f"{g.home}/data/a/b/c") == b"x"


def test_write_to_existing_unwritable_node_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(wr(g, f"{g.home}/name", b"rename"), "EACCES")
    assert g.read(f"{g.home}/name") == f"guest{g.domid}".encode()


def test_mkdir_of_existing_unwritable_node_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.MKDIR, g.home), "EACCES")
    assert_error(g.request(Op.MKDIR, f"{g.home}/memory"), "EACCES")


def test_mkdir_of_existing_writable_node_is_ok(daemon: Harness) -> None:
    g = daemon.guest()
    assert_ok(g.request(Op.MKDIR, f"{g.home}/data"))


def test_rm_needs_no_right_on_parent(daemon: Harness) -> None:
    g = daemon.guest()
    g.write(f"{g.home}/data/x", b"1")
    assert_ok(g.request(Op.RM, f"{g.home}/data"))
    c = daemon.dom0()
    assert_error(c.request(Op.READ, f"{g.home}/data"), "ENOENT")
    assert c.read(f"{g.home}/name") == f"guest{g.domid}".encode()


def test_rm_of_unwritable_node_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.RM, f"{g.home}/name"), "EACCES")
    assert_error(g.request(Op.RM, f"{g.home}/memory"), "EACCES")


def test_rm_of_missing_node_under_unwritable_parent_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.RM, f"{g.home}/missing"), "EACCES")


def test_rm_of_missing_node_under_writable_parent_is_ok(daemon: Harness) -> None:
    g = daemon.guest()
    assert_ok(g.request(Op.RM, f"{g.home}/data/missing"))
    assert_error(g.request(Op.RM, f"{g.home}/data/missing/deeper"), "ENOENT")


def test_directory_lists_unreadable_children(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "r{g}"])
    c = daemon.dom0()
    c.write(f"{path}/secret", b"s")
    c.set_perms(f"{path}/secret", ["n0"])
    assert g.directory(path) == [b"secret"]
    assert_error(g.request(Op.READ, f"{path}/secret"), "EACCES")


def test_rm_subtree_with_unwritable_children(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    c.write(f"{g.home}/data/sub/locked", b"")
    c.set_perms(f"{g.home}/data/sub/locked", ["n0"])
    assert_ok(g.request(Op.RM, f"{g.home}/data/sub"))
    assert_error(c.request(Op.READ, f"{g.home}/data/sub/locked"), "ENOENT")


# -- inheritance ----------------------------------------------------------------------------

def test_guest_created_node_copies_parent_acl_with_guest_as_owner(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "b{g}"])
    assert_ok(wr(g, f"{path}/a/b", b""))
    assert g.get_perms(f"{path}/a") == [f"n{g.domid}", f"b{g.domid}"]
    assert g.get_perms(f"{path}/a/b") == [f"n{g.domid}", f"b{g.domid}"]


def test_guest_created_node_in_own_data(daemon: Harness) -> None:
    g = daemon.guest()
    g.mkdir(f"{g.home}/data/m")
    assert g.get_perms(f"{g.home}/data/m") == [f"n{g.domid}"]


def test_guest_inherits_whole_acl(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["r0", "b{g}", "w7", "n9"])
    g.write(f"{path}/c", b"")
    assert g.get_perms(f"{path}/c") == [f"r{g.domid}", f"b{g.domid}", "w7", "n9"]


def test_privileged_creator_keeps_parent_owner(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("p"), b"")
    c.set_perms(daemon.p("p"), ["r5", "b6"])
    c.write(daemon.p("p", "q", "r"), b"")
    assert c.get_perms(daemon.p("p", "q")) == ["r5", "b6"]
    assert c.get_perms(daemon.p("p", "q", "r")) == ["r5", "b6"]


def test_privileged_mkdir_inherits(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("p"), b"")
    c.set_perms(daemon.p("p"), ["w3", "r4"])
    c.mkdir(daemon.p("p", "m"))
    assert c.get_perms(daemon.p("p", "m")) == ["w3", "r4"]


def test_parent_set_perms_does_not_change_children(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("p", "child"), b"")
    c.set_perms(daemon.p("p"), ["b0", "r3"])
    assert c.get_perms(daemon.p("p", "child")) == ["n0"]


def test_write_keeps_existing_acl(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["n0", "b{g}"])
    assert_ok(wr(g, path, b"new"))
    assert g.get_perms(path) == ["n0", f"b{g.domid}"]


# -- SET_PERMS rules ------------------------------------------------------------------------

def test_guest_cannot_change_owner(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/x"
    g.write(path, b"")
    assert_error(g.request(Op.SET_PERMS, path, "n0"), "EPERM")
    assert_error(g.request(Op.SET_PERMS, path, f"n{g.domid + 1000}", f"b{g.domid}"), "EPERM")
    assert g.get_perms(path) == [f"n{g.domid}"]


def test_guest_may_rewrite_acl_keeping_owner(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/x"
    g.write(path, b"")
    assert_ok(g.request(Op.SET_PERMS, path, f"b{g.domid}", "n0"))
    assert g.get_perms(path) == [f"b{g.domid}", "n0"]


def test_guest_set_perms_then_loses_nothing_as_owner(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/x"
    g.write(path, b"val")
    g.set_perms(path, [f"n{g.domid}", f"n{g.domid}"])
    assert g.read(path) == b"val"


def test_dom0_may_set_any_owner(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("x"), b"")
    assert_ok(c.request(Op.SET_PERMS, daemon.p("x"), "w42", "r0"))
    assert c.get_perms(daemon.p("x")) == ["w42", "r0"]


def test_set_perms_of_missing_node_is_enoent(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.SET_PERMS, daemon.p("missing"), "n0"), "ENOENT")


def test_set_perms_of_missing_node_from_guest(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.SET_PERMS, f"{g.home}/data/missing", f"n{g.domid}"), "ENOENT")


def test_set_perms_needs_write_too(daemon: Harness) -> None:
    g, path = shared_node(daemon, ["r0", "r{g}"])
    assert_error(g.request(Op.SET_PERMS, path, "r0"), "EACCES")


def test_given_away_node_is_no_longer_the_guests(daemon: Harness) -> None:
    g = daemon.guest()
    c = daemon.dom0()
    path = f"{g.home}/data/x"
    g.write(path, b"")
    c.set_perms(path, ["n0"])
    assert_error(g.request(Op.READ, path), "EACCES")
    assert_error(g.request(Op.SET_PERMS, path, f"n{g.domid}"), "EACCES")


def test_guest_rm_of_root_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.RM, "/"), "EACCES")
    assert_error(wr(g, "/", b"x"), "EACCES")
    assert_error(g.request(Op.SET_PERMS, "/", f"n{g.domid}"), "EACCES")
