"""§1.2 Argument parsing quirks of 4.17.

Where 4.17 answers a stale errno (a bug: it trips an assertion and dies when its leftover
errno is 0), the case runs on the embedded daemon only and pins its intended answer.
Malformed one-argument domain requests are still preceded by a request that fails normally,
as a guard.
"""

from __future__ import annotations

import pytest

from xsactor.protocol import Op

from .conftest import STALE_ERRNO, Harness, embedded_only
from .util import OK, assert_error, assert_ok, fail_normally, watch

MALFORMED_ONE_ARG = [b"7", b"7\0x", b"7\x008\0", b"\x007\0"]


@pytest.mark.parametrize("op", [Op.GET_DOMAIN_PATH, Op.IS_DOMAIN_INTRODUCED, Op.RELEASE,
                                Op.RESUME])
@pytest.mark.parametrize("payload", MALFORMED_ONE_ARG)
def test_malformed_domid_argument_is_einval(daemon: Harness, op: int, payload: bytes) -> None:
    c = daemon.dom0()
    fail_normally(c)
    assert_error(c.raw_request(op, payload), "EINVAL")


@pytest.mark.parametrize("payload", [b"T", b"T\0F\0", b"T\0x", b"\0T\0"])
def test_malformed_transaction_end_is_einval(daemon: Harness, payload: bytes) -> None:
    c = daemon.dom0()
    tx = c.start()
    fail_normally(c)
    assert_error(c.raw_request(Op.TRANSACTION_END, payload, tx_id=tx), "EINVAL")
    assert_ok(c.request(Op.TRANSACTION_END, "F", tx_id=tx))


@embedded_only(STALE_ERRNO)
@pytest.mark.parametrize("op", [Op.READ, Op.DIRECTORY, Op.GET_PERMS, Op.MKDIR, Op.RM])
@pytest.mark.parametrize("shape", ["no-nul", "trailing-bytes", "two-args"])
def test_malformed_path_argument_is_einval(daemon: Harness, op: int, shape: str) -> None:
    c = daemon.dom0()
    path = daemon.p("n").encode()
    c.write(path, b"keep")
    payload = {"no-nul": path, "trailing-bytes": path + b"\0junk",
               "two-args": path + b"\0" + path + b"\0"}[shape]
    assert_error(c.raw_request(op, payload), "EINVAL")
    assert c.read(path) == b"keep"


def test_write_without_nul_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.raw_request(Op.WRITE, daemon.p("x").encode()), "EINVAL")
    assert_error(c.request(Op.READ, daemon.p("x")), "ENOENT")


@pytest.mark.parametrize("payload", [b"PATH\0", b"PATH\0tok", b"PATH\0tok\0 1\0", b""])
def test_watch_needs_exactly_two_strings(daemon: Harness, payload: bytes) -> None:
    c = daemon.dom0()
    payload = payload.replace(b"PATH", daemon.p("w").encode())
    assert_error(c.raw_request(Op.WATCH, payload), "EINVAL")
    c.write(daemon.p("w"), b"1")
    assert c.drain_events() == []


def test_watch_ignores_bytes_after_last_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    path = daemon.p("w")
    reply = c.raw_request(Op.WATCH, path.encode() + b"\0tok\0junk")
    assert (reply.op, reply.payload) == (Op.WATCH, OK)
    assert c.next_event() == (path.encode(), b"tok")
    assert_error(c.request(Op.WATCH, path, "tok"), "EEXIST")


@pytest.mark.parametrize("payload", [b"PATH\0", b"PATH\0tok\0x\0"])
def test_unwatch_needs_exactly_two_strings(daemon: Harness, payload: bytes) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("w"), "tok")
    payload = payload.replace(b"PATH", daemon.p("w").encode())
    assert_error(c.raw_request(Op.UNWATCH, payload), "EINVAL")


def test_unwatch_ignores_bytes_after_last_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    watch(c, daemon.p("w"), "tok")
    assert_ok(c.raw_request(Op.UNWATCH, daemon.p("w").encode() + b"\0tok\0junk"))
    c.write(daemon.p("w"), b"1")
    assert c.drain_events() == []


def test_set_perms_ignores_bytes_after_last_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_ok(c.raw_request(Op.SET_PERMS, daemon.p("n").encode() + b"\0r0\0junk"))
    assert c.get_perms(daemon.p("n")) == ["r0"]


def test_set_perms_counts_entries_by_nuls(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_ok(c.raw_request(Op.SET_PERMS, daemon.p("n").encode() + b"\0b0\0r5\0w7\0"))
    assert c.get_perms(daemon.p("n")) == ["b0", "r5", "w7"]


def test_set_perms_without_entries_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    c.write(daemon.p("n"), b"")
    assert_error(c.raw_request(Op.SET_PERMS, daemon.p("n").encode() + b"\0"), "EINVAL")
    assert_error(c.raw_request(Op.SET_PERMS, daemon.p("n").encode() + b"\0r0"), "EINVAL")
    assert c.get_perms(daemon.p("n")) == ["n0"]


@embedded_only(STALE_ERRNO)
def test_set_perms_on_unknown_special_path_is_einval(daemon: Harness) -> None:
    c = daemon.dom0()
    assert_error(c.request(Op.SET_PERMS, "@other", "n0"), "EINVAL")


@embedded_only(STALE_ERRNO)
def test_guest_set_perms_on_special_path_without_rights_is_eacces(daemon: Harness) -> None:
    g = daemon.guest()
    assert_error(g.request(Op.SET_PERMS, "@releaseDomain", f"n{g.domid}"), "EACCES")


def test_get_domain_path_ignores_nothing_after_single_nul(daemon: Harness) -> None:
    c = daemon.dom0()
    reply = c.raw_request(Op.GET_DOMAIN_PATH, b"12\0")
    assert reply.payload == b"/local/domain/12\0"
