"""Smoke tests of the reference harness: the C xenstored 4.17 with stubbed hypervisor,
guest rings bridged to unix sockets, and domain states driven through the VIRQ.

They skip when the Debian packages or gcc cannot be had, unless XSACTOR_REQUIRE_REFERENCE=1,
in which case they fail.
"""

from __future__ import annotations

import mmap
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from xsactor.daemon.toolstack import GuestSpec
from xsactor.protocol import ConnectionLost, Op, Packet
from xsactor.protocol.errors import EACCES, ENOENT
from xsactor.protocol.ops import HEADER
from xsactor.testing.daemons import require_reference
from xsactor.testing.reference import (
    ReferenceDaemon,
    ReferenceDaemonError,
    ReferenceInstall,
    ReferenceUnavailable,
    ensure_install,
)
from xsactor.testing.reference.bridge import (
    PAGE_SIZE,
    REQ_CONS,
    REQ_OFFSET,
    REQ_PROD,
    RSP_PROD,
)
from xsactor.testing.toolstack import create_guest
from xsactor.testing.util import accepts_connections
from xsactor.testing.wire import WireClient

pytestmark = pytest.mark.reference


@pytest.fixture(scope="session")
def install() -> ReferenceInstall:
    return require_reference()


@pytest.fixture
def daemon(install: ReferenceInstall, tmp_path: Path) -> Iterator[ReferenceDaemon]:
    with ReferenceDaemon(install, tmp_path / "xs") as running:
        yield running


@pytest.fixture
def dom0(daemon: ReferenceDaemon) -> Iterator[WireClient]:
    with daemon.connect() as client:
        yield client


def guest(daemon: ReferenceDaemon, domid: int) -> WireClient:
    return WireClient(daemon.add_guest(GuestSpec(domid)))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- install ------------------------------------------------------------------------------

def test_install_is_cached_and_complete(install: ReferenceInstall) -> None:
    again = ensure_install(install.root.parent, fetch=False)
    assert again == install
    assert install.xenstored.is_file()
    assert install.stub.is_file()
    assert (install.clients_dir / "xenstore-read").is_file()
    assert (install.python_dir / "xen" / "lowlevel").is_dir()


def test_offline_empty_cache_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ReferenceUnavailable, match="fetch"):
        ensure_install(tmp_path / "empty", fetch=False)


def test_daemon_failing_at_start_reports_its_log(install: ReferenceInstall,
                                                 tmp_path: Path) -> None:
    bad = ReferenceDaemon(install, tmp_path / "xs", extra_args=("-Q", "nonsense=1"))
    with pytest.raises(ReferenceDaemonError, match="unknown quota"):
        bad.start()
    assert not bad.alive()


# -- dom0 ---------------------------------------------------------------------------------

def test_dom0_write_read_directory(dom0: WireClient) -> None:
    assert dom0.read("/local/domain/0/name") == b"Domain-0"
    dom0.write("/test/a", b"value")
    dom0.write("/test/b", b"")
    assert dom0.read("/test/a") == b"value"
    assert sorted(dom0.directory("/test")) == [b"a", b"b"]
    assert sorted(dom0.directory("/local/domain/0")) == [b"domid", b"name"]


def test_install_clients_talk_to_the_daemon(install: ReferenceInstall,
                                            daemon: ReferenceDaemon) -> None:
    env = install.client_env(daemon.socket_path)
    out = subprocess.run([str(install.clients_dir / "xenstore-read"), "/local/domain/0/name"],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "Domain-0"
    if sys.version_info[:2] == (3, 11):
        code = ("import xen.lowlevel.xs as xs; "
                "print(xs.xs().read('', '/local/pool/0/name').decode())")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=30, check=True)
        assert out.stdout.strip() == "Pool-0"


# -- guests -------------------------------------------------------------------------------

def test_guest_reads_own_domid_and_cannot_write_outside_home(daemon: ReferenceDaemon) -> None:
    with guest(daemon, 5) as dom5:
        assert dom5.read("domid") == b"5"
        assert dom5.call(Op.GET_DOMAIN_PATH, 5) == b"/local/domain/5\0"
        with pytest.raises(EACCES):
            dom5.write("/local/domain/0/intruder", b"x")
        with pytest.raises(EACCES):
            dom5.call(Op.IS_DOMAIN_INTRODUCED, 5)
        dom5.write("data/mine", b"ok")
        assert dom5.read("/local/domain/5/data/mine") == b"ok"


