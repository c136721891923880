"""``xsactor <verb>`` against Debian's ``xenstore-<verb>``, side by side on the same daemon.

Each case runs the C tool on one copy of a tree and ``xsactor`` (in-process, through
:func:`xsactor.xstools.run_tool`) on another copy: stdout and the exit status must be identical
byte for byte, the trees identical afterwards, and each stderr line of ours must begin with the
C tool's (ours add the reason where the C tools leave it out). The cases also run against the C
xenstored, so the expectations are the real tools' with the real daemon.
"""

from __future__ import annotations

import fcntl
import io
import os
import random
import re
import struct
import subprocess
import sys
import termios

import pytest

from xsactor.xstools import open_client, run_tool

from .conftest import TIMEOUT, Clients

TREE: dict[str, bytes] = {
    "a": b"hello",
    "b": b"with space",
    "c/d": b"x\ty",
    "c/e": b"\x01\xff\x00a\\b\"q\x7f ~\r\n",
    "long": b"v" * 100,
    "n" * 90: b"1",
    "empty": b"",
    "tidy/x/y": b"",
}

CASES: list[tuple[str, ...]] = [
    # read: -p, -R, several keys (one transaction), a missing key among them, options anywhere
    ("read", "{p}/a"), ("read", "{p}/a", "{p}/b", "{p}/c/e"), ("read", "-p", "{p}/a", "{p}/b"),
    ("read", "-R", "{p}/c/d"), ("read", "-pR", "{p}/c/e"), ("read", "{p}/a", "-p"),
    ("read", "--prefix", "{p}/a"), ("read", "--pre", "{p}/a"), ("read", "--raw", "{p}/c/d"),
    ("read", "{p}/a", "{p}/missing", "{p}/b"), ("read", "{p}/missing"), ("read", "{p}/empty"),
    ("read", "--", "-p"), ("read", "-z", "{p}/a"), ("read", "--raw=1", "{p}/a"),
    ("read",), ("read", "-h"), ("read", "-t", "{p}/a"), ("read", "bad path"),
    # write: escapes (unless -R), pairs, usage
    ("write", "{p}/w", "a\\tb\\x41\\101\\q\\8"), ("write", "-R", "{p}/w", "a\\tb"),
    ("write", "{p}/w1", "1", "{p}/w2", "2"), ("write", "{p}/w", "\\x-1\\x0x41\\x 4\\xg\\777"),
    ("write", "{p}/w", "trailing\\"), ("write", "{p}/odd"), ("write", "{p}/w", "-1"),
    ("write", "--socket", "{p}/w", "v"), ("write", "{p}/a/../b", "x"),
    # ls: layout (80 columns, truncation, -p dots), -f, several paths, missing, empty
    ("ls", "{p}"), ("ls", "-p", "{p}"), ("ls", "-f", "{p}"), ("ls", "-fp", "{p}"),
    ("ls", "{p}/c", "{p}/tidy"), ("ls", "{p}/missing"), ("ls", "{p}/a"), ("ls", "{p}/"),
    ("ls", "--flat", "{p}/c"), ("ls", "-t", "{p}"),
    # list
    ("list", "{p}"), ("list", "-p", "{p}/c"), ("list", "{p}/c", "{p}/tidy"),
    ("list", "{p}/missing"), ("list",),
    # exists
    ("exists", "{p}/a"), ("exists", "{p}/a", "{p}/missing"), ("exists", "{p}/missing"),
    ("exists", "-p", "{p}/a"),
    # rm: -t tidies empty parents
    ("rm", "{p}/a"), ("rm", "{p}/c", "{p}/b"), ("rm", "-t", "{p}/tidy/x/y"),
    ("rm", "{p}/missing/deeper"), ("rm", "{p}/missing"), ("rm", "--tidy", "{p}/c/d"),
    # chmod: -u, -r, atoi ids, bad letters
    ("chmod", "{p}/a", "r5", "w6"), ("chmod", "-r", "{p}/c", "b0", "r7"),
    ("chmod", "-u", "{p}/c/d", "n3"), ("chmod", "{p}/a", "x0"), ("chmod", "{p}/a"),
    ("chmod", "{p}/a", "n0x10", "r-1", "w"), ("chmod", "{p}/missing", "n0"),
    ("chmod", "-u", "rel/ative", "n0"), ("chmod", "-ur", "{p}/c", "n1"),
    # watch: -n, several keys (the registration events only here)
    ("watch", "-n", "2", "{p}/a", "{p}/b"), ("watch", "-n0", "{p}/a"), ("watch", "-n"),
    ("watch", "--number=1", "{p}/c"), ("watch", "-p", "{p}/a"),
]


