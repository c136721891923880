"""§3 Limits and quotas: what an unprivileged guest may use, path lengths, CONTROL quota."""

from __future__ import annotations

import pytest

from xsactor.daemon.toolstack import GUEST_OWNED_NODES
from xsactor.protocol import Op, Packet

from .conftest import Conn, Harness
from .util import (
    assert_error,
    assert_ok,
    assert_success,
    path_of_length,
    pipeline,
    quota_field,
    watch,
    wr,
    writes,
)

NODE_QUOTA = 1000
WATCH_QUOTA = 128
TRANSACTION_QUOTA = 10


def fill_nodes(g: Conn, count: int, tx_id: int = 0, top: str = "data/q") -> list[Packet]:
    """Create ``count`` nodes owned by ``g``: leaves spread over directories of 100."""
    items: list[tuple[str, bytes]] = []
    made = 0
    index = 0
    while made < count:
        directory = f"{g.home}/{top}{index // 100}"
        if index % 100 == 0:
            made += 1  # the first write also creates the directory
            if made == count:
                items.append((directory, b""))
                break
        items.append((f"{directory}/{index % 100}", b""))
        made += 1
        index += 1
    return writes(g, items, tx_id)


# -- nodes ----------------------------------------------------------------------------------

def test_guest_owns_eleven_nodes_and_may_own_a_thousand(daemon: Harness) -> None:
    g = daemon.guest()
    replies = fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES)
    assert all(r.payload == b"OK\0" for r in replies), [r for r in replies if r.is_error][:3]
    assert_error(wr(g, f"{g.home}/data/one-too-many"), "ENOSPC")
    assert_error(g.request(Op.MKDIR, f"{g.home}/data/one-too-many"), "ENOSPC")
    assert_error(g.request(Op.READ, f"{g.home}/data/one-too-many"), "ENOENT")


def test_node_quota_frees_on_rm(daemon: Harness) -> None:
    g = daemon.guest()
    fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES)
    assert_error(wr(g, f"{g.home}/data/extra"), "ENOSPC")
    g.rm(f"{g.home}/data/q0/0")
    assert_ok(wr(g, f"{g.home}/data/extra"))
    assert_error(wr(g, f"{g.home}/data/extra2"), "ENOSPC")


def test_node_quota_allows_rewriting_existing_nodes(daemon: Harness) -> None:
    g = daemon.guest()
    fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES)
    assert_ok(wr(g, f"{g.home}/data/q0/5", b"new value"))
    assert g.read(f"{g.home}/data/q0/5") == b"new value"


def test_node_quota_in_transaction_checked_at_commit(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    replies = fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES + 1, tx_id=tx)
    assert all(r.payload == b"OK\0" for r in replies), [r for r in replies if r.is_error][:3]
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOSPC")
    assert_error(g.request(Op.READ, f"{g.home}/data/q0"), "ENOENT")
    assert_error(g.request(Op.TRANSACTION_END, "F", tx_id=tx), "ENOENT")


def test_dom0_has_no_node_quota_on_guest_owned_nodes(daemon: Harness) -> None:
    g = daemon.guest()
    fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES)
    c = daemon.dom0()
    assert_ok(wr(c, f"{g.home}/data/by-dom0"))
    assert c.get_perms(f"{g.home}/data/by-dom0") == [f"n{g.domid}"]


def test_node_quota_follows_ownership(daemon: Harness) -> None:
    g = daemon.guest()
    fill_nodes(g, NODE_QUOTA - GUEST_OWNED_NODES)
    assert_error(wr(g, f"{g.home}/data/extra"), "ENOSPC")
    daemon.dom0().set_perms(f"{g.home}/data/q0/0", ["b0"])
    assert_ok(wr(g, f"{g.home}/data/extra"))
    assert_error(wr(g, f"{g.home}/data/extra2"), "ENOSPC")


# -- watches --------------------------------------------------------------------------------

