"""Byte transports to xenstored: the daemon's unix socket and a guest's xenbus device.

Both are cooperative under gevent without monkey-patching: reads wait with the hub's io
watchers. The socket is written without blocking from the hub. The device (Linux's
``xenbus_dev_frontend.c``) is another kind of file: its ``write()`` blocks whatever
``O_NONBLOCK`` says (``msgbuffer_mutex``, a WATCH/UNWATCH round trip, a suspend in progress),
its poll never reports writable, and a refused request fails the ``write()`` with an errno.
So a :class:`DeviceTransport` writes in a thread of its own, one message per ``write()`` (the
device acts on the first whole message of a write and discards the rest), while the socket
takes the bus's whole queue in one write. Each transport also says:

- ``max_payload``: 4096 on the socket, 4080 on the device (header and payload share a page).
- ``max_event``: the longest message it may deliver: 4096 on the socket; on the device a
  watch event is the path plus the caller's token (``watch_fired``), up to 4096 + 4080.
- ``request_timeout``: the device's replies can be lost (the kernel drops one when out of
  memory, or for a second TRANSACTION_END), so no request on it waits forever.

:func:`choose_endpoints` picks the endpoint as libxenstore's ``xs_open`` does.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import stat
import time
from _queue import SimpleQueue  # the C queue: a real blocking get even if monkey-patched
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import gevent
from gevent.hub import get_hub
from gevent.monkey import get_original

from ..protocol import PAYLOAD_MAX, XENBUS_PAYLOAD_MAX
from ..protocol.errors import BY_NAME, XenStoreError

__all__ = [
    "DEFAULT_RUNDIR",
    "DEVICE_PATHS",
    "DEVICE_REQUEST_TIMEOUT",
    "DeviceFile",
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
DEVICE_REQUEST_TIMEOUT = 30.0
"""The device's request timeout when none is configured (a lost reply never ends)."""
DEVICE_EVENT_MAX = PAYLOAD_MAX + XENBUS_PAYLOAD_MAX

SOCKET = "socket"
DEVICE = "device"


class Transport:
    """A connected, non-blocking fd to xenstored, waited on with the hub's io watchers.

    :meth:`recv` and :meth:`send` are cooperative (they wait for the fd);
    :meth:`try_send` never waits, so the bus may call it from a hub callback.
    """

    kind: ClassVar[str]
    max_payload: ClassVar[int]
    max_event: ClassVar[int] = PAYLOAD_MAX
    stream: ClassVar[bool] = False
    request_timeout: float | None = None

    def __init__(self, fd: int, name: str) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.name = name
        self._read: Callable[[int], bytes] = functools.partial(os.read, fd)
        loop = get_hub().loop
        self._read_watcher = loop.io(fd, 1)
        self._write_watcher = loop.io(fd, 2)
        self.closed = False
        self._drained = False

    def recv(self) -> bytes:
        """Wait for and return received bytes; ``b""`` at end of stream."""
        read = self._read
        while True:
            if self.closed:
                raise _Closed()
            if self._drained:
                get_hub().wait(self._read_watcher)
            try:
                data = read(RECV_SIZE)
            except BlockingIOError:
                self._drained = True
                continue
            # A stream's read returns all that is buffered: after a short one the next read
            # would fail with EAGAIN, so wait for the fd first (a syscall less per wakeup).
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


class DeviceFile(Protocol):
    """What :class:`DeviceTransport` needs of the device: ``read`` as ``xenbus_file_read`` on an
    O_NONBLOCK file (BlockingIOError when empty), ``write`` as ``xenbus_file_write`` (may
    block; OSError with the errno of a refused request), ``fileno`` to wait for readability
    (``xenbus_file_poll``), ``close``. :class:`xsactor.testing.xenbus_device.XenbusFile` is one.
    """

    def fileno(self) -> int: ...
    def read(self, size: int, /) -> bytes: ...
    def write(self, data: bytes, /) -> int: ...
    def close(self) -> None: ...


class _FdFile:
    """The kernel's device on an fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.read = functools.partial(os.read, fd)
        self.write = functools.partial(os.write, fd)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        os.close(self.fd)


_start_thread = get_original("_thread", "start_new_thread")


class DeviceTransport(Transport):
    """The xenbus character device (``/dev/xen/xenbus``): an fd, or a :class:`DeviceFile`.

    Reads are cooperative. Writes go through :meth:`put`, which never blocks: a thread of the
    transport does each ``write()``, one whole message each, in order, and reports failures
    to the hub (see :meth:`start_writer`). ``owns_fd=False`` leaves the fd or file handed in
    open on :meth:`close`. ``request_timeout`` bounds every request of the bus on it.
    """

    kind = DEVICE
    max_payload = XENBUS_PAYLOAD_MAX
    max_event = DEVICE_EVENT_MAX
    stream = True  # xenbus_file_read fills the buffer across queued replies

    def __init__(self, file: int | DeviceFile, name: str = "device", *, owns_fd: bool = True,
                 request_timeout: float = DEVICE_REQUEST_TIMEOUT) -> None:
        self.file: DeviceFile = _FdFile(file) if isinstance(file, int) else file
        self.owns_fd = owns_fd
        self.request_timeout = request_timeout
        super().__init__(self.file.fileno(), name)
        self._read = self.file.read
        self._queue: SimpleQueue[bytes | None] = SimpleQueue()
        self._failures: deque[tuple[bytes, OSError]] = deque()
        self._on_error: Callable[[bytes, OSError], None] | None = None
        self._reporter: Any = None
        self._writer_started = False

    @classmethod
    def open(cls, path: str, **options: Any) -> DeviceTransport:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
        return cls(fd, path, **options)

    def start_writer(self, on_error: Callable[[bytes, OSError], None]) -> None:
        """Start the writer thread; ``on_error(message, exc)`` runs in the hub for each
        failed ``write()``."""
        self._on_error = on_error
        if self._reporter is None:
            self._reporter = get_hub().loop.async_()
            self._reporter.ref = False
            self._reporter.start(self._report)
        if not self._writer_started:
            self._writer_started = True
            _start_thread(self._write_thread, ())

    def put(self, message: bytes) -> None:
        """Queue one whole message for the writer thread (never blocks)."""
        if self.closed:
            raise _Closed()
        self._queue.put(message)

    def _write_thread(self) -> None:
        get, write = self._queue.get, self.file.write
        while True:
            message = get()
            if message is None:  # closed: the fd is closed here, after the last write()
                if self.owns_fd:
                    self.file.close()
                return
            if self.closed:
                continue
            try:
                written = write(message)
                if written != len(message):
                    raise OSError(errno.EIO, f"short write to {self.name}: "
                                             f"{written}/{len(message)}")
            except OSError as exc:
                if self.closed:
                    continue
                self._failures.append((message, exc))
                self._reporter.send()

    def _report(self) -> None:
        failures, on_error = self._failures, self._on_error
        while failures:
            message, exc = failures.popleft()
            if on_error is not None and not self.closed:
                on_error(message, exc)

    def send(self, data: bytes | memoryview) -> None:
        """Queue one whole message (as :meth:`put`)."""
        self.put(bytes(data))

    def try_send(self, data: bytes | memoryview) -> int:
        self.put(bytes(data))
        return len(data)

    def close(self) -> None:
        if not self.closed and self._reporter is not None:
            self._reporter.stop()
        super().close()

    def _close_fd(self) -> None:
        if self._writer_started:
            # The writer thread closes it once its write() in progress, if any, returns: the
            # fd number must not be reused under that write().
            self._queue.put(None)
        elif self.owns_fd:
            self.file.close()


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
