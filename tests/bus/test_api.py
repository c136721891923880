"""Every API call, error typing, and what the client refuses before sending."""

from __future__ import annotations

from typing import Any

import pytest

import xsactor
from xsactor import (
    E2BIG,
    EACCES,
    EEXIST,
    EINVAL,
    ENOENT,
    Client,
    Perm,
    XenStoreError,
)
from xsactor.protocol.perms import Access

from .conftest import GUEST
from .faultproxy import FaultProxy


def test_read_write_values(client: Client) -> None:
    client.write("/api/s", "text")
    client.write("/api/b", b"\x00bin\xffary\x00")
    client.write("/api/i", 42)
    client.write("/api/e", "")
    assert client.read("/api/s") == b"text"
    assert client.read("/api/b") == b"\x00bin\xffary\x00"
    assert client.read_integer("/api/i") == 42
    assert client.read_str("/api/s") == "text"
    assert client.read("/api/e") == b""
    with pytest.raises(EINVAL):
        client.read_integer("/api/s")
    with pytest.raises(TypeError):
        client.write("/api/x", True)
    with pytest.raises(TypeError):
        client.write("/api/x", 1.5)  # type: ignore[arg-type]


def test_missing_nodes_and_defaults(client: Client) -> None:
    with pytest.raises(ENOENT) as info:
        client.read("/api/missing")
    assert isinstance(info.value, FileNotFoundError)  # typed, and the builtin too
    assert info.value.path == "/api/missing"
    assert client.read("/api/missing", default=None) is None
    assert client.read_integer("/api/missing", default=7) == 7
    assert client.read_str("/api/missing", default="d") == "d"
    assert not client.exists("/api/missing")
    client.write("/api/here", "")
    assert client.exists("/api/here")


def test_list_mkdir_delete(client: Client) -> None:
    client.mkdir("/api/dir")
    assert client.read("/api/dir") == b""
    assert client.list("/api/dir") == []
    for name in ("c", "a", "b"):
        client.write(f"/api/dir/{name}", name)
    assert sorted(client.list("/api/dir")) == ["a", "b", "c"]
    client.mkdir("/api/dir")  # existing: nothing changes
    assert client.read("/api/dir/a") == b"a"
    client.delete("/api/dir/a")
    assert sorted(client.list("/api/dir")) == ["b", "c"]
    client.delete("/api/dir")
    assert not client.exists("/api/dir/b")
    client.delete("/api/dir")  # missing, parent exists: OK
    with pytest.raises(ENOENT):
        client.delete("/api/nothing/below")
    with pytest.raises(ENOENT):
        client.list("/api/dir")


def test_perms(client: Client) -> None:
    client.write("/api/p", "v")
    assert client.get_perms("/api/p") == ["n0"]
    client.set_perms("/api/p", ["b0", "r5", Perm(Access.WRITE, 7)])
    assert client.get_perms("/api/p") == ["b0", "r5", "w7"]
    client.set_perms("/api/p", ["r0x10"])  # parsed as xenstored does (strtol)
    assert client.get_perms("/api/p") == ["r16"]


def test_domains(client: Client, guest_client: Client) -> None:
    assert client.domid() == 0
    assert client.home == "/local/domain/0"
    assert guest_client.domid() == GUEST
    assert guest_client.home == f"/local/domain/{GUEST}"
    assert client.get_domain_path(7) == "/local/domain/7"
    assert guest_client.get_domain_path(GUEST) == f"/local/domain/{GUEST}"


def test_guest_relative_paths_and_access(client: Client, guest_client: Client) -> None:
    assert guest_client.read("name") == f"guest{GUEST}".encode()
    guest_client.write("data/x", "1")
    assert client.read(f"/local/domain/{GUEST}/data/x") == b"1"
    assert guest_client.list("data") == ["x"]
    with pytest.raises(EACCES) as info:
        guest_client.read("/local/domain/0/name")
    assert isinstance(info.value, PermissionError)
    with pytest.raises(EACCES):
        guest_client.write("/local/domain/0/evil", "x")
    with pytest.raises(ENOENT):
        guest_client.read("data/missing")


def test_errors_are_typed(client: Client) -> None:
    client.write("/api/t", "v")
    tid = client.transaction()
    with pytest.raises(XenStoreError):
        client.delete("/")  # EINVAL from the daemon
    client.rollback(tid)
    with pytest.raises(ENOENT):
        client.commit(tid)  # already ended: the daemon says ENOENT