def test_guest_may_have_129_watches(daemon: Harness) -> None:
    g = daemon.guest()
    packets = [Packet.request(Op.WATCH, f"{g.home}/data/w{i}", "t", req_id=g.next_req_id())
               for i in range(WATCH_QUOTA + 1)]
    replies = pipeline(g, packets)
    assert all(r.payload == b"OK\0" for r in replies), [r for r in replies if r.is_error][:3]
    assert_error(g.request(Op.WATCH, f"{g.home}/data/w-extra", "t"), "E2BIG")
    assert_ok(g.request(Op.UNWATCH, f"{g.home}/data/w0", "t"))
    assert_ok(g.request(Op.WATCH, f"{g.home}/data/w-extra", "t"))
    assert_error(g.request(Op.WATCH, f"{g.home}/data/w-extra2", "t"), "E2BIG")


def test_dom0_has_no_watch_quota(daemon: Harness) -> None:
    c = daemon.dom0()
    packets = [Packet.request(Op.WATCH, daemon.p(f"w{i}"), "t", req_id=c.next_req_id())
               for i in range(200)]
    replies = pipeline(c, packets)
    assert all(r.payload == b"OK\0" for r in replies)


def test_reset_watches_frees_watch_quota(daemon: Harness) -> None:
    g = daemon.guest()
    pipeline(g, [Packet.request(Op.WATCH, f"data/w{i}", "t", req_id=g.next_req_id())
                 for i in range(WATCH_QUOTA + 1)])
    assert_error(g.request(Op.WATCH, "data/more", "t"), "E2BIG")
    assert_ok(g.request(Op.RESET_WATCHES))
    assert_ok(g.request(Op.WATCH, "data/more", "t"))


# -- transactions ---------------------------------------------------------------------------

def test_guest_may_have_11_transactions(daemon: Harness) -> None:
    g = daemon.guest()
    ids = [g.start() for _ in range(TRANSACTION_QUOTA + 1)]
    assert ids == list(range(1, TRANSACTION_QUOTA + 2))
    assert_error(g.request(Op.TRANSACTION_START, ""), "ENOSPC")
    g.end(ids[3], commit=False)
    assert int(assert_success(g.request(Op.TRANSACTION_START, "")).rstrip(b"\0")) == 12


def test_reset_watches_frees_transaction_quota(daemon: Harness) -> None:
    g = daemon.guest()
    for _ in range(TRANSACTION_QUOTA + 1):
        g.start()
    assert_error(g.request(Op.TRANSACTION_START, ""), "ENOSPC")
    assert_ok(g.request(Op.RESET_WATCHES))
    assert g.start() == TRANSACTION_QUOTA + 2


def test_dom0_has_no_transaction_quota(daemon: Harness) -> None:
    c = daemon.dom0()
    ids = [c.start() for _ in range(20)]
    assert len(set(ids)) == 20
    for tx in ids:
        c.end(tx, commit=False)


# -- node size ------------------------------------------------------------------------------

