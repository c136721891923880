"""libxenstore's Python binding ``xen.lowlevel.xs`` (CPython 3.11) against the daemon.

Each case runs a script in a subprocess (the binding comes from the reference install) that
prints one JSON document; the case asserts on it.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from .conftest import Clients

PRELUDE = """
import json, sys
from xen.lowlevel import xs
h = xs.xs()
out = {}
def b(v):
    return None if v is None else v.decode("latin-1")
"""


def run_script(clients: Clients, body: str) -> dict[str, Any]:
    script = (PRELUDE + f"P = {clients.prefix!r}\n" + textwrap.dedent(body)
              + "\nprint(json.dumps(out))\n")
    result = clients.python(script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_write_read(clients: Clients) -> None:
    out = run_script(clients, """
        out["write"] = h.write("", P + "/a", "v1")
        out["read"] = b(h.read("", P + "/a"))
        out["missing"] = b(h.read("", P + "/missing"))
        h.write("", P + "/bin", b"\\x00\\xff")
        out["bin"] = b(h.read("", P + "/bin"))
    """)
    assert out == {"write": None, "read": "v1", "missing": None, "bin": "\x00\xff"}
    assert clients.dom0().read(clients.p("bin")) == b"\x00\xff"


def test_ls_mkdir_rm(clients: Clients) -> None:
    out = run_script(clients, """
        h.write("", P + "/d/a", "1")
        h.mkdir("", P + "/d/m")
        out["ls"] = h.ls("", P + "/d")
        out["ls_missing"] = h.ls("", P + "/none")
        out["rm"] = h.rm("", P + "/d/m")
        out["rm_missing"] = h.rm("", P + "/zz/yy")
        out["after"] = h.ls("", P + "/d")
        out["leaf"] = h.ls("", P + "/d/a")
    """)
    assert out == {"ls": ["a", "m"], "ls_missing": None, "rm": None, "rm_missing": None,
                   "after": ["a"], "leaf": []}


def test_large_ls(clients: Clients) -> None:
    c = clients.dom0()
    names = [f"entry-{i:03d}-" + "q" * 50 for i in range(150)]
    for name in names:
        c.write(clients.p("big", name), b"")
    out = run_script(clients, """
        out["ls"] = h.ls("", P + "/big")
    """)
    assert out["ls"] == names


def test_permissions(clients: Clients) -> None:
    out = run_script(clients, """
        h.write("", P + "/a", "")
        out["before"] = h.get_permissions("", P + "/a")
        h.set_permissions("", P + "/a", [{"dom": 0}, {"dom": 5, "read": True},
                                          {"dom": 6, "read": True, "write": True}])
        out["after"] = h.get_permissions("", P + "/a")
    """)
    assert out["before"] == [{"dom": 0, "read": 0, "write": 0}]
    assert out["after"] == [{"dom": 0, "read": 0, "write": 0}, {"dom": 5, "read": 1, "write": 0},
                            {"dom": 6, "read": 1, "write": 2}]  # the binding's flag values
    assert clients.dom0().get_perms(clients.p("a")) == ["n0", "r5", "b6"]


def test_errors_raise(clients: Clients) -> None:
    out = run_script(clients, """
        for name, call in [
            ("set_perms_missing", lambda: h.set_permissions("", P + "/none", [{"dom": 0}])),
            ("bad_path", lambda: h.write("", P + "/bad.path", "x")),
            ("get_perms_missing", lambda: h.get_permissions("", P + "/none")),
        ]:
            try:
                call()
                out[name] = "no error"
            except xs.Error as exc:
                out[name] = list(exc.args)
    """)
    assert out == {"set_perms_missing": [2, "No such file or directory"],
                   "bad_path": [22, "Invalid argument"],
                   "get_perms_missing": [2, "No such file or directory"]}


def test_transaction_commit_and_isolation(clients: Clients) -> None:
    out = run_script(clients, """
        t = h.transaction_start()
        out["id"] = t
        h.write(t, P + "/t", "in-tx")
        out["outside"] = b(h.read("", P + "/t"))
        out["inside"] = b(h.read(t, P + "/t"))
        out["end"] = h.transaction_end(t)
        out["after"] = b(h.read("", P + "/t"))
    """)
    assert out == {"id": "1", "outside": None, "inside": "in-tx", "end": True, "after": "in-tx"}


def test_transaction_conflict_and_abort(clients: Clients) -> None:
    out = run_script(clients, """
        h.write("", P + "/a", "0")
        t = h.transaction_start()
        h.read(t, P + "/a")
        h.write(t, P + "/b", "1")
        other = xs.xs()
        other.write("", P + "/a", "changed")
        out["conflict"] = h.transaction_end(t)
        out["b"] = b(h.read("", P + "/b"))
        t = h.transaction_start()
        h.write(t, P + "/c", "1")
        out["abort"] = h.transaction_end(t, True)
        out["c"] = b(h.read("", P + "/c"))
    """)
    assert out == {"conflict": False, "b": None, "abort": True, "c": None}


def test_watch(clients: Clients) -> None:
    out = run_script(clients, """
        h.watch(P + "/w", "tok")
        out["initial"] = list(h.read_watch())
        other = xs.xs()
        other.write("", P + "/w/x", "1")
        out["event"] = list(h.read_watch())
        h.unwatch(P + "/w", "tok")
        h.watch(P + "/w2", "tok2")
        out["initial2"] = list(h.read_watch())
        other.write("", P + "/w/y", "1")
        other.write("", P + "/w2", "1")
        out["event2"] = list(h.read_watch())
    """)
    p = clients.prefix
    assert out == {"initial": [f"{p}/w", "tok"], "event": [f"{p}/w/x", "tok"],
                   "initial2": [f"{p}/w2", "tok2"], "event2": [f"{p}/w2", "tok2"]}


def test_domain_calls(clients: Clients) -> None:
    domid = clients.add_guest()
    out = run_script(clients, f"""
        out["path"] = h.get_domain_path({domid})
        out["path0"] = h.get_domain_path(0)
        h.release_domain({domid})
        out["released"] = b(h.read("", "/local/domain/{domid}/data"))
    """)
    assert out["path"] == f"/local/domain/{domid}"
    assert out["path0"] == "/local/domain/0"
    assert out["released"] is None
    assert clients.dom0().read(f"/local/domain/{domid}/domid") == str(domid).encode()
