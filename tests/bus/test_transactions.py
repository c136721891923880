"""Transactions: isolation, conflicts, and transact()'s retry loop."""

from __future__ import annotations

from typing import Any

import pytest

from xsactor import EAGAIN, Client, TransactionId
from xsactor.protocol import Op

from .faultproxy import FaultProxy


def test_isolation_commit_rollback(client: Client, clients: Any, server: Any) -> None:
    other = clients(server.socket_path)
    client.write("/tx/a", "0")
    tid = client.transaction()
    assert isinstance(tid, TransactionId) and int(tid) > 0
    client.write("/tx/a", "1", tid)
    client.write("/tx/new", "n", tid)
    assert client.read("/tx/a", tid) == b"1"
    assert client.read("/tx/a") == b"0"
    assert other.read("/tx/a") == b"0"
    assert not other.exists("/tx/new")
    client.commit(tid)
    assert other.read("/tx/a") == b"1"
    assert other.read("/tx/new") == b"n"

    tid = client.transaction()
    client.write("/tx/a", "2", tid)
    client.delete("/tx/new", tid)
    client.rollback(tid)
    assert other.read("/tx/a") == b"1"
    assert other.exists("/tx/new")


def test_transaction_ops(client: Client) -> None:
    client.write("/tx/ops/a", "1")
    tid = client.transaction()
    client.mkdir("/tx/ops/d", tid)
    assert sorted(client.list("/tx/ops", tid)) == ["a", "d"]
    client.set_perms("/tx/ops/a", ["n0", "r3"], tid)
    assert client.get_perms("/tx/ops/a", tid) == ["n0", "r3"]
    assert client.get_perms("/tx/ops/a") == ["n0"]
    assert client.exists("/tx/ops/d", tid)
    client.commit(tid)
    assert client.get_perms("/tx/ops/a") == ["n0", "r3"]


def test_conflict_gives_eagain(client: Client, clients: Any, server: Any) -> None:
    other = clients(server.socket_path)
    client.write("/tx/c", "0")
    tid = client.transaction()
    value = client.read("/tx/c", tid)
    client.write("/tx/c", str(int(value) + 1), tid)
    other.write("/tx/c", "100")
    with pytest.raises(EAGAIN):
        client.commit(tid)
    assert client.read("/tx/c") == b"100"


def test_transact_retries_until_it_commits(client: Client, clients: Any, server: Any) -> None:
    other = clients(server.socket_path)
    client.write("/tx/counter", "0")
    attempts = []

    def increment(tid: int) -> int:
        attempts.append(tid)
        value = client.read_integer("/tx/counter", tid)
        if len(attempts) < 3:
            other.write("/tx/counter", str(value + 10))  # a conflicting change
        client.write("/tx/counter", str(value + 1), tid)
        return value + 1

    assert client.transact(increment) == 21
    assert len(attempts) == 3
    assert client.read("/tx/counter") == b"21"


def test_transact_gives_up_after_bounded_retries(client: Client, clients: Any,
                                                 server: Any) -> None:
    other = clients(server.socket_path)
    client.write("/tx/hot", "0")
    calls = []

    def always_conflicts(tid: int) -> None:
        calls.append(tid)
        client.read("/tx/hot", tid)
        other.write("/tx/hot", str(len(calls)))

    with pytest.raises(EAGAIN):
        client.transact(always_conflicts, retries=3, backoff=0.0001)
    assert len(calls) == 4


def test_transact_rolls_back_on_error(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)

    def fails(tid: int) -> None:
        client.write("/tx/never", "x", tid)
        raise RuntimeError("body failed")

    with pytest.raises(RuntimeError):
        client.transact(fails)
    ends = [p for p in proxy.all_received if p.op == Op.TRANSACTION_END]
    assert [p.payload for p in ends] == [b"F\0"]
    assert not client.exists("/tx/never")
    assert proxy.open_transactions() == 0


def test_many_concurrent_transactions(client: Client) -> None:
    import gevent

    client.write("/tx/many", "0")

    def bump(_i: int) -> None:
        def body(tid: int) -> None:
            value = client.read_integer("/tx/many", tid)
            client.write("/tx/many", str(value + 1), tid)
        client.transact(body, retries=200, backoff=0.0005, backoff_max=0.01)

    gevent.joinall([gevent.spawn(bump, i) for i in range(10)], raise_error=True, timeout=30)
    assert client.read_integer("/tx/many") == 10