def _fill(clients: Clients, prefix: str) -> None:
    conn = clients.dom0()
    for name, value in TREE.items():
        conn.write(f"{prefix}/{name}", value)


def _dump(clients: Clients, prefix: str) -> dict[str, tuple[bytes, list[str]]]:
    conn = clients.dom0()
    out: dict[str, tuple[bytes, list[str]]] = {}

    def walk(path: str) -> None:
        out[path[len(prefix):]] = (conn.read(path), conn.get_perms(path))
        for name in conn.directory(path):
            walk(f"{path}/{name.decode()}")

    conn.mkdir(prefix)  # so the dump has a root even after rm
    walk(prefix)
    return out


def _stderr_lines(text: str) -> list[str]:
    """Program names out: ``/path/xenstore-read: `` and ``xsactor read: `` both become
    ``PROG: ``; ``Usage: <prog> `` likewise."""
    text = re.sub(r"(?m)^(\S*/)?xenstore-\w+: |^xsactor \w+: ", "PROG: ", text)
    text = re.sub(r"Usage: (\S*/)?xenstore-\w+ |Usage: xsactor \w+ ", "Usage: PROG ", text)
    return text.splitlines()


def _ours(clients: Clients, args: list[str]) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    socket = clients.daemon.socket_path
    code = run_tool(args[0], args[1:], out=out, err=err,
                    connect=lambda path, only: open_client(path or socket, only))
    return code, out.getvalue(), err.getvalue()


def _theirs(clients: Clients, args: list[str]) -> tuple[int, bytes, str]:
    result = subprocess.run([clients.tool(f"xenstore-{args[0]}"), *args[1:]], env=clients.env,
                            capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                            check=False)
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("case", CASES, ids=" ".join)
def test_same_as_xenstore_utils(clients: Clients, case: tuple[str, ...]) -> None:
    theirs_prefix, ours_prefix = clients.p("c"), clients.p("x")
    _fill(clients, theirs_prefix)
    _fill(clients, ours_prefix)
    t_code, t_out, t_err = _theirs(clients, [a.format(p=theirs_prefix) for a in case])
    o_code, o_out, o_err = _ours(clients, [a.format(p=ours_prefix) for a in case])
    assert o_out.replace(ours_prefix.encode(), b"{p}") == \
        t_out.replace(theirs_prefix.encode(), b"{p}")
    assert o_code == t_code, o_err
    ours_err = _stderr_lines(o_err.replace(ours_prefix, "{p}"))
    theirs_err = _stderr_lines(t_err.replace(theirs_prefix, "{p}"))
    assert len(ours_err) == len(theirs_err), (ours_err, theirs_err)
    for mine, c_line in zip(ours_err, theirs_err, strict=True):
        assert mine.startswith(c_line.rstrip("\0")), (mine, c_line)
    assert _dump(clients, ours_prefix) == _dump(clients, theirs_prefix)


