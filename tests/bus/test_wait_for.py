"""wait_for: rerun a condition whenever what it read changes."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from xsactor import Client, WaitTimeout, mailbox_of

from .conftest import until
from .faultproxy import FaultProxy


def test_returns_at_once_when_already_true(client: Client) -> None:
    client.write("/wf/ready", "yes")
    assert client.wait_for(lambda: client.read("/wf/ready", default=None)) == b"yes"
    assert client.conn.watches() == []


def test_waits_for_a_later_write(client: Client) -> None:
    runs = []

    def condition() -> int | None:
        runs.append(1)
        value = client.read_integer("/wf/n", default=0)
        return value if value >= 3 else None

    def writer() -> None:
        for i in range(1, 4):
            client.write("/wf/n", str(i))

    waiter = gevent.spawn(client.wait_for, condition, 10)
    gevent.spawn(writer)
    assert waiter.get(timeout=10) == 3
    assert len(runs) >= 2
    assert client.conn.watches() == []  # cleaned up


def test_watches_exactly_what_each_run_read(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    client.write("/wf/which", "a")

    def condition() -> bytes | None:
        which = client.read_str("/wf/which")
        value = client.read(f"/wf/{which}", default=None)
        return value if which == "b" and value else None

    def driver() -> None:
        # Let each step be seen: wait until the waiter watches the path it should.
        def watching(path: str) -> bool:
            return path in proxy.watched_paths()
        until(lambda: watching("/wf/a"), what="a watch on /wf/a")
        client.write("/wf/which", "b")
        until(lambda: watching("/wf/b") and not watching("/wf/a"), what="a watch on /wf/b")
        client.write("/wf/b", "done")

    gevent.spawn(driver)
    assert client.wait_for(condition, timeout=10) == b"done"
    assert proxy.watch_count() == 0


def test_timeout_cleans_up_and_keeps_other_messages(proxy: FaultProxy,
                                                    clients: Any) -> None:
    client = clients(proxy.socket_path)
    mailbox_of().put("mine")
    with pytest.raises(WaitTimeout):
        client.wait_for(lambda: client.read("/wf/never", default=None), timeout=0.05)
    assert proxy.watch_count() == 0
    assert mailbox_of().receive(0) == "mine"
    assert len(mailbox_of()) == 0


def test_nested_reads_through_list_and_exists(client: Client) -> None:
    def condition() -> list[str] | None:
        names = client.list("/wf/dir") if client.exists("/wf/dir") else []
        return names if len(names) >= 2 else None

    waiter = gevent.spawn(client.wait_for, condition, 10)

    def write_both() -> None:
        for n in "xy":
            client.write(f"/wf/dir/{n}", "")

    gevent.spawn(write_both)
    assert sorted(waiter.get(timeout=10)) == ["x", "y"]