def test_guest_pipeline_of_50_requests_in_one_write(daemon: ReferenceDaemon) -> None:
    with guest(daemon, 6) as dom6:
        req_ids = random.Random(6).sample(range(1, 10_000), 50)
        packets = [Packet.request(Op.READ, "domid", req_id=r) if i % 2 else
                   Packet.write(f"data/k{i}", str(i), req_id=r)
                   for i, r in enumerate(req_ids)]
        dom6.send(*packets)
        replies = [dom6.recv() for _ in packets]
        assert [r.req_id for r in replies] == req_ids
        for i, reply in enumerate(replies):
            assert reply.payload == (b"6" if i % 2 else b"OK\0")


def test_guest_long_pipeline_turns_the_rings_many_times(daemon: ReferenceDaemon) -> None:
    with guest(daemon, 16) as dom16:
        packets = [Packet.write(f"data/n{i // 100}/{i % 100}", str(i), req_id=i)
                   for i in range(1, 900)]
        packets += [Packet.request(Op.READ, f"data/n{i // 100}/{i % 100}", req_id=10_000 + i)
                    for i in range(1, 900)]
        dom16.send(*packets)
        replies = [dom16.recv() for _ in packets]
        assert [r.req_id for r in replies] == [p.req_id for p in packets]
        assert all(r.payload == b"OK\0" for r in replies[:899])
        assert [r.payload for r in replies[899:]] == [str(i).encode() for i in range(1, 900)]
        assert daemon.ring_error(16) == 0


def test_guest_4096_byte_payload_is_streamed_through_the_ring(daemon: ReferenceDaemon,
                                                              dom0: WireClient) -> None:
    dom0.control("quota", "set", "node-size", "8192")
    with guest(daemon, 7) as dom7:
        path = "data/big"
        value = bytes(random.Random(7).choice(b"abcdefgh") for _ in range(4096 - len(path) - 1))
        write = Packet.write(path, value, req_id=dom7.next_req_id())
        assert len(write.payload) == 4096
        assert dom7.exchange(write).payload == b"OK\0"
        assert dom7.read(path) == value  # a 4087-byte reply through the reply ring
        assert dom0.read("/local/domain/7/data/big") == value
        assert dom7.read("domid") == b"7"


def test_watch_event_from_dom0_write_reaches_guest(daemon: ReferenceDaemon,
                                                   dom0: WireClient) -> None:
    with guest(daemon, 8) as dom8:
        dom8.watch("data", "tok")
        assert dom8.next_event() == (b"data", b"tok")
        dom0.write("/local/domain/8/data/x", b"1")
        assert dom8.next_event() == (b"data/x", b"tok")


def test_next_client_of_a_guest_starts_without_watches_or_transactions(
        daemon: ReferenceDaemon, dom0: WireClient) -> None:
    path = daemon.add_guest(GuestSpec(9))
    with WireClient(path) as first:
        first.watch("data", "tok")
        first.next_event()
        tx_id = first.start()
        first.send(*[Packet.request(Op.READ, "domid", req_id=i) for i in range(1, 100)])
    with WireClient(path) as second:
        assert second.read("domid") == b"9"
        dom0.write("/local/domain/9/data/y", b"1")
        assert second.drain_events() == []
        assert second.request(Op.READ, "domid", tx_id=tx_id).payload == b"ENOENT\0"


def test_attach_guest_introduced_by_the_caller(daemon: ReferenceDaemon,
                                               dom0: WireClient) -> None:
    create_guest(dom0, GuestSpec(10))
    with WireClient(daemon.attach_guest(10)) as dom10:
        assert dom10.read("domid") == b"10"


# -- domain states ------------------------------------------------------------------------

def test_dying_fires_release_domain_and_deletes_guest_nodes(daemon: ReferenceDaemon,
                                                           dom0: WireClient) -> None:
    dom11 = guest(daemon, 11)
    dom11.write("data/x", b"1")
    dom0.watch("@releaseDomain", "rel")
    assert dom0.next_event() == (b"@releaseDomain", b"rel")

    daemon.set_domain_state(11, "dying")

    assert dom0.next_event() == (b"@releaseDomain", b"rel")
    with pytest.raises(ENOENT):
        dom0.read("/local/domain/11/data")
    assert dom0.read("/local/domain/11/domid") == b"11"  # owned by dom0: kept
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 11) == b"F\0"
    assert dom11.is_closed()
    dom11.close()


