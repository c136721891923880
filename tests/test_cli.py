"""The ``xsactor`` command line as a program: its client commands against the embedded daemon
(the ``xenstored`` fixture of xsactor's pytest plugin), errors, signals, ``--json``,
``control`` and ``serve``. Output parity with xenstore-utils, option by option, is checked
side by side with the real tools in ``tests/interop/test_cli_parity.py``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import cast

import pytest

import xsactor
from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import scratch_dir, spawned
from xsactor.xstools import run_tool

TIMEOUT = 30


def xsactor_cli(*args: str, path: str | None = None, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ if env is None else env)
    if path is not None:
        environ["XENSTORED_PATH"] = path
    return subprocess.run([sys.executable, "-m", "xsactor", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, check=False, env=environ)


def test_client_commands(xenstored: DaemonUnderTest) -> None:
    sock = xenstored.socket_path
    assert xsactor_cli("write", "/cli/a", "one", "/cli/b", "t\\x77o", path=sock).returncode == 0
    assert xsactor_cli("read", "-p", "/cli/a", "/cli/b", path=sock).stdout == \
        "/cli/a: one\n/cli/b: two\n"
    assert xsactor_cli("exists", "/cli/a", path=sock).returncode == 0
    assert xsactor_cli("chmod", "/cli/a", "n0", "r7", path=sock).returncode == 0
    # xenstore-ls -p: the value, dots up to column 60, then the ACL
    assert xsactor_cli("ls", "-p", "/cli", path=sock).stdout == (
        'a = "one"  ' + ". " * 25 + " (n0,r7)\n"
        'b = "two"  ' + ". " * 25 + " (n0)\n")
    assert xsactor_cli("ls", "-fp", "/cli", path=sock).stdout == \
        '/cli/a = "one"   (n0,r7)\n/cli/b = "two"   (n0)\n'
    assert xsactor_cli("rm", "/cli", path=sock).returncode == 0
    missing = xsactor_cli("exists", "/cli/a", path=sock)
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "")


def test_errors_are_one_line_naming_the_cause(xenstored: DaemonUnderTest) -> None:
    result = xsactor_cli("read", "/missing", path=xenstored.socket_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == \
        "xsactor read: couldn't read path /missing: No such file or directory\n"
    usage = xsactor_cli("write", "/odd", path=xenstored.socket_path)
    assert usage.returncode == 1
    assert usage.stderr == "xsactor write: Usage: xsactor write [-h] [-s] [-R] key value [...]\n"


def test_path_option_and_socket_flag(xenstored: DaemonUnderTest) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XENSTORED_PATH"}
    env["XENSTORED_RUNDIR"] = "/nonexistent-rundir"
    ok = xsactor_cli("read", "-s", "--path", xenstored.socket_path, "/local/domain/0/name",
                     env=env)
    assert (ok.returncode, ok.stdout) == (0, "Domain-0\n")
    nowhere = xsactor_cli("read", "-s", "/x", env=env)  # socket only: no device fallback
    assert nowhere.returncode == 1
    assert nowhere.stderr == ("xsactor read: xs_open: /nonexistent-rundir/socket: "
                              "No such file or directory\n")


def test_stale_socket_is_connection_refused() -> None:
    with scratch_dir() as tmp:
        stale = os.path.join(tmp, "socket")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(stale)
        sock.close()  # the file stays, nobody listens
        for args in (["read", "/x"], ["domid"]):
            result = xsactor_cli(*args, path=stale)
            assert result.returncode == 1
            assert result.stderr.endswith(f"xs_open: {stale}: Connection refused\n"), \
                result.stderr
            assert "Traceback" not in result.stderr


def test_json(xenstored: DaemonUnderTest) -> None:
    sock = xenstored.socket_path
    xsactor_cli("write", "/j/a", "1", "/j/b/c", "x", path=sock)
    assert json.loads(xsactor_cli("read", "--json", "/j/a", "/j/b/c", path=sock).stdout) == \
        {"/j/a": "1", "/j/b/c": "x"}
    assert json.loads(xsactor_cli("list", "--json", "/j", path=sock).stdout) == \
        {"/j": ["a", "b"]}
    assert json.loads(xsactor_cli("ls", "--json", "-p", "/j", path=sock).stdout) == [
        {"path": "/j/a", "value": "1", "perms": ["n0"]},
        {"path": "/j/b", "value": "", "perms": ["n0"]},
        {"path": "/j/b/c", "value": "x", "perms": ["n0"]}]
    exists = xsactor_cli("exists", "--json", "/j/a", "/j/zz", path=sock)
    assert (exists.returncode, json.loads(exists.stdout)) == (1, {"/j/a": True, "/j/zz": False})
    assert json.loads(xsactor_cli("getperms", "--json", "/j/a", path=sock).stdout) == ["n0"]
    assert json.loads(xsactor_cli("domid", "--json", path=sock).stdout) == 0
    assert json.loads(xsactor_cli("watch", "--json", "-n", "1", "/j", path=sock).stdout) == \
        {"path": "/j", "token": "/j"}


def test_mkdir_getperms_domid_of_dom0_and_a_guest(xenstored: DaemonUnderTest) -> None:
    sock = xenstored.socket_path
    assert xsactor_cli("mkdir", "/m/n", path=sock).returncode == 0
    assert xsactor_cli("getperms", "/m/n", path=sock).stdout == "n0\n"
    assert xsactor_cli("domid", path=sock).stdout == "0\n"
    guest = xenstored.add_guest(3)
    assert xsactor_cli("domid", "--path", guest).stdout == "3\n"
    denied = xsactor_cli("mkdir", "--path", guest, "/local/domain/0/x")
    assert denied.returncode == 1
    assert denied.stderr.startswith("xsactor mkdir: EACCES: ")


def test_control_and_simulated_domain_states(xenstored: DaemonUnderTest) -> None:
    sock = xenstored.socket_path
    assert "quota" in xsactor_cli("control", "help", path=sock).stdout
    xenstored.add_guest(4)
    watcher = xenstored.dom0()
    watcher.watch("@releaseDomain", "r")
    watcher.drain_events()
    result = xsactor_cli("control", "hypervisor", "4", "crashed", path=sock)
    assert (result.returncode, result.stdout) == (0, "OK\n")
    assert watcher.next_event() == (b"@releaseDomain", b"r")
    gone = xsactor_cli("control", "--json", "hypervisor", "4", "gone", path=sock)
    assert json.loads(gone.stdout) == "OK"
    bad = xsactor_cli("control", "hypervisor", "4", "sleepy", path=sock)
    assert bad.returncode == 1 and bad.stderr.startswith("xsactor control: EINVAL")
    watcher.close()


@contextlib.contextmanager
def watching(xenstored: DaemonUnderTest) -> Iterator[subprocess.Popen[str]]:
    """``xsactor watch /w`` running, past its registration event."""
    argv = [sys.executable, "-m", "xsactor", "watch", "/w"]
    env = {**os.environ, "XENSTORED_PATH": xenstored.socket_path}
    with spawned(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "/w\n"
        yield proc


def test_watch_ends_cleanly_when_the_daemon_dies(xenstored: DaemonUnderTest) -> None:
    with watching(xenstored) as proc:
        xenstored.stop()
        out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert (out, err.count("\n")) == ("", 1), err
    assert err.startswith("xsactor watch: connection lost")


def test_ctrl_c_exits_quietly_with_130(xenstored: DaemonUnderTest) -> None:
    with watching(xenstored) as proc:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    assert (proc.returncode, out, err) == (130, "", "")


def test_serve_refuses_a_socket_a_live_daemon_serves(xenstored: DaemonUnderTest) -> None:
    result = xsactor_cli("serve", "--socket", xenstored.socket_path)
    assert result.returncode == 1
    assert "a live xenstored is serving this socket" in result.stderr
    assert "Traceback" not in result.stderr
    assert xenstored.alive()
    with xenstored.dom0() as dom0:
        assert dom0.read("/local/domain/0/name") == b"Domain-0"


def test_version() -> None:
    result = xsactor_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"xsactor {xsactor.__version__}\n")


@pytest.mark.parametrize("verb", ["read", "write", "ls", "list", "rm", "exists", "chmod",
                                  "watch"])
def test_help_is_the_usage_line(verb: str) -> None:
    """As xenstore-utils: ``-h`` prints the usage to stderr and exits 1."""
    err = io.StringIO()
    assert run_tool(verb, ["-h"], err=err, out=io.BytesIO()) == 1
    assert err.getvalue().startswith(f"xsactor {verb}: Usage: xsactor {verb} [-h]")


class _ConflictOnce:
    """A client whose first commit conflicts (EAGAIN), as when another writer got in."""

    def __init__(self, client: xsactor.Client) -> None:
        self.client = client
        self.commits = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def commit(self, tid: int) -> None:
        self.commits += 1
        if self.commits == 1:
            self.client.rollback(tid)
            raise xsactor.EAGAIN("conflict")
        self.client.commit(tid)

    def __enter__(self) -> _ConflictOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def test_a_conflicting_transaction_runs_again_and_prints_once(xs: object) -> None:
    """As xenstore_client.c: on EAGAIN the whole set of keys is read again, its output once."""
    from xsactor.testing.sandbox import Sandbox

    assert isinstance(xs, Sandbox)
    xs.dom0().write("/c/a", "1")
    xs.dom0().write("/c/b", "2")
    conflicting = _ConflictOnce(xs.client())
    out = io.BytesIO()
    code = run_tool("read", ["/c/a", "/c/b"], out=out, err=io.StringIO(),
                    connect=lambda path, only: cast(xsactor.Client, conflicting))
    assert (code, out.getvalue(), conflicting.commits) == (0, b"1\n2\n", 2)
