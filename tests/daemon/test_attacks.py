"""One unprivileged guest must not starve or bloat the daemon (issue 10, item 1).

Each case is an attack that took the daemon down for everyone before its fix: a guest flooding
cheap requests, a guest that never reads its replies, a guest opening connections without end,
refused requests leaving bookkeeping behind, and a guest filling the path cache.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from xsactor.protocol import Op, Packet
from xsactor.protocol.errors import EACCES, ConnectionLost
from xsactor.protocol.ops import DOMID_FIRST_RESERVED
from xsactor.testing.daemons import EmbeddedDaemonProcess
from xsactor.testing.flood import flooding
from xsactor.testing.util import rss_kb, wait_for
from xsactor.testing.wire import WireClient, connect_unix

from .conftest import Engine, serving

GUEST = 5
ANSWER = 2.0
"""How long a request may stay unanswered before a case gives up on it (a bound, not a wait:
the figures that matter, e.g. 100 ms under a flood, are measured by bench/daemon_scale.py)."""


def guest_node(daemon: EmbeddedDaemonProcess, size: int) -> Packet:
    """A node under the guest's home that it may read; the READ request for it."""
    node = f"/local/domain/{GUEST}/data"
    with daemon.dom0() as dom0:
        dom0.write(node, b"d" * size)
    return Packet.request(Op.READ, node, req_id=1)


# -- starvation ------------------------------------------------------------------------------
def test_flooding_guest_does_not_starve_dom0_or_other_guests() -> None:
    with serving(guests=(GUEST, 6)) as daemon:
        request = guest_node(daemon, 32)
        flood = flooding(daemon.guest_sockets[GUEST], request, read_replies=True,
                         timeout=ANSWER)
        with daemon.dom0(timeout=ANSWER) as dom0, daemon.guest(6, timeout=ANSWER) as other, \
                flood as replies:
            for _ in range(10):
                assert dom0.read("/local/domain/0/name") == b"Domain-0"
                assert other.read("/local/domain/6/name") == b"guest6"
            # ... and the flood is still being served.
            during = replies.value
            wait_for(lambda: replies.value > during, ANSWER, "the flood to go on")


