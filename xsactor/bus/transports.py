"""Byte transports to xenstored: the daemon's unix socket and a guest's xenbus device.

Both are cooperative under gevent without monkey-patching: the socket is a
:class:`gevent.socket.socket`, the device a non-blocking fd waited on with the hub's io
watchers. Each transport says how the bus must use it:

- ``batches``: several whole messages may go out in one write (the socket). The Linux device
  acts on the first whole message of a write and discards the rest, so it takes exactly one
  message per write.
- ``max_payload``: 4096 on the socket, 4080 on the device (header and payload share a page).

:func:`choose_endpoints` picks the endpoint as libxenstore's ``xs_open`` does.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import gevent
from gevent.hub import get_hub

from ..protocol import PAYLOAD_MAX, XENBUS_PAYLOAD_MAX
from ..protocol.errors import BY_NAME, XenStoreError

__all__ = [
    "DEFAULT_RUNDIR",
    "DEVICE_PATHS",
    "DeviceTransport",
    "Endpoint",
    "SocketTransport",
    "Transport",
    "choose_endpoints",
    "endpoint_for",
    "open_endpoint",
    "open_transport",
    "request_error",
]

DEFAULT_RUNDIR = "/var/run/xenstored"
DEVICE_PATHS: tuple[str, ...] = ("/dev/xen/xenbus", "/proc/xen/xenbus")
RECV_SIZE = 64 * 1024

SOCKET = "socket"
DEVICE = "device"


class Transport:
    """A connected, non-blocking fd to xenstored, waited on with the hub's io watchers.

    :meth:`recv` and :meth:`send` are cooperative (they wait for the fd);
    :meth:`try_send` never waits, so the bus may call it from a hub callback.
    """

    kind: ClassVar[str]
    batches: ClassVar[bool]
    max_payload: ClassVar[int]
    stream: ClassVar[bool] = False

    def __init__(self, fd: int, name: str) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.name = name
        loop = get_hub().loop
        self._read_watcher = loop.io(fd, 1)
        self._write_watcher = loop.io(fd, 2)
        self.closed = False
        self._drained = False

    def recv(self) -> bytes:
        """Wait for and return received bytes; ``b""`` at end of stream."""
        read, fd = os.read, self.fd
        while True:
            if self.closed:
                raise _Closed()
            if self._drained:
                get_hub().wait(self._read_watcher)
            try:
                data = read(fd, RECV_SIZE)
            except BlockingIOError:
                self._drained = True
                continue
            # A stream's read returns all that is buffered: after a short one the next read
            # would fail with EAGAIN, so wait for the fd first (a syscall less per wakeup).
            # Not so on the device, whose reads may stop at a message boundary.
            self._drained = self.stream and len(data) < RECV_SIZE
            return data

    def try_send(self, data: bytes | memoryview) -> int:
        """Write what the fd takes now (0 when it would block); raises OSError."""
        if self.closed:
            raise _Closed()
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    def send(self, data: bytes | memoryview) -> None:
        """Write all of ``data``, waiting for the fd as needed."""
        view = memoryview(data)
        while view:
            written = self.try_send(view)
            if written:
                view = view[written:]
            else:
                get_hub().wait(self._write_watcher)

    def _close_fd(self) -> None:
        os.close(self.fd)

    def close(self) -> None:
        """Close; a greenlet blocked in :meth:`recv` or :meth:`send` gets EBADF."""
        if self.closed:
            return
        self.closed = True
        # As gevent's sockets do: wake the waiters with EBADF, then close the fd.
        get_hub().cancel_waits_close_and_then(
            (self._read_watcher, self._write_watcher), _Closed, self._close_fd)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _Closed(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EBADF, "transport closed")


class SocketTransport(Transport):
    """xenstored's unix socket (every connection is dom0, or guest N on a guest socket)."""

    kind = SOCKET
    batches = True
    max_payload = PAYLOAD_MAX
    stream = True

    def __init__(self, sock: socket.socket, name: str = "socket") -> None:
        self.sock = sock
        super().__init__(sock.fileno(), name)

    @classmethod
    def connect(cls, path: str, timeout: float | None = 10.0) -> SocketTransport:
        """Connect, retrying (cooperatively) while the daemon's tiny backlog is full."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
            try:
                sock.connect(path)
                return cls(sock, path)
            except BlockingIOError:  # unix sockets: EAGAIN when the backlog is full
                sock.close()
            except BaseException:
                sock.close()
                raise
            if deadline is not None and time.monotonic() + delay > deadline:
                raise OSError(errno.EAGAIN, f"{path}: listen backlog stayed full")
            gevent.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _close_fd(self) -> None:
        self.sock.close()


class DeviceTransport(Transport):
    """The xenbus character device (``/dev/xen/xenbus``), or any fd that behaves like it.

    One whole message per write (``try_send`` writes all of it or nothing). ``owns_fd=False``
    leaves an fd handed in by the caller open on :meth:`close`.
    """

    kind = DEVICE
    batches = False
    max_payload = XENBUS_PAYLOAD_MAX

    def __init__(self, fd: int, name: str = "device", *, owns_fd: bool = True) -> None:
        self.owns_fd = owns_fd
        super().__init__(fd, name)

    @classmethod
    def open(cls, path: str) -> DeviceTransport:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
        return cls(fd, path)

    def try_send(self, data: bytes | memoryview) -> int:
        written = super().try_send(data)
        if written and written != len(data):
            # The device takes whole messages; a short write means framing is gone.
            raise OSError(errno.EIO, f"short write to {self.name}: {written}/{len(data)}")
        return written

    def _close_fd(self) -> None:
        if self.owns_fd:
            os.close(self.fd)


_REQUEST_ERRNOS = frozenset(
    {"EINVAL", "E2BIG", "ENOSPC", "EACCES", "EEXIST", "ENOENT", "EPERM", "ENOMEM", "EBUSY",
     "ENOSYS", "EAGAIN", "EISCONN"})


def request_error(exc: OSError) -> XenStoreError | None:
    """The typed error a failed device write() reports for that one request, if it is one.

    The kernel answers a WATCH the daemon refused, or a header with ``len > 4080``, by failing
    the write with the errno; no reply follows. Other errnos mean the transport is broken.
    """
    name = errno.errorcode.get(exc.errno or 0, "")
    if name in _REQUEST_ERRNOS:
        return BY_NAME[name](f"refused by the xenbus device ({os.strerror(exc.errno or 0)})")
    return None


# -- choosing an endpoint -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect and how: ``kind`` is ``"socket"`` or ``"device"``."""

    kind: str
    path: str

    def open(self, timeout: float | None = 10.0) -> Transport:
        if self.kind == SOCKET:
            return SocketTransport.connect(self.path, timeout)
        return DeviceTransport.open(self.path)


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def endpoint_for(path: str, kind: str | None = None) -> Endpoint:
    """``path`` as ``kind``; without one, a path that is a socket is connected and anything
    else is opened as the device."""
    if kind is None:
        kind = SOCKET if _is_socket(path) else DEVICE
    return Endpoint(kind, path)