INVALID_PATHS = ["/api/bad path", "/api/trailing/", "/api//double", "/api/dot.ted", "",
                 "/" + "x" * 2048, "@notallowed"]


@pytest.fixture
def counted(proxy: FaultProxy, clients: Any) -> tuple[FaultProxy, Client]:
    client = clients(proxy.socket_path)
    client.read("/local/domain/0/name")  # settle
    return proxy, client


@pytest.mark.parametrize("path", INVALID_PATHS)
def test_invalid_paths_are_refused_before_sending(counted: tuple[FaultProxy, Client],
                                                  path: str) -> None:
    proxy, client = counted
    before = len(proxy.all_received)
    for call in (lambda: client.read(path), lambda: client.write(path, "v"),
                 lambda: client.list(path), lambda: client.delete(path),
                 lambda: client.mkdir(path), lambda: client.get_perms(path),
                 lambda: client.set_perms(path, ["n0"])):
        with pytest.raises(EINVAL):
            call()
    assert len(proxy.all_received) == before


def test_refused_before_sending(counted: tuple[FaultProxy, Client]) -> None:
    proxy, client = counted
    before = len(proxy.all_received)
    path = "/api/big"
    with pytest.raises(E2BIG):  # path + NUL + value > 4096
        client.write(path, b"v" * (4096 - len(path)))
    for bad in (["x0"], ["r"], ["R0"], [], ["r5x"]):
        with pytest.raises(EINVAL):
            client.set_perms("/api/p", bad)
    with pytest.raises(TypeError):
        client.set_perms("/api/p", "r0")
    with pytest.raises(EINVAL):
        client.set_perms("@other", ["n0"])
    with pytest.raises(EINVAL):
        client.watch("/api/w", "bad\0token")
    with pytest.raises(E2BIG):
        client.watch("/api/w", "t" * 4096)
    with pytest.raises(ENOENT):
        client.unwatch("/api/w", "never-registered")
    assert len(proxy.all_received) == before
    client.write(path, b"v" * (4096 - len(path) - 1))  # exactly 4096: sent and accepted
    assert len(client.read(path)) == 4096 - len(path) - 1


def test_duplicate_watch_refused_before_sending(counted: tuple[FaultProxy, Client]) -> None:
    proxy, client = counted
    client.watch("/api/w", "tok")
    before = len(proxy.all_received)
    with pytest.raises(EEXIST):
        client.watch("/api/w", "tok")
    assert len(proxy.all_received) == before


def test_special_paths(client: Client) -> None:
    client.set_perms("@releaseDomain", ["n0"])
    with pytest.raises(EINVAL):
        client.read("@releaseDomain")
    token = client.watch_release_domain()
    assert client.next_event(token, timeout=5) == ("@releaseDomain", token)
    token = client.watch_introduce_domain("intro")
    assert token == "intro"
    assert client.next_event(token, timeout=5) == ("@introduceDomain", "intro")


def test_module_level_api(server: Any) -> None:
    client = xsactor.connect(server.socket_path)
    assert xsactor.default_client() is client
    xsactor.write("/mod/a", "1")
    assert xsactor.read("/mod/a") == b"1"
    assert xsactor.read_integer("/mod/a") == 1
    assert xsactor.exists("/mod/a")
    assert xsactor.list("/mod") == ["a"]
    assert xsactor.get_perms("/mod/a") == ["n0"]
    xsactor.set_perms("/mod/a", ["n0", "r3"])
    xsactor.mkdir("/mod/d")
    xsactor.delete("/mod/d")
    assert xsactor.domid() == 0
    assert xsactor.get_domain_path(3) == "/local/domain/3"
    token = xsactor.watch("/mod")
    assert xsactor.next_event(token, timeout=5) == ("/mod", token)
    xsactor.unwatch("/mod", token)
    tid = xsactor.transaction()
    xsactor.write("/mod/t", "x", tid)
    xsactor.commit(tid)
    tid = xsactor.transaction()
    xsactor.rollback(tid)
    assert xsactor.transact(lambda t: xsactor.read("/mod/t", t)) == b"x"
    assert xsactor.wait_for(lambda: xsactor.read("/mod/t", default=None)) == b"x"
    xsactor.close()
    assert client.conn.closed
