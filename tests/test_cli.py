"""The client commands of ``xsactor``, in the spirit of xenstore-utils, against the embedded
daemon (the ``xenstored`` fixture of xsactor's pytest plugin)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xsactor.testing.daemons import DaemonUnderTest


def xsactor(daemon: DaemonUnderTest, *args: str, socket: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xsactor", args[0], "-s",
                           socket or daemon.socket_path, *args[1:]],
                          capture_output=True, text=True, timeout=30, check=False)


def test_write_read_exists_rm(xenstored: DaemonUnderTest) -> None:
    assert xsactor(xenstored, "write", "/cli/a", "one", "/cli/b", "two").returncode == 0
    assert xsactor(xenstored, "read", "/cli/a", "/cli/b").stdout == "one\ntwo\n"
    assert xsactor(xenstored, "exists", "/cli/a").returncode == 0
    assert xsactor(xenstored, "rm", "/cli").returncode == 0
    assert xsactor(xenstored, "exists", "/cli/a").returncode == 1


def test_errors_are_named_and_exit_1(xenstored: DaemonUnderTest) -> None:
    result = xsactor(xenstored, "read", "/missing")
    assert result.returncode == 1
    assert "ENOENT" in result.stderr and "/missing" in result.stderr
    invalid = xsactor(xenstored, "write", "/bad path", "x")
    assert invalid.returncode == 1 and "EINVAL" in invalid.stderr


def test_ls_list_and_perms(xenstored: DaemonUnderTest) -> None:
    xsactor(xenstored, "write", "/t/x/y", 'q"uote')
    assert xsactor(xenstored, "chmod", "/t/x", "n0", "r7").returncode == 0
    assert xsactor(xenstored, "getperms", "/t/x").stdout.split() == ["n0", "r7"]
    assert xsactor(xenstored, "list", "/t").stdout.split() == ["x"]
    assert xsactor(xenstored, "ls", "/t").stdout == 'x = ""\n y = "q\\"uote"\n'
    full = xsactor(xenstored, "ls", "-f", "-p", "/t").stdout.splitlines()
    assert full == ['/t/x = ""  (n0, r7)', '/t/x/y = "q\\"uote"  (n0)']  # y predates chmod


def test_domid_of_dom0_and_of_a_guest(xenstored: DaemonUnderTest) -> None:
    assert xsactor(xenstored, "domid").stdout == "0\n"
    guest_socket = xenstored.add_guest(3)
    assert xsactor(xenstored, "domid", socket=guest_socket).stdout == "3\n"
    denied = xsactor(xenstored, "write", "/local/domain/0/x", "1", socket=guest_socket)
    assert denied.returncode == 1 and "EACCES" in denied.stderr


def test_watch_prints_events(xenstored: DaemonUnderTest) -> None:
    assert xsactor(xenstored, "watch", "-n", "1", "/w").stdout == "/w\n"


@pytest.mark.parametrize("args", [["write", "/odd"], ["chmod", "/x", "q5"]])
def test_usage_errors(xenstored: DaemonUnderTest, args: list[str]) -> None:
    assert xsactor(xenstored, *args).returncode != 0
