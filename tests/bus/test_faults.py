"""The bus under faults: requests the caller gave up on still end on the daemon, timeouts
cover every round trip of a call, and a stall logs a summary, not a line per late reply."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from structlog.testing import capture_logs

from xsactor import Client, RequestTimeout
from xsactor.protocol import Op

from .conftest import GUEST, stall_reads, until
from .faultproxy import FaultProxy


def _open_transactions(proxy: FaultProxy) -> int:
    """Open transactions on the daemon behind the proxy."""
    return sum(len(c.transactions) for c in proxy.daemon.xs.connections.values())


def _sync(client: Client) -> None:
    """One round trip: whatever the bus sent before has been handled by the daemon."""
    client.get_domain_path(0)


@pytest.mark.parametrize("give_up", ["timeout", "default_timeout", "kill"])
def test_a_transaction_given_up_on_is_ended_on_the_daemon(
        proxy: FaultProxy, clients: Any, give_up: str) -> None:
    client = clients(proxy.socket_path,
                     default_timeout=0.05 if give_up == "default_timeout" else 20.0)
    base = len(proxy.all_received)
    proxy.gate.clear()
    if give_up == "kill":
        starter = gevent.spawn(client.transaction)
        assert proxy.wait_received(base + 1)
        starter.kill()
    else:
        with pytest.raises(RequestTimeout):
            if give_up == "timeout":
                client.transaction(timeout=0.05)
            else:
                client.transaction()  # the default timeout's sweep
    proxy.gate.set()
    until(lambda: any(p.op == Op.TRANSACTION_END for p in proxy.all_received[base:]),
          what="the late transaction to be ended")
    _sync(client)
    assert _open_transactions(proxy) == 0
    [end] = [p for p in proxy.all_received[base:] if p.op == Op.TRANSACTION_END]
    assert end.payload == b"F\0" and end.tx_id > 0


def test_a_watch_given_up_on_is_removed_on_the_daemon(proxy: FaultProxy,
                                                       clients: Any) -> None:
    client = clients(proxy.socket_path)
    proxy.gate.clear()
    with pytest.raises(RequestTimeout):
        client.watch("/w/late", "late", timeout=0.05)
    proxy.gate.set()
    until(lambda: proxy.watch_count() == 0 and any(
        p.op == Op.UNWATCH for p in proxy.all_received), what="the late watch to be removed")
    assert client.conn.watches() == []
    _sync(client)
    client.write("/w/late", "x")
    _sync(client)
    assert client.conn.watches() == []
    # The same watch can be made again.
    client.watch("/w/late", "late")
    assert client.next_event("late", timeout=5) == ("/w/late", "late")


def test_transactions_given_up_on_do_not_use_up_the_quota(embedded: Any, clients: Any) -> None:
    """On the embedded daemon: a guest's timed-out transactions would otherwise stay open
    until its transaction quota (10) refused every later one with ENOSPC."""
    client = clients(embedded.add_guest(GUEST))
    client.read("domid")
    for _ in range(15):
        # A timeout of zero gives up before the reply is read: the reply comes late.
        with pytest.raises(RequestTimeout):
            client.transaction(timeout=0)
        _sync(client)
    until(lambda: all(not c.transactions for c in embedded.xs.connections.values()),
          what="every given-up transaction to be ended")
    tid = client.transaction()
    client.rollback(tid)


def test_relative_watch_honours_its_timeout_through_the_domid_lookup(
        proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.add_guest(GUEST))
    proxy.gate.clear()
    watcher = gevent.spawn(client.watch, "data", "rel", timeout=0.1)
    watcher.join(timeout=5)  # the default timeout (20 s) must not apply
    assert watcher.dead
    assert isinstance(watcher.exception, RequestTimeout)
    proxy.gate.set()
    _sync(client)
    until(lambda: proxy.watch_count() == 0, what="no watch left")


def test_a_stall_logs_one_summary_not_a_line_per_late_reply(proxy: FaultProxy,
                                                              clients: Any) -> None:
    client = clients(proxy.socket_path)
    readers = stall_reads(proxy, client, 50)
    for g in readers:
        g.kill()
    with capture_logs() as logs:
        proxy.gate.set()
        _sync(client)
        client.conn.flush_log_summaries()
    late = [entry for entry in logs if "late" in entry["event"] or "unknown" in entry["event"]]
    warnings = [entry for entry in late if entry["log_level"] == "warning"]
    assert len(warnings) <= 2, warnings
    assert sum(entry.get("count", 1) for entry in warnings) == 50