def choose_endpoints(env: Mapping[str, str] | None = None,
                     device_paths: tuple[str, ...] = DEVICE_PATHS) -> list[Endpoint]:
    """The endpoints libxenstore's ``xs_open`` tries, in order.

    1. ``$XENSTORED_PATH``, else ``$XENSTORED_RUNDIR/socket`` (default
       ``/var/run/xenstored/socket``): a socket if it is one, else opened as the device;
    2. the device: ``$XENSTORED_PATH`` if set, else the first of ``device_paths`` that
       exists (else the last one).
    """
    env = os.environ if env is None else env
    explicit = env.get("XENSTORED_PATH")
    rundir = env.get("XENSTORED_RUNDIR") or DEFAULT_RUNDIR
    daemon = explicit or os.path.join(rundir, "socket")
    first = endpoint_for(daemon)
    device = explicit or next((p for p in device_paths if os.path.exists(p)), device_paths[-1])
    out = [first]
    if Endpoint(DEVICE, device) != first:
        out.append(Endpoint(DEVICE, device))
    return out


def open_endpoint(endpoints: list[Endpoint], timeout: float | None = 10.0) -> Transport:
    """Open the first endpoint that works.

    Otherwise raises the OSError of the first endpoint that exists but failed (a stale
    socket: connection refused), else the last one's, with the endpoint's path as filename.
    """
    failures: list[tuple[Endpoint, OSError]] = []
    for endpoint in endpoints:
        try:
            return endpoint.open(timeout)
        except OSError as exc:
            failures.append((endpoint, exc))
    assert failures
    endpoint, failure = next(((e, f) for e, f in failures if f.errno != errno.ENOENT),
                             failures[-1])
    if failure.filename is None and failure.errno is not None:
        raise OSError(failure.errno, failure.strerror, endpoint.path) from failure
    raise failure


Connector = Callable[[], Transport]


def open_transport(path: str | None = None, *, kind: str | None = None,
                   env: Mapping[str, str] | None = None,
                   timeout: float | None = 10.0) -> Transport:
    """Open a transport: ``path`` (a socket is connected, else opened as the device, unless
    ``kind`` says), or with no path the libxenstore choice (:func:`choose_endpoints`)."""
    if path is None:
        return open_endpoint(choose_endpoints(env), timeout)
    return endpoint_for(path, kind).open(timeout)
