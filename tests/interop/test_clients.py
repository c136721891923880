"""Xen's unmodified ``xenstore-*`` tools (libxenstore 4.17) against the daemon."""

from __future__ import annotations

from .conftest import Clients


def test_write_then_read(clients: Clients) -> None:
    a, b = clients.p("a"), clients.p("b")
    assert clients.ok("write", a, "hello", b, "with space") == ""
    assert clients.ok("read", a, b) == "hello\nwith space\n"
    assert clients.dom0().read(a) == b"hello"


def test_write_creates_parents(clients: Clients) -> None:
    clients.ok("write", clients.p("x", "y", "z"), "deep")
    c = clients.dom0()
    assert c.read(clients.p("x", "y")) == b""
    assert c.read(clients.p("x", "y", "z")) == b"deep"


def test_read_with_path_prefix(clients: Clients) -> None:
    clients.ok("write", clients.p("a"), "v")
    assert clients.ok("read", "-p", clients.p("a")) == f"{clients.p('a')}: v\n"


def test_read_escapes_unprintable_bytes(clients: Clients) -> None:
    clients.dom0().write(clients.p("bin"), b"\x01\xff\x00a\\b\"q\x7f ~\t")
    assert clients.ok("read", clients.p("bin")) == '\\001\\xff\\000a\\\\b"q\\x7f ~\\t\n'


def test_read_raw(clients: Clients) -> None:
    clients.dom0().write(clients.p("tab"), b"x\ty")
    assert clients.ok("read", "-R", clients.p("tab")) == "x\ty"


def test_write_unescapes_unless_raw(clients: Clients) -> None:
    clients.ok("write", clients.p("w1"), "a\\tb\\x41\\101")
    clients.ok("write", "-R", clients.p("w2"), "a\\tb")
    c = clients.dom0()
    assert c.read(clients.p("w1")) == b"a\tbAA"
    assert c.read(clients.p("w2")) == b"a\\tb"


