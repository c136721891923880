"""Many greenlets, pipelining, per-request timeouts."""

from __future__ import annotations

import random
from typing import Any

import gevent
import pytest

from xsactor import Client, RequestTimeout
from xsactor.protocol import Op

from .conftest import stall_reads
from .faultproxy import FaultProxy


def test_200_greenlets_interleaving_never_cross_replies(client: Client) -> None:
    def worker(n: int) -> int:
        rng = random.Random(n)
        checks = 0
        for step in range(15):
            value = f"{n}-{step}-{rng.random()}"
            if rng.random() < 0.3:
                def body(tid: int, value: str = value) -> None:
                    client.write(f"/cc/{n}/t", value, tid)
                    assert client.read(f"/cc/{n}/t", tid) == value.encode()
                client.transact(body)
                assert client.read(f"/cc/{n}/t") == value.encode()
            else:
                client.write(f"/cc/{n}/v", value)
                assert client.read(f"/cc/{n}/v") == value.encode()
                assert client.list(f"/cc/{n}") != []
            checks += 1
        return checks

    for n in range(200):  # each greenlet's transactions touch only its own subtree
        client.write(f"/cc/{n}/v", "")
    greenlets = [gevent.spawn(worker, n) for n in range(200)]
    gevent.joinall(greenlets, timeout=60, raise_error=True)
    assert [g.value for g in greenlets] == [15] * 200


def test_pipelining_many_requests_in_flight(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    client.write("/pipe/k", "v")
    readers = stall_reads(proxy, client, 100, "/pipe/k")  # the daemon reads, answers none
    # All 100 reached the daemon while none had been answered: they were in flight at once.
    assert not any(g.ready() for g in readers)
    assert len(client.conn._pending) == 100
    req_ids = {p.req_id for p in proxy.all_received[-100:]}
    assert len(req_ids) == 100  # unique req_ids
    proxy.gate.set()
    gevent.joinall(readers, timeout=10, raise_error=True)
    assert {g.value for g in readers} == {b"v"}


def test_writes_are_batched(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    writes = []
    transport = client.conn.transport
    original = transport.try_send

    def counting(data: Any) -> int:
        writes.append(len(data))
        return original(data)

    transport.try_send = counting
    greenlets = [gevent.spawn(client.read, "/local/domain/0/name") for _ in range(50)]
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    assert len(writes) < 10  # 50 requests went out in a handful of writes


def test_per_request_timeout(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    proxy.gate.clear()
    with pytest.raises(RequestTimeout):
        client.read("/local/domain/0/name", timeout=0.05)
    assert client.conn._pending == {}  # forgotten
    proxy.gate.set()
    # The late reply is dropped (unknown req_id) and the bus carries on.
    assert client.read("/local/domain/0/name") == b"Domain-0"


def test_default_timeout(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path, default_timeout=0.05)
    proxy.gate.clear()
    with pytest.raises(TimeoutError):
        client.list("/")
    proxy.gate.set()
    assert "local" in client.list("/", timeout=None)


def test_outer_gevent_timeout_is_not_swallowed(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    proxy.gate.clear()
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.05):
        client.read("/local/domain/0/name", timeout=10)
    assert client.conn._pending == {}
    proxy.gate.set()


def test_killed_waiter_forgets_its_request(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    [g] = stall_reads(proxy, client, 1)
    g.kill()
    assert client.conn._pending == {}
    proxy.gate.set()
    assert client.read("/local/domain/0/name") == b"Domain-0"
    assert Op.READ in {p.op for p in proxy.all_received}