def test_node_size_with_one_permission(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/v"
    assert_ok(wr(g, path, b"a" * 2015))
    assert g.get_perms(path) == [f"n{g.domid}"]
    assert_error(wr(g, path, b"a" * 2016), "ENOSPC")
    assert g.read(path) == b"a" * 2015


def test_node_size_with_two_permissions(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/v"
    g.write(path, b"")
    g.set_perms(path, [f"n{g.domid}", "r0"])
    assert_ok(wr(g, path, b"a" * 2007))
    assert_error(wr(g, path, b"a" * 2008), "ENOSPC")


def test_node_size_of_new_node(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(wr(g, f"{g.home}/data/new", b"b" * 2016), "ENOSPC")
    assert_error(g.request(Op.READ, f"{g.home}/data/new"), "ENOENT")


def test_node_size_counts_child_names(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/p"
    g.write(f"{path}/abc", b"")  # 4 bytes of child names
    assert_ok(wr(g, path, b"c" * 2011))
    assert_error(wr(g, path, b"c" * 2012), "ENOSPC")


def test_node_size_checks_parent_when_adding_child(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/p"
    g.write(path, b"d" * 2000)  # 24 + 8 + 2000 = 2032
    assert_error(wr(g, f"{path}/{'e' * 15}"), "ENOSPC")  # + 16 = 2048
    assert g.directory(path) == []
    assert_ok(wr(g, f"{path}/{'e' * 14}"))  # + 15 = 2047


def test_node_size_in_transaction_fails_it(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    assert_error(wr(g, f"{g.home}/data/big", b"x" * 2016, tx_id=tx), "ENOSPC")
    assert_ok(wr(g, f"{g.home}/data/small", b"x", tx_id=tx))
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOMEM")
    assert_error(g.request(Op.READ, f"{g.home}/data/small"), "ENOENT")


def test_dom0_has_no_node_size_quota(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_ok(wr(c, daemon.p("big"), b"z" * 4000))
    assert c.read(daemon.p("big")) == b"z" * 4000


# -- permissions count ----------------------------------------------------------------------

def test_guest_may_set_five_permissions(daemon: Harness) -> None:
    g = daemon.guest()
    path = f"{g.home}/data/p"
    g.write(path, b"")
    five = [f"n{g.domid}", "r1", "r2", "r3", "r4"]
    assert_ok(g.request(Op.SET_PERMS, path, *five))
    assert g.get_perms(path) == five
    assert_error(g.request(Op.SET_PERMS, path, *five, "r5"), "ENOSPC")
    assert g.get_perms(path) == five


def test_permission_quota_in_transaction_does_not_fail_it(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    six = [f"n{g.domid}", "r1", "r2", "r3", "r4", "r5"]
    assert_error(g.request(Op.SET_PERMS, "data", *six, tx_id=tx), "ENOSPC")
    assert_ok(wr(g, "data/x", b"1", tx_id=tx))
    assert_ok(g.request(Op.TRANSACTION_END, "T", tx_id=tx))
    assert g.read("data/x") == b"1"
    assert g.get_perms("data") == [f"n{g.domid}"]


def test_dom0_may_set_many_permissions(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("p"), b"")
    many = ["n0", *(f"r{i}" for i in range(1, 12))]
    assert_ok(c.request(Op.SET_PERMS, daemon.p("p"), *many))
    assert c.get_perms(daemon.p("p")) == many


# -- transaction nodes ----------------------------------------------------------------------

def test_transaction_nodes_quota_fails_the_transaction(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    items = [(f"{g.home}/data/r{i // 200}/{i % 200}", b"") for i in range(1100)]
    # the guest may own only 1000 nodes in all, but inside a transaction that is checked
    # at commit; the transaction-nodes limit (1024 accessed nodes) comes first
    replies = writes(g, items, tx_id=tx)
    # 1024 accessed nodes: data, 6 directories and 1017 leaves; every later new node fails
    failed = [i for i, r in enumerate(replies) if r.is_error]
    assert failed == list(range(1017, 1100)), failed[:3]
    assert {replies[i].payload for i in failed} == {b"ENOSPC\0"}
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOMEM")
    assert_error(g.request(Op.READ, f"{g.home}/data/r0"), "ENOENT")
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOENT")


def test_transaction_nodes_quota_counts_reads(daemon: Harness) -> None:
    g = daemon.guest()
    fill_nodes(g, 700, top="data/s")
    tx = g.start()
    reads = [Packet.request(Op.READ, f"{g.home}/data/s{i // 100}/{i % 100}", req_id=g.next_req_id(),
                            tx_id=tx) for i in range(693)]
    replies = pipeline(g, reads)
    assert all(not r.is_error for r in replies)
    more = writes(g, [(f"{g.home}/data/t/{i}", b"") for i in range(400)], tx_id=tx)
    # 693 read + data + data/t + 329 new leaves = 1024
    failed = [i for i, r in enumerate(more) if r.is_error]
    assert failed == list(range(329, 400)), failed[:3]
    assert more[329].payload == b"ENOSPC\0"
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOMEM")


def test_transaction_nodes_quota_counts_missing_nodes(daemon: Harness) -> None:
    g = daemon.guest()
    tx = g.start()
    reads = [Packet.request(Op.READ, f"{g.home}/data/m{i}", req_id=g.next_req_id(), tx_id=tx)
             for i in range(1030)]
    replies = pipeline(g, reads)
    # data (looked at for the permission check) + 1023 missing nodes = 1024
    assert {r.payload for r in replies[:1023]} == {b"ENOENT\0"}
    assert {r.payload for r in replies[1023:]} == {b"ENOSPC\0"}
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOMEM")


@pytest.mark.parametrize("requests, commit", [
    (["rm"], "OK"),
    (["rm", "rm"], "OK"),
    (["chmod"], "OK"),
    (["create"], "OK"),
    (["create", "chmod"], "ENOSPC"),
    (["create", "rm"], "ENOSPC"),
    (["create", "rm", "rm"], "OK"),
], ids=["rm", "rm-rm", "chmod", "refused-create", "refused-create-chmod", "refused-create-rm",
        "refused-create-rm-rm"])
def test_commit_checks_the_node_quota_only_after_a_creation_was_tried(
        fresh_daemon: Harness, requests: list[str], commit: str) -> None:
    """Differential finding: a guest's commit checks its node quota only if the transaction
    tried to create a node (4.17's ``node_created``, set even when the creation is refused),
    and then for every domain whose count the transaction touched, SET_PERMS keeping the
    owner included (``owned + change >= quota``)."""
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    over = GUEST_OWNED_NODES + 3  # the guest will own one node more than its quota
    for i in range(3):
        c.write(f"{g.home}/data/n{i}", b"")
        c.set_perms(f"{g.home}/data/n{i}", [f"n{g.domid}"])
    c.control("quota", "set", "nodes", over - 1)
    tx = g.start()
    removed = iter(range(3))
    for request in requests:
        if request == "rm":
            assert_ok(g.request(Op.RM, f"{g.home}/data/n{next(removed)}", tx_id=tx))
        elif request == "chmod":
            assert_ok(g.request(Op.SET_PERMS, f"{g.home}/data/n2", f"n{g.domid}", tx_id=tx))
        else:
            assert_error(wr(g, f"{g.home}/data/new", b"", tx_id=tx), "ENOSPC")
    reply = g.request(Op.TRANSACTION_END, "T", tx_id=tx)
    if commit == "OK":
        assert_ok(reply)
    else:
        assert_error(reply, commit)


def test_rm_whose_walk_meets_the_transaction_nodes_quota_answers_eio(
        fresh_daemon: Harness) -> None:
    """Differential finding: inside a transaction, RM reads the children it deletes; when one
    of those reads hits the transaction-nodes quota, 4.17's delete_node gives up with EIO
    (not the ENOSPC a lone read gets), and the transaction is failed."""
    g = fresh_daemon.guest()
    c = fresh_daemon.dom0()
    for name in ("a", "b", "c", "d"):
        g.write(f"data/t/{name}", b"")
    c.control("quota", "set", "transaction-nodes", "4")
    tx = g.start()
    assert_error(g.request(Op.RM, f"{g.home}/data/t", tx_id=tx), "EIO")
    assert_error(g.request(Op.READ, f"{g.home}/data/x", tx_id=tx), "ENOSPC")
    assert_error(g.request(Op.TRANSACTION_END, "T", tx_id=tx), "ENOMEM")
    assert g.directory("data/t") == [b"a", b"b", b"c", b"d"]


# -- path length ----------------------------------------------------------------------------

def test_absolute_path_of_2048_characters(daemon: Harness) -> None:
    c = daemon.dom0()
    ok = path_of_length(daemon.prefix, 2048)
    assert_ok(wr(c, ok, b"long"))
    assert c.read(ok) == b"long"
    too_long = path_of_length(daemon.prefix, 2049)
    assert_error(wr(c, too_long), "EINVAL")
    assert_error(c.request(Op.READ, too_long), "EINVAL")


def test_single_component_of_2047_characters(daemon: Harness) -> None:
    c = daemon.dom0()
    path = "/" + (daemon.component + "a" * 2047)[:2047]
    assert_ok(wr(c, path, b"x"))
    c.rm(path)
    assert_error(wr(c, path + "b"), "EINVAL")


@pytest.mark.parametrize("domid", ["0", "12345", "00007"])
def test_domain_prefix_not_counted(daemon: Harness, domid: str) -> None:
    c = daemon.dom0()
    prefix = f"/local/domain/{domid}/"
    top = prefix + daemon.component
    assert_ok(wr(c, path_of_length(top, len(prefix) + 2048), b"1"))
    assert_error(wr(c, path_of_length(top, len(prefix) + 2049)), "EINVAL")
    c.rm(top)


@pytest.mark.parametrize("domid", ["123456", "7a", "x"])
def test_other_domain_like_prefixes_are_counted(daemon: Harness, domid: str) -> None:
    c = daemon.dom0()
    top = f"/local/domain/{domid}/" + daemon.component
    assert_ok(wr(c, path_of_length(top, 2048), b"1"))
    assert_error(wr(c, path_of_length(top, 2049)), "EINVAL")
    c.rm(top)


def test_relative_path_limit_from_socket(daemon: Harness) -> None:
    c = daemon.dom0()
    top = daemon.component
    assert_ok(wr(c, path_of_length(top, 2048), b"1"))
    assert_error(wr(c, path_of_length(top, 2049)), "EINVAL")
    c.rm(f"/local/domain/0/{top}")


def test_relative_path_limit_from_guest(daemon: Harness) -> None:
    g = daemon.guest()
    ok = path_of_length("data/l", 2048)
    assert_ok(wr(g, ok, b"1"))
    assert g.read(f"{g.home}/{ok}") == b"1"
    assert_error(wr(g, path_of_length("data/l", 2049)), "EINVAL")


def test_absolute_path_limit_from_guest_home(daemon: Harness) -> None:
    g = daemon.guest()
    prefix = f"{g.home}/"
    assert_ok(wr(g, path_of_length(f"{g.home}/data/l", len(prefix) + 2048), b"1"))
    assert_error(g.request(Op.READ, path_of_length(f"{g.home}/data/l", len(prefix) + 2049)),
                 "EINVAL")


def test_special_watch_path_limit(daemon: Harness) -> None:
    c = daemon.dom0()
    ok = "@" + "w" * 2047
    watch(c, ok, "t")
    assert_error(c.request(Op.WATCH, ok + "w", "t"), "EINVAL")


# -- CONTROL quota --------------------------------------------------------------------------

def test_control_quota_lists_defaults(daemon: Harness) -> None:
    c = daemon.dom0()
    text = assert_success(c.request(Op.CONTROL, "quota")).decode()
    for name, value in [("nodes", 1000), ("watches", 128), ("transactions", 10),
                        ("transaction-nodes", 1024), ("node-size", 2048),
                        ("permissions", 5), ("path-max", 2048), ("outstanding", 20)]:
        assert str(value) in quota_field(text, name), (name, text)


def test_control_quota_of_a_domain_shows_its_nodes(daemon: Harness) -> None:
    g = daemon.guest()
    g.write(f"{g.home}/data/x", b"")
    c = daemon.dom0()
    text = assert_success(c.request(Op.CONTROL, "quota", g.domid)).decode()
    assert str(GUEST_OWNED_NODES + 1) in quota_field(text, "nodes"), text


def test_control_quota_from_guest_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.CONTROL, "quota"), "EACCES")


def test_control_quota_set_nodes(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.CONTROL, "quota", "set", "nodes", 20))
    g = fresh_daemon.guest()
    replies = writes(g, [(f"{g.home}/data/{i}", b"") for i in range(20 - GUEST_OWNED_NODES)])
    assert all(r.payload == b"OK\0" for r in replies)
    assert_error(wr(g, f"{g.home}/data/more"), "ENOSPC")


def test_control_quota_set_watches_and_transactions(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.CONTROL, "quota", "set", "watches", 2))
    assert_ok(c.request(Op.CONTROL, "quota", "set", "transactions", 1))
    g = fresh_daemon.guest()
    for i in range(3):
        watch(g, f"data/{i}", "t")
    assert_error(g.request(Op.WATCH, "data/3", "t"), "E2BIG")
    g.start()
    g.start()
    assert_error(g.request(Op.TRANSACTION_START, ""), "ENOSPC")


def test_control_quota_set_permissions_and_node_size(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.CONTROL, "quota", "set", "permissions", 2))
    assert_ok(c.request(Op.CONTROL, "quota", "set", "node-size", 100))
    g = fresh_daemon.guest()
    path = f"{g.home}/data/x"
    assert_ok(wr(g, path, b"v" * 67))  # 24 + 8 + 67 = 99
    assert_error(wr(g, path, b"v" * 68), "ENOSPC")
    assert_error(g.request(Op.SET_PERMS, path, f"n{g.domid}", "r0"), "ENOSPC")  # 24+16+67
    assert_ok(wr(g, path, b""))
    assert_ok(g.request(Op.SET_PERMS, path, f"n{g.domid}", "r0"))
    assert_error(g.request(Op.SET_PERMS, path, f"n{g.domid}", "r0", "r1"), "ENOSPC")


def test_control_quota_set_shows_in_list(fresh_daemon: Harness) -> None:
    c = fresh_daemon.dom0()
    assert_ok(c.request(Op.CONTROL, "quota", "set", "nodes", 4321))
    assert "4321" in quota_field(c.control("quota").decode(), "nodes")


@pytest.mark.parametrize("args", [("set", "nodes", "0"), ("set", "nodes", "-5"),
                                  ("set", "no-such-quota", "5"), ("set", "nodes")])
def test_control_quota_set_rejects_bad_values(fresh_daemon: Harness, args: tuple) -> None:
    c = fresh_daemon.dom0()
    assert_error(c.request(Op.CONTROL, "quota", *args), "EINVAL")
    assert "1000" in quota_field(c.control("quota").decode(), "nodes")


QUOTA_LIST = (
    "Quota settings:\n"
    "nodes            :     1000 Nodes per domain\n"
    "watches          :      128 Watches per domain\n"
    "transactions     :       10 Transactions per domain\n"
    "outstanding      :       20 Outstanding requests per domain\n"
    "transaction-nodes:     1024 Max. number of accessed nodes per transaction\n"
    "memory           :  2621440 Total Xenstore memory per domain (error level)\n"
    "node-size        :     2048 Max. size of a node\n"
    "path-max         :     2048 Max. length of a node path\n"
    "permissions      :        5 Max. number of permissions per node\n"
)


def test_control_quota_list_text(daemon: Harness) -> None:
    reply = daemon.dom0().request(Op.CONTROL, "quota")
    assert (reply.op, reply.payload) == (Op.CONTROL, QUOTA_LIST.encode() + b"\0")


def test_control_quota_soft_lists_memory(daemon: Harness) -> None:
    reply = daemon.dom0().request(Op.CONTROL, "quota-soft")
    assert reply.payload == (b"Quota settings:\nmemory           :  2097152 Total Xenstore "
                             b"memory per domain (warning level)\n\0")


def test_control_quota_domain_usage(daemon: Harness) -> None:
    g = daemon.guest()
    watch(g, "data", "a")
    watch(g, "data", "b")
    g.start()
    text = assert_success(daemon.dom0().request(Op.CONTROL, "quota", g.domid)).decode()
    assert text.endswith("\n\0")
    lines = text[:-1].splitlines()
    assert lines[0] == f"Domain {g.domid}:"
    fields = [(x.split(":")[0], x.split(":")[1].strip()) for x in lines[1:]]
    assert [name.strip() for name, _ in fields] == [
        "nodes", "watches", "transactions", "outstanding", "memory"]
    assert all(len(name) == 16 for name, _ in fields), fields
    assert [value for _, value in fields[:3]] == [str(GUEST_OWNED_NODES), "2", "1"]
    assert int(fields[4][1]) > 0


def test_control_quota_of_unknown_domain_is_enoent(daemon: Harness) -> None:
    assert_error(daemon.dom0().request(Op.CONTROL, "quota", 30000), "ENOENT")


def test_control_quota_domid_parsed_with_atoi(daemon: Harness) -> None:
    text = assert_success(daemon.dom0().request(Op.CONTROL, "quota", "x")).decode()
    assert text.startswith("Domain 0:\n")