def test_read_missing_fails(clients: Clients) -> None:
    result = clients.run("read", clients.p("missing"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"couldn't read path {clients.p('missing')}" in result.stderr


def test_read_empty_value(clients: Clients) -> None:
    clients.dom0().mkdir(clients.p("empty"))
    assert clients.ok("read", clients.p("empty")) == "\n"


def tree(clients: Clients) -> None:
    c = clients.dom0()
    c.write(clients.p("t", "b"), b"hello")
    c.write(clients.p("t", "c"), b"with space")
    c.write(clients.p("t", "d", "e"), b"x\ty")


def test_ls_tree(clients: Clients) -> None:
    tree(clients)
    assert clients.ok("ls", clients.p("t")) == (
        'b = "hello"\nc = "with space"\nd = ""\n e = "x\\ty"\n')


def test_ls_full_paths(clients: Clients) -> None:
    tree(clients)
    t = clients.p("t")
    assert clients.ok("ls", "-f", t) == (
        f'{t}/b = "hello"\n{t}/c = "with space"\n{t}/d = ""\n{t}/d/e = "x\\ty"\n')


def test_ls_with_permissions(clients: Clients) -> None:
    tree(clients)
    clients.dom0().set_perms(clients.p("t", "b"), ["r5", "w6"])
    # without a terminal, xenstore-ls pads to 60 columns with dots before the ACL
    assert clients.ok("ls", "-p", clients.p("t")).splitlines() == [
        'b = "hello"  ' + ". " * 24 + " (r5,w6)",
        'c = "with space" ' + ". " * 22 + " (n0)",
        'd = "" ' + ". " * 27 + " (n0)",
        ' e = "x\\ty"  ' + ". " * 24 + " (n0)",
    ]


def test_ls_full_paths_with_permissions(clients: Clients) -> None:
    tree(clients)
    t = clients.p("t")
    clients.dom0().set_perms(f"{t}/d", ["b0", "r7", "n9"])
    assert clients.ok("ls", "-fp", t) == (
        f'{t}/b = "hello"   (n0)\n{t}/c = "with space"   (n0)\n{t}/d = ""   (b0,r7,n9)\n'
        f'{t}/d/e = "x\\ty"   (n0)\n')


def test_ls_missing_fails(clients: Clients) -> None:
    result = clients.run("ls", clients.p("missing"))
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr


def test_list(clients: Clients) -> None:
    tree(clients)
    assert clients.ok("list", clients.p("t")) == "b\nc\nd\n"
    t = clients.p("t")
    assert clients.ok("list", "-p", t) == f"{t}/b\n{t}/c\n{t}/d\n"


def test_list_large_directory_uses_directory_part(clients: Clients) -> None:
    c = clients.dom0()
    names = [f"child-{i:03d}-" + "n" * 40 for i in range(200)]
    for name in names:
        c.write(clients.p("big", name), b"")
    assert clients.ok("list", clients.p("big")).splitlines() == names
    assert len(clients.ok("ls", clients.p("big")).splitlines()) == 200


def test_list_missing_fails(clients: Clients) -> None:
    result = clients.run("list", clients.p("missing"))
    assert result.returncode == 1
    assert f"could not list path {clients.p('missing')}" in result.stderr


def test_exists(clients: Clients) -> None:
    clients.dom0().write(clients.p("e"), b"")
    assert clients.run("exists", clients.p("e")).returncode == 0
    assert clients.run("exists", clients.p("nope")).returncode == 1


def test_chmod(clients: Clients) -> None:
    c = clients.dom0()
    c.write(clients.p("m"), b"")
    clients.ok("chmod", clients.p("m"), "r5", "w6")
    assert c.get_perms(clients.p("m")) == ["r5", "w6"]


def test_chmod_recursive(clients: Clients) -> None:
    tree(clients)
    clients.ok("chmod", "-r", clients.p("t"), "b0", "r7")
    c = clients.dom0()
    for path in ("t", "t/b", "t/c", "t/d", "t/d/e"):
        assert c.get_perms(clients.p(path)) == ["b0", "r7"], path


def test_chmod_up_to_parents(clients: Clients) -> None:
    tree(clients)
    clients.ok("chmod", "-u", clients.p("t", "d", "e"), "n3")
    c = clients.dom0()
    assert c.get_perms(clients.p("t", "d", "e")) == ["n3"]
    assert c.get_perms(clients.p("t", "d")) == ["n3"]
    assert c.get_perms(clients.p("t")) == ["n3"]
    assert c.get_perms(clients.p("t", "b")) == ["n0"]


def test_chmod_invalid_permission(clients: Clients) -> None:
    clients.dom0().write(clients.p("m"), b"")
    result = clients.run("chmod", clients.p("m"), "x0")
    assert result.returncode == 1
    assert "Invalid permission specification" in result.stderr


def test_rm(clients: Clients) -> None:
    tree(clients)
    clients.ok("rm", clients.p("t", "b"))
    assert clients.dom0().directory(clients.p("t")) == [b"c", b"d"]


def test_rm_tidy_removes_empty_parents(clients: Clients) -> None:
    tree(clients)
    clients.ok("rm", "-t", clients.p("t", "d", "e"))
    assert clients.dom0().directory(clients.p("t")) == [b"b", b"c"]


def test_rm_missing_parent_fails(clients: Clients) -> None:
    result = clients.run("rm", clients.p("zz", "yy"))
    assert result.returncode == 1
    assert "could not remove path" in result.stderr


def test_rm_missing_leaf_succeeds(clients: Clients) -> None:
    clients.dom0().write(clients.p("parent"), b"")
    clients.ok("rm", clients.p("parent", "missing"))


def test_watch_counts_events(clients: Clients) -> None:
    path = clients.p("w")
    with clients.spawn("watch", "-n", "3", path) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"{path}\n"  # the initial event
        c = clients.dom0()
        c.write(f"{path}/x", b"1")
        c.write(clients.p("other"), b"1")
        c.rm(path)
        out, err = proc.communicate(timeout=20)
    assert (out, err, proc.returncode) == (f"{path}/x\n{path}\n", "", 0)


def test_watch_special_path(clients: Clients) -> None:
    with clients.spawn("watch", "-n", "2", "@introduceDomain") as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "@introduceDomain\n"
        clients.add_guest()
        out, err = proc.communicate(timeout=20)
    assert (out, err, proc.returncode) == ("@introduceDomain\n", "", 0)


def test_multicall_binary(clients: Clients) -> None:
    clients.dom0().write(clients.p("m"), b"multi")
    assert clients.ok("", "read", clients.p("m")) == "multi\n"
    assert clients.ok("", "exists", clients.p("m")) == ""


def test_usage_errors(clients: Clients) -> None:
    result = clients.run("write", clients.p("odd"))
    assert result.returncode == 1
    assert "Usage" in result.stderr
    assert clients.run("exists", clients.p("odd")).returncode == 1
