"""Choosing and opening transports as libxenstore's xs_open does."""

from __future__ import annotations

import errno
import os
import socket
import stat

import gevent
import pytest

import xsactor
from xsactor.bus.transports import (
    DEFAULT_RUNDIR,
    DEVICE,
    SOCKET,
    DeviceTransport,
    Endpoint,
    SocketTransport,
    choose_endpoints,
    open_endpoint,
    open_transport,
)

from .faultproxy import FaultProxy


@pytest.fixture
def plain_file(rundir: str) -> str:
    path = os.path.join(rundir, "not-a-socket")
    open(path, "w").close()
    return path


def test_xenstored_path_socket(proxy: FaultProxy) -> None:
    got = choose_endpoints({"XENSTORED_PATH": proxy.socket_path}, device_paths=("/nope",))
    assert got == [Endpoint(SOCKET, proxy.socket_path), Endpoint(DEVICE, proxy.socket_path)]


def test_xenstored_path_that_is_not_a_socket_is_the_device(plain_file: str) -> None:
    got = choose_endpoints({"XENSTORED_PATH": plain_file}, device_paths=("/nope",))
    assert got == [Endpoint(DEVICE, plain_file)]


def test_rundir_socket_then_first_existing_device(proxy: FaultProxy, rundir: str,
                                                  plain_file: str) -> None:
    env = {"XENSTORED_RUNDIR": rundir}
    got = choose_endpoints(env, device_paths=("/nonexistent/xenbus", plain_file))
    assert got == [Endpoint(SOCKET, os.path.join(rundir, "socket")), Endpoint(DEVICE, plain_file)]


def test_defaults() -> None:
    got = choose_endpoints({}, device_paths=("/nonexistent/a", "/nonexistent/b"))
    # /var/run/xenstored/socket (a socket if it is one, else tried as the device), then the
    # last device path (none exists).
    default = os.path.join(DEFAULT_RUNDIR, "socket")
    kind = SOCKET if os.path.exists(default) and stat.S_ISSOCK(os.stat(default).st_mode) \
        else DEVICE
    assert got == [Endpoint(kind, default), Endpoint(DEVICE, "/nonexistent/b")]


def test_fallback_to_the_device_when_the_socket_is_missing(rundir: str) -> None:
    device = os.path.join(rundir, "xenbus")
    os.mkfifo(device)  # any openable file stands in for /dev/xen/xenbus
    endpoints = choose_endpoints({"XENSTORED_RUNDIR": rundir}, device_paths=(device,))
    transport = open_endpoint(endpoints)
    try:
        assert isinstance(transport, DeviceTransport)
        assert transport.name == device
        assert transport.max_payload == 4080
    finally:
        transport.close()


def test_nothing_to_open_raises_the_last_error(rundir: str) -> None:
    with pytest.raises(FileNotFoundError):
        open_endpoint(choose_endpoints({"XENSTORED_RUNDIR": rundir},
                                       device_paths=(os.path.join(rundir, "none"),)))


def test_open_transport_by_path(proxy: FaultProxy, plain_file: str) -> None:
    sock = open_transport(proxy.socket_path)
    try:
        assert isinstance(sock, SocketTransport)
        assert sock.max_payload == 4096
    finally:
        sock.close()
    dev = open_transport(plain_file)
    assert isinstance(dev, DeviceTransport)
    dev.close()
    forced = open_transport(proxy.socket_path, kind=SOCKET)
    assert isinstance(forced, SocketTransport)
    forced.close()


def test_default_connection_follows_the_environment(proxy: FaultProxy,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENSTORED_PATH", proxy.socket_path)
    assert xsactor.read("/local/domain/0/name") == b"Domain-0"
    assert xsactor.default_client().kind == "socket"


def test_close_wakes_a_blocked_recv() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    transport = DeviceTransport(a.fileno(), "pair", owns_fd=False)
    reader = gevent.spawn(transport.recv)
    gevent.idle()
    transport.close()
    with pytest.raises(OSError) as info:
        reader.get(timeout=5)
    assert info.value.errno == errno.EBADF
    a.close()
    b.close()