def test_shutdown_fires_release_domain_once(daemon: ReferenceDaemon,
                                            dom0: WireClient) -> None:
    dom12 = guest(daemon, 12)
    dom0.watch("@releaseDomain", "rel")
    dom0.next_event()
    daemon.set_domain_state(12, "shutdown")
    assert dom0.drain_events() == [(b"@releaseDomain", b"rel")]
    daemon.set_domain_state(12, "crashed")  # already noticed as shut down
    assert dom0.drain_events() == []
    assert dom12.read("domid") == b"12"  # a shut-down domain is still served
    dom12.close()
    daemon.set_domain_state(12, "gone")
    assert dom0.drain_events() == [(b"@releaseDomain", b"rel")]
    assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 12) == b"F\0"


def test_guest_can_be_added_again_after_it_is_gone(daemon: ReferenceDaemon) -> None:
    guest(daemon, 13).close()
    daemon.set_domain_state(13, "gone")
    with guest(daemon, 13) as again:
        assert again.read("domid") == b"13"


# -- bad input ----------------------------------------------------------------------------

def test_oversized_frame_closes_the_guest_client(daemon: ReferenceDaemon,
                                                 dom0: WireClient) -> None:
    path = daemon.add_guest(GuestSpec(14))
    with WireClient(path) as dom14:
        assert dom14.read("domid") == b"14"
        dom14.send_raw(HEADER.pack(Op.WRITE, 99, 0, 4097) + b"x" * 64)
        assert dom14.is_closed(timeout=10)
    assert daemon.ring_error(14) == 3
    assert daemon.guest_status(14)["broken"]
    with WireClient(path) as later:
        assert later.is_closed(timeout=10)
    dom0.write("/after", b"still serving")
    assert dom0.read("/after") == b"still serving"
    assert daemon.alive()


def test_ignored_ring_stays_ignored_after_a_reintroduce(daemon: ReferenceDaemon,
                                                       dom0: WireClient) -> None:
    """What the embedded daemon's broken-domain model rests on, seen on the ring itself, not
    through the bridge: after a protocol error and a re-INTRODUCE (which zeroes the ring's
    indices), 4.17 does not even read a request put on the ring."""
    path = daemon.add_guest(GuestSpec(15))
    with WireClient(path) as dom15:
        dom15.send_raw(HEADER.pack(Op.WRITE, 99, 0, 4097))
        assert dom15.is_closed(timeout=10)
    dom0.introduce(15, 0, 1)
    assert daemon.ring_error(15) == 3
    request = Packet.request(Op.READ, "domid", req_id=5).encode()
    with open(daemon.ring_path(15), "r+b") as fh, mmap.mmap(fh.fileno(), PAGE_SIZE) as ring:
        words = memoryview(ring).cast("I")
        assert (words[REQ_CONS], words[REQ_PROD], words[RSP_PROD]) == (0, 0, 0)
        ring[REQ_OFFSET:REQ_OFFSET + len(request)] = request
        words[REQ_PROD] = len(request)
        for _ in range(3):  # each request makes 4.17 look at every ring again
            dom0.write("/poke", b"x")
        assert (words[REQ_CONS], words[RSP_PROD]) == (0, 0)
        words.release()


def test_stop_leaves_no_process_behind(install: ReferenceInstall, tmp_path: Path) -> None:
    daemon = ReferenceDaemon(install, tmp_path / "xs")
    daemon.start()
    path = daemon.add_guest(GuestSpec(15))
    pids = [daemon.pid, daemon.bridge_pid]
    socket_path = daemon.socket_path
    assert all(pid is not None and _process_exists(pid) for pid in pids)
    daemon.stop()
    assert not daemon.alive()
    assert not any(_process_exists(pid) for pid in pids if pid is not None)
    assert not accepts_connections(socket_path)
    assert not accepts_connections(path)
    with pytest.raises((ConnectionLost, OSError, RuntimeError)):
        daemon.connect()