def test_watch_events_match(clients: Clients) -> None:
    """Later events, as the real xenstore-watch prints them (path only, one per line)."""
    path = clients.p("w")
    argv = [sys.executable, "-m", "xsactor", "watch", "-n", "3", path]
    with subprocess.Popen(argv, env=clients.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as ours, \
            clients.spawn("watch", "-n", "3", path) as theirs:
        assert ours.stdout is not None and theirs.stdout is not None
        assert ours.stdout.readline() == theirs.stdout.readline() == f"{path}\n"
        conn = clients.dom0()
        conn.write(f"{path}/x", b"1")
        conn.rm(path)
        assert ours.communicate(timeout=TIMEOUT) == theirs.communicate(timeout=TIMEOUT)
    assert ours.returncode == theirs.returncode == 0


def test_guest_ls_of_unreadable_nodes(clients: Clients) -> None:
    """A guest that may list a directory but not read a child: ``name:`` and the error."""
    domid = clients.add_guest()
    conn = clients.dom0()
    prefix = clients.p("g")
    conn.write(f"{prefix}/a", b"1")
    conn.set_perms(prefix, ["n0", f"r{domid}"])
    conn.set_perms(f"{prefix}/a", ["n0"])
    guest_socket = clients.daemon.guest_sockets[domid]
    env = {**clients.env, "XENSTORED_PATH": guest_socket}
    for args in (["ls", prefix], ["ls", "-p", prefix], ["read", f"{prefix}/a"]):
        theirs = subprocess.run([clients.tool(f"xenstore-{args[0]}"), *args[1:]], env=env,
                                capture_output=True, timeout=TIMEOUT, check=False)
        out, err = io.BytesIO(), io.StringIO()
        code = run_tool(args[0], args[1:], out=out, err=err,
                        connect=lambda path, only: open_client(guest_socket, only))
        assert (code, out.getvalue()) == (theirs.returncode, theirs.stdout), err.getvalue()
        c_lines = _stderr_lines(theirs.stderr.decode())
        our_lines = _stderr_lines(err.getvalue())
        assert [m[:len(t)] for m, t in zip(our_lines, c_lines, strict=True)] == c_lines


def test_escapes_match_on_many_values(clients: Clients) -> None:
    """``unsanitise`` (write) and ``sanitise`` (read) against the C tools on a few hundred
    values at once: random escape-heavy strings, and every byte value."""
    from xsactor.xstools import sanitise, unsanitise

    rng = random.Random(9)
    alphabet = "\\\\\\xX0123456789abcdefgAF+- \t\v\fnrtq8"
    specs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
             for _ in range(300)]
    keys = [clients.p("esc", str(i)) for i in range(len(specs))]
    clients.ok("write", "--", *[item for pair in zip(keys, specs, strict=True) for item in pair])
    conn = clients.dom0()
    assert [conn.read(key) for key in keys] == [unsanitise(s.encode()) for s in specs]

    values = [bytes([b]) for b in range(256)] + [rng.randbytes(rng.randint(0, 20))
                                                 for _ in range(100)]
    keys = [clients.p("raw", str(i)) for i in range(len(values))]
    for key, value in zip(keys, values, strict=True):
        conn.write(key, value)
    theirs = subprocess.run([clients.tool("xenstore-read"), *keys], env=clients.env,
                            capture_output=True, timeout=TIMEOUT, check=True).stdout
    assert theirs == b"".join(sanitise(v) + b"\n" for v in values)


def _on_a_terminal(argv: list[str], env: dict[str, str], columns: int) -> bytes:
    """What ``argv`` prints on a terminal ``columns`` wide (a pty)."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        proc = subprocess.run(argv, env=env, stdout=slave, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
        assert proc.returncode == 0, proc.stderr
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the pty's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


@pytest.mark.parametrize("flags", [[], ["-p"], ["-f"]], ids=["plain", "perms", "flat"])
def test_ls_on_a_terminal_uses_its_width(clients: Clients, flags: list[str]) -> None:
    _fill(clients, clients.p("tty"))
    path = clients.p("tty")
    theirs = _on_a_terminal([clients.tool("xenstore-ls"), *flags, path], clients.env, 50)
    ours = _on_a_terminal([sys.executable, "-m", "xsactor", "ls", *flags, path],
                          clients.env, 50)
    assert ours == theirs
    assert b"\\..." in theirs  # the width mattered