# -- memory ----------------------------------------------------------------------------------
def test_guest_not_reading_replies_is_no_longer_read_and_memory_stays_bounded() -> None:
    with serving(guests=(GUEST,)) as daemon:
        assert daemon.process is not None
        request = guest_node(daemon, 4000)
        before = rss_kb(daemon.process.pid)
        sock = connect_unix(daemon.guest_sockets[GUEST])
        # 2 MB of READs asks for 200 MB of replies; the daemon must stop reading long before.
        data = request.encode() * (2_000_000 // len(request.encode()))
        sock.settimeout(2.0)
        sent = 0
        with contextlib.suppress(TimeoutError):
            while sent < len(data):
                sent += sock.send(data[sent:sent + 65536])
        assert sent < len(data), "the daemon read every request of a guest that never reads"
        with daemon.dom0(timeout=ANSWER) as dom0:
            assert dom0.read("/local/domain/0/name") == b"Domain-0"
        assert rss_kb(daemon.process.pid) - before < 32_000
        sock.close()


def replies_until_stalled(client: WireClient, expected: int, stall: float) -> int:
    """Count replies until ``expected`` came or none came for ``stall`` seconds."""
    got = 0
    with contextlib.suppress(TimeoutError):
        while got < expected:
            if client.recv(timeout=stall).op != Op.WATCH_EVENT:
                got += 1
    return got


def test_events_a_guest_does_not_read_hold_back_the_guest_causing_them() -> None:
    with serving(guests=(GUEST,)) as daemon:
        assert daemon.process is not None
        home = f"/local/domain/{GUEST}"
        with daemon.guest(GUEST, timeout=ANSWER) as watcher, \
                daemon.guest(GUEST, timeout=ANSWER) as writer:
            for token in range(100):
                watcher.watch(home, f"w{token}")
            before = rss_kb(daemon.process.pid)
            # Every write and removal of a distinct node queues 100 events of 1.5 KB for the
            # watcher, who never reads them: 30 MB for 200 nodes, unless the writer is held
            # back once the watcher's backlog is full.
            packets = []
            for i in range(200):
                node = f"{home}/data/{'n' * 1500}{i}"
                packets += [Packet.write(node, b"x", req_id=2 * i),
                            Packet.request(Op.RM, node, req_id=2 * i + 1)]
            def send() -> None:
                with contextlib.suppress(OSError):
                    writer.send(*packets)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            answered = replies_until_stalled(writer, len(packets), stall=1.0)
            assert answered < len(packets)
            assert rss_kb(daemon.process.pid) - before < 16_000
            # Once the watcher reads, the writer goes on.
            reading = threading.Thread(target=replies_until_stalled,
                                       args=(watcher, 1 << 30, 1.0), daemon=True)
            reading.start()
            assert writer.recv(timeout=ANSWER).op != Op.ERROR
            reading.join(ANSWER)
        sender.join(ANSWER)


def test_guest_not_reading_dom0_events_is_closed_past_output_max() -> None:
    with serving("--output-max", "262144", guests=(GUEST,)) as daemon:
        data = f"/local/domain/{GUEST}/data"
        with daemon.guest(GUEST, timeout=ANSWER) as watcher, \
                daemon.dom0(timeout=ANSWER) as dom0:
            watcher.watch(data, "w")
            # dom0 is not held back; 1.2 MB of distinct events the guest never reads.
            packets = [Packet.write(f"{data}/{'n' * 1500}{i}", b"", req_id=i)
                       for i in range(800)]
            dom0.send(*packets)
            for packet in packets:
                assert not dom0.reply_to(packet.req_id).is_error
            assert watcher.is_closed(timeout=ANSWER)
            assert dom0.read("/local/domain/0/name") == b"Domain-0"


# -- descriptors -----------------------------------------------------------------------------
def served(path: str) -> WireClient | None:
    """A new guest connection if the daemon serves it (None if it closes it at once)."""
    client = WireClient(path, ANSWER)
    try:
        assert client.read("name") == b"guest5"
        return client
    except (ConnectionLost, OSError):
        client.close()
        return None


def test_connections_per_guest_are_bounded_and_dom0_always_served() -> None:
    with serving("--max-guest-connections", "4", guests=(GUEST,)) as daemon:
        path = daemon.guest_sockets[GUEST]
        clients = [served(path) for _ in range(10)]
        kept = [c for c in clients if c is not None]
        try:
            assert len(kept) == 4
            with daemon.dom0(timeout=ANSWER) as dom0:
                assert dom0.read("/local/domain/0/name") == b"Domain-0"
        finally:
            for client in kept:
                client.close()
        # Closed connections free their places (once the daemon has seen them go).
        again = wait_for(lambda: served(path), ANSWER, "a guest connection to be served")
        again.close()


@contextlib.contextmanager
def open_files_limit(limit: int) -> Iterator[None]:
    """Lower this process's descriptor limit (inherited by the daemon it starts)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_descriptor_exhaustion_keeps_dom0_served_without_a_traceback_flood() -> None:
    with open_files_limit(160):
        daemon_cm = serving("--log-level", "info", "--max-guest-connections", "1000",
                            guests=(GUEST,))
        daemon = daemon_cm.__enter__()
    try:
        socks = []
        for _ in range(400):
            with contextlib.suppress(OSError):
                socks.append(connect_unix(daemon.guest_sockets[GUEST], timeout=0.2))
        with daemon.dom0(timeout=ANSWER) as dom0:
            assert dom0.read("/local/domain/0/name") == b"Domain-0"
            with daemon.dom0(timeout=ANSWER) as second:
                assert second.read("/local/domain/0/name") == b"Domain-0"
        for sock in socks:
            sock.close()
        with daemon.guest(GUEST, timeout=ANSWER) as guest:
            assert guest.read("name") == b"guest5"
        log = daemon.log_tail(1 << 20)
        assert "Traceback" not in log
        assert log.count("connection refused") == 1
    finally:
        daemon_cm.__exit__(None, None, None)


class OutOfDescriptors:
    """A listening socket whose accept fails with EMFILE ``failures`` times."""

    def __init__(self, sock: Any, failures: int) -> None:
        self.sock = sock
        self.failures = failures

    def accept(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_accept_out_of_descriptors_backs_off_with_one_log_line(inproc: Any) -> None:
    import gevent
    import gevent.socket

    listener = inproc._listeners[0]
    listener.sock = OutOfDescriptors(listener.sock, failures=3)
    with capture_logs() as logs:
        client = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_STREAM)
        client.connect(inproc.socket_path)
        client.sendall(Packet.request(Op.READ, "/local/domain/0/name", req_id=1).encode())
        with gevent.Timeout(ANSWER):
            reply = client.recv(65536)
        client.close()
    assert reply.endswith(b"Domain-0")
    assert listener.sock.failures == 0
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "cannot accept, backing off"]
    assert listener.backoff == 0  # reset by the accept that worked


# -- refused requests --------------------------------------------------------------------------
def test_refused_set_perms_makes_records_only_for_domains_that_exist(engine: Engine) -> None:
    """As 4.17 (``domain_alloc_permrefs``), SET_PERMS makes a record for each domain its ACL
    names before anything can refuse it, but only for a domain the hypervisor knows: what a
    guest sends cannot make records beyond the domains that exist."""
    engine.add_guest(GUEST)
    guest = engine.guest(GUEST)
    dom0 = engine.dom0()
    dom0.write("/private", b"")
    gone = range(1000, 1004)
    for domid in gone:
        engine.xs.set_domain_state(domid, "gone")
    known = set(engine.xs.domains.table)
    entries = [f"r{domid}" for domid in gone]
    assert guest.err(Op.SET_PERMS, "/private", f"n{GUEST}", *entries) == "EACCES"
    assert guest.err(Op.SET_PERMS, "/missing/x", f"n{GUEST}", *entries) in (
        "ENOENT", "EACCES")
    assert set(engine.xs.domains.table) == known
    assert dom0.err(Op.CONTROL, "quota", "1000") == "ENOENT"
    assert guest.err(Op.SET_PERMS, "/private", f"n{GUEST}", "r1004") == "EACCES"
    assert set(engine.xs.domains.table) == known | {1004}  # 1004 exists: as 4.17


def test_requests_cannot_make_records_past_the_domids_xen_has(engine: Engine) -> None:
    """No domain has a reserved id (DOMID_FIRST_RESERVED and above), so naming any number of
    them in ACLs makes no record: the records requests can make are bounded as on Xen."""
    engine.add_guest(GUEST)
    guest = engine.guest(GUEST)
    engine.dom0().write("/private", b"")
    known = set(engine.xs.domains.table)
    for first in range(DOMID_FIRST_RESERVED, DOMID_FIRST_RESERVED + 4000, 4):
        entries = [f"r{domid}" for domid in range(first, first + 4)]
        assert guest.err(Op.SET_PERMS, "/private", f"n{GUEST}", *entries) == "EACCES"
    guest.call(Op.SET_PERMS, "data", f"n{GUEST}", f"r{DOMID_FIRST_RESERVED + 1}", "r4294967295")
    assert set(engine.xs.domains.table) == known


def test_refused_write_creates_no_domain_record(engine: Engine) -> None:
    engine.add_guest(GUEST)
    dom0 = engine.dom0()
    dom0.write("/acl", b"")
    dom0.chmod("/acl", "n0", "r7000")
    known = set(engine.xs.domains.table)
    guest = engine.guest(GUEST)
    with pytest.raises(EACCES):
        guest.call(Op.WRITE, "/acl/child", "v")
    assert set(engine.xs.domains.table) == known


# -- caches ----------------------------------------------------------------------------------
def test_path_cache_stays_within_its_byte_budget(engine: Engine) -> None:
    engine.add_guest(GUEST)
    guest = engine.guest(GUEST)
    cache = engine.xs.path_cache
    stem = "p" * 1900
    for i in range(2 * cache.budget // 2000 + 100):
        guest.err(Op.READ, f"{stem}{i}")
        assert cache.size <= cache.budget
    # Still a cache: a path asked again is not parsed again.
    guest.err(Op.READ, f"{stem}x")
    assert (guest.conn.home, f"{stem}x".encode() + b"\0") in cache


def test_get_perms_payloads_stay_within_their_byte_budget(engine: Engine) -> None:
    """Every distinct ACL a guest makes and asks for is remembered within the budget, and a
    changed ACL is answered anew."""
    from xsactor.daemon.store import PERMS_PAYLOADS_BUDGET

    engine.add_guest(GUEST)
    guest = engine.guest(GUEST)
    store = engine.xs.store
    guest.ok_write("data/acl")
    for i in range(PERMS_PAYLOADS_BUDGET // 100 + 500):
        acl = [f"n{GUEST}", f"r{i}", f"w{i + 1}", f"b{i + 2}", f"r{-i - 1}"]
        guest.chmod("data/acl", *acl)
        assert guest.perms("data/acl") == [*acl[:4], acl[4][:11]]
        assert store._payload_bytes <= PERMS_PAYLOADS_BUDGET
