"""The daemon over its sockets: a subprocess (``python -m xsactor serve``) spoken to with the
blocking WireClient, the CLI's behaviour, and the in-process gevent API."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys

import pytest

from xsactor.daemon.toolstack import GuestSpec
from xsactor.protocol import Op, Packet
from xsactor.protocol.errors import EACCES, ENOENT
from xsactor.testing.daemons import EmbeddedDaemonProcess
from xsactor.testing.util import scratch_dir, wait_for
from xsactor.testing.wire import WireClient

from .conftest import QUIET, serving

HDR = struct.Struct("<IIII")


def test_basic_requests(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as c:
        assert c.read("/local/domain/0/name") == b"Domain-0"
        c.write("/srv/basic", b"v\0x")
        assert c.read("/srv/basic") == b"v\0x"
        assert c.get_perms("/srv/basic") == ["n0"]
        with pytest.raises(ENOENT):
            c.read("/srv/missing")


def test_pipelined_replies_in_request_order(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as c:
        c.send(*(Packet.request(Op.GET_DOMAIN_PATH, n, req_id=n) for n in (7, 3, 9)))
        replies = [c.recv() for _ in range(3)]
        assert [r.req_id for r in replies] == [7, 3, 9]
        assert replies[1].payload == b"/local/domain/3\0"


def test_header_split_across_writes(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as c:
        data = Packet.request(Op.READ, "/local/domain/0/name", req_id=5).encode()
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
        reply = c.recv()
        assert (reply.req_id, reply.payload) == (5, b"Domain-0")


def test_max_payload_accepted_and_oversized_header_closes_only_that_connection(
        live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as good, live.dom0() as bad:
        path = b"/srv/max\0"
        payload = path + b"x" * (4096 - len(path))
        assert good.exchange(Packet(Op.WRITE, 1, 0, payload)).payload == b"OK\0"
        bad.send(Packet.request(Op.GET_DOMAIN_PATH, 1, req_id=1))
        bad.send_raw(HDR.pack(Op.WRITE, 2, 0, 4097) + b"/srv/never\0")
        assert bad.recv().req_id == 1
        assert bad.is_closed()
        assert good.read("/srv/max") == b"x" * (4096 - len(path))
        with pytest.raises(ENOENT):
            good.read("/srv/never")
    with live.dom0() as again:
        assert again.read("/local/domain/0/name") == b"Domain-0"


def test_event_before_reply_on_the_wire(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as c:
        c.watch("/srv/ev", "tok")
        assert c.next_event() == (b"/srv/ev", b"tok")
        c.send(Packet.write("/srv/ev", "1", req_id=77))
        first, second = c.recv(), c.recv()
        assert (first.op, first.payload) == (Op.WATCH_EVENT, b"/srv/ev\0tok\0")
        assert (second.op, second.req_id) == (Op.WRITE, 77)


def test_guest_socket_speaks_for_the_guest(live: EmbeddedDaemonProcess) -> None:
    with live.guest(5) as g:
        assert g.read("name") == b"guest5"
        assert g.call(Op.GET_DOMAIN_PATH, 5) == b"/local/domain/5\0"
        g.write("data/x", "1")
        assert g.get_perms("data/x") == ["n5"]
        with pytest.raises(EACCES):
            g.read("/local/domain/6/name")
        with pytest.raises(EACCES):
            g.control("check")


def test_guest_protocol_error_closes_every_connection_of_that_domain(
        live: EmbeddedDaemonProcess) -> None:
    """A guest is one ring: after a bad frame the domain is ignored for good (see
    docs/daemon.md); other domains carry on."""
    live.add_guest(GuestSpec(11))
    with live.guest(11) as g, live.guest(11) as bad, live.guest(6) as other:
        g.write("data/x", "1")
        bad.send_raw(HDR.pack(Op.READ, 1, 0, 5000))
        assert bad.is_closed()
        assert g.is_closed()
        assert other.read("name") == b"guest6"
    with live.guest(11) as again:
        assert again.is_closed()
    with live.dom0() as dom0:
        assert dom0.read("/local/domain/11/data/x") == b"1"


def test_introduce_and_release_over_the_wire(live: EmbeddedDaemonProcess) -> None:
    path = os.path.join(live.guest_dir, "12")
    with live.dom0() as dom0:
        dom0.watch("@introduceDomain", "i")
        dom0.watch("@releaseDomain", "r")
        dom0.drain_events()
        dom0.mkdir("/local/domain/12")
        dom0.set_perms("/local/domain/12", ["n12"])
        dom0.introduce(12, 0, 1)
        assert dom0.next_event() == (b"@introduceDomain", b"i")
        wait_for(lambda: os.path.exists(path), 20.0, f"guest socket {path}")
        g = WireClient(path)
        g.write("mine", "1")
        dom0.release(12)
        assert dom0.next_event() == (b"@releaseDomain", b"r")
        assert g.is_closed()
        assert not os.path.exists(path)
        with pytest.raises(ENOENT):
            dom0.read("/local/domain/12")
        g.close()


def test_hypervisor_control_over_the_wire(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as dom0:
        dom0.watch("@releaseDomain", "r")
        dom0.drain_events()
        dom0.control("hypervisor", 6, "crashed")
        assert dom0.next_event() == (b"@releaseDomain", b"r")
        assert dom0.call(Op.IS_DOMAIN_INTRODUCED, 6) == b"T\0"


def test_big_reply_is_e2big(live: EmbeddedDaemonProcess) -> None:
    with live.dom0() as c:
        for i in range(150):
            c.write(f"/srv/big/name-that-is-rather-long-{i:04d}", "")
        reply = c.request(Op.DIRECTORY, "/srv/big")
        assert (reply.op, reply.payload) == (Op.ERROR, b"E2BIG\0")


def test_slow_reader_does_not_block_others(live: EmbeddedDaemonProcess) -> None:
    """A client that pipelines a lot and reads nothing must not stall the daemon."""
    with live.dom0() as hog, live.dom0() as other:
        request = Packet.request(Op.READ, "/local/domain/0/name").encode()
        hog.sock.setblocking(False)
        sent = 0
        try:
            for _ in range(200):
                sent += hog.sock.send(request * 1000)
        except BlockingIOError:
            pass
        assert sent > 0
        assert other.read("/local/domain/0/name") == b"Domain-0"


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_serve_lifecycle() -> None:
    with scratch_dir("xsd-") as rundir:
        nested = os.path.join(rundir, "deep", "er")
        sock_path = os.path.join(nested, "socket")
        os.makedirs(nested)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(sock_path)
        stale.close()                                  # a stale socket file stays behind
        # start() waits until the socket accepts connections, which a stale one never does
        with EmbeddedDaemonProcess(
                nested, extra_args=(*QUIET, "-E", "5", "-Q", "transaction-nodes=9")) as daemon:
            assert daemon.socket_path == sock_path
            with WireClient(sock_path) as c:
                listing = c.control("quota").decode()
                assert "nodes            :        5" in listing
                assert "transaction-nodes:        9" in listing
            daemon.stop()
            assert daemon.returncode == 0
        assert daemon.stdout_path.read_bytes() == b""  # logs go to stderr only


def test_cli_sigint_and_bad_arguments() -> None:
    with serving() as daemon:
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGINT)
        assert daemon.process.wait(10) == 0
    bad = subprocess.run([sys.executable, "-m", "xsactor", "serve"], capture_output=True,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert bad.returncode == 2


# -- in-process, gevent ------------------------------------------------------------------------
def test_in_process_daemon_api(inproc) -> None:
    from xsactor.daemon.toolstack import GuestSpec

    def ask(path: str, packet: Packet) -> Packet:
        with WireClient(path, cooperative=True) as client:
            return client.exchange(packet)

    guest_path = inproc.add_guest(GuestSpec(4))
    assert os.path.exists(guest_path)
    reply = ask(guest_path, Packet.request(Op.READ, "name", req_id=3))
    assert (reply.req_id, reply.payload) == (3, b"guest4")
    reply = ask(inproc.socket_path, Packet.request(Op.IS_DOMAIN_INTRODUCED, 4))
    assert reply.payload == b"T\0"
    inproc.set_domain_state(4, "gone")
    assert not os.path.exists(guest_path)
    reply = ask(inproc.socket_path, Packet.request(Op.IS_DOMAIN_INTRODUCED, 4))
    assert reply.payload == b"F\0"
    assert inproc.xs.store.problems() == []
    guest_path = inproc.add_guest(GuestSpec(4))  # a new domain with the domid of one gone
    reply = ask(guest_path, Packet.request(Op.READ, "name", req_id=5))
    assert (reply.req_id, reply.payload) == (5, b"guest4")
