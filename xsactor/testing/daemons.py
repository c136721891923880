"""Daemons under test: one driver interface over the embedded xenstored and the C reference.

A :class:`DaemonUnderTest` serves a dom0 socket, builds guest domains as xl does (each guest
then has a unix socket of its own that speaks for that domain), and can simulate what the
hypervisor would do to a domain (shutdown, crash, death). Conformance tests run the same
cases through this interface against both daemons.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..daemon.domains import HYPERVISOR_STATES as DOMAIN_STATES
from ..daemon.toolstack import GuestSpec
from ..protocol import Op
from .toolstack import create_guest
from .util import accepts_connections, scratch_dir, wait_for
from .wire import WireClient

if TYPE_CHECKING:  # the reference harness is imported only when a test asks for it
    from .reference import ReferenceInstall

REQUIRE_REFERENCE_ENV = "XSACTOR_REQUIRE_REFERENCE"
START_TIMEOUT = 30.0


class DaemonError(RuntimeError):
    """The daemon under test did not start, died, or refused a harness request."""


def _guest_spec(domid: int | GuestSpec) -> GuestSpec:
    return domid if isinstance(domid, GuestSpec) else GuestSpec(domid)


def _domid(domid: int | GuestSpec) -> int:
    return domid.domid if isinstance(domid, GuestSpec) else domid


def _check_state(state: str) -> None:
    if state not in DOMAIN_STATES:
        raise ValueError(f"domain state must be one of {DOMAIN_STATES}, not {state!r}")


class DaemonUnderTest(abc.ABC):
    """What a test needs from a xenstored: connections as dom0 or as a guest, domain control."""

    name: str
    socket_path: str

    def __init__(self) -> None:
        self.guest_sockets: dict[int, str] = {}

    @abc.abstractmethod
    def start(self) -> DaemonUnderTest:
        """Start the daemon (nothing to do when it runs); return it."""

    def dom0(self, timeout: float = 10.0) -> WireClient:
        """A new privileged connection on the daemon's socket."""
        return WireClient(self.socket_path, timeout)

    @abc.abstractmethod
    def add_guest(self, domid: int | GuestSpec) -> str:
        """Build the guest as xl does, INTRODUCE it; return the socket that speaks for it."""

    def guest(self, domid: int | GuestSpec, timeout: float = 10.0) -> WireClient:
        """A connection as that (already added) guest domain."""
        number = _domid(domid)
        try:
            path = self.guest_sockets[number]
        except KeyError:
            raise DaemonError(f"domain {number} was not added with add_guest") from None
        return WireClient(path, timeout)

    @abc.abstractmethod
    def set_domain_state(self, domid: int, state: str) -> None:
        """Simulate the hypervisor: running, shutdown, crashed, dying or gone."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the daemon process is still running."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the daemon (idempotent)."""

    def __enter__(self) -> DaemonUnderTest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.socket_path}>"


def _source_root() -> str:
    """The directory holding the ``xsactor`` package (so a subprocess imports this copy)."""
    return str(Path(__file__).resolve().parents[2])


class EmbeddedDaemonProcess(DaemonUnderTest):
    """``python -m xsactor serve`` in a subprocess, with its guest sockets under ``rundir``.

    ``guests`` are built and introduced by the daemon at startup (``--guest N``); ``guest(N)``
    connects to them as to those added with ``add_guest``. The daemon's stderr goes to
    ``log_path``, its stdout to ``stdout_path``; ``returncode`` is its exit status once stopped.
    """

    name = "embedded"

    def __init__(self, rundir: str | os.PathLike[str], *, extra_args: tuple[str, ...] = (),
                 guests: Iterable[int] = (), start_timeout: float = START_TIMEOUT) -> None:
        super().__init__()
        self.rundir = Path(rundir)
        self.socket_path = str(self.rundir / "socket")
        self.guest_dir = self.rundir / "guests"
        self.log_path = self.rundir / "daemon.log"
        self.stdout_path = self.rundir / "daemon.stdout"
        self.extra_args = tuple(extra_args)
        self.startup_guests = tuple(guests)
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._toolstack: WireClient | None = None

    def start(self) -> EmbeddedDaemonProcess:
        if self.process is not None:
            return self
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.guest_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_source_root(), env.get("PYTHONPATH", "")) if p)
        argv = [sys.executable, "-m", "xsactor", "serve", "--socket", self.socket_path,
                "--guest-dir", str(self.guest_dir), *self.extra_args]
        for domid in self.startup_guests:
            argv += ["--guest", str(domid)]
        with open(self.log_path, "ab") as log, open(self.stdout_path, "ab") as out:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=log, env=env, start_new_session=True)
        self.returncode = None
        try:
            # Connectable, not just present: a stale socket file may be there before.
            self._wait_for(lambda: accepts_connections(self.socket_path),
                           f"{self.socket_path} to listen")
            for domid in self.startup_guests:
                self._wait_for_guest(domid)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> EmbeddedDaemonProcess:
        return self.start()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _check_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise DaemonError(f"embedded xenstored exited ({code}):\n{self.log_tail()}")

    def _dom0(self) -> WireClient:
        if self._toolstack is None:
            self._toolstack = self.dom0()
        return self._toolstack

    def _wait_for(self, condition: Callable[[], object], what: str) -> None:
        wait_for(condition, self.start_timeout, what, self._check_running, DaemonError)

    def _wait_for_guest(self, domid: int) -> str:
        """Wait for the daemon to serve domain ``domid``'s socket; register it."""
        path = str(self.guest_dir / str(domid))
        self._wait_for(lambda: os.path.exists(path), f"guest socket {path}")
        self.guest_sockets[domid] = path
        return path

    def add_guest(self, domid: int | GuestSpec) -> str:
        spec = _guest_spec(domid)
        # The hypervisor made a new domain (a domid once gone exists again), as the
        # reference harness's stub does.
        reply = self._dom0().request(Op.CONTROL, "hypervisor", spec.domid, "new")
        if reply.is_error:
            raise DaemonError(f"CONTROL hypervisor {spec.domid} new: {reply.payload!r}")
        create_guest(self._dom0(), spec)
        return self._wait_for_guest(spec.domid)

    def set_domain_state(self, domid: int, state: str) -> None:
        _check_state(state)
        reply = self._dom0().request(Op.CONTROL, "hypervisor", domid, state)
        if reply.is_error:
            raise DaemonError(f"CONTROL hypervisor {domid} {state}: {reply.payload!r}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self._toolstack is not None:
            self._toolstack.close()
            self._toolstack = None
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.returncode = process.returncode


class ReferenceDaemonDriver(DaemonUnderTest):
    """The real C xenstored 4.17, through :mod:`xsactor.testing.reference`."""

    name = "reference"

    def __init__(self, install: ReferenceInstall, rundir: str | os.PathLike[str]) -> None:
        super().__init__()
        from .reference import ReferenceDaemon

        self.install = install
        self.rundir = Path(rundir)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.daemon = ReferenceDaemon(install, self.rundir)
        self.socket_path = ""
        self._started = False

    def start(self) -> ReferenceDaemonDriver:
        if not self._started:
            self.daemon.start()
            self._started = True
            self.socket_path = str(self.daemon.socket_path)
        return self

    def __enter__(self) -> ReferenceDaemonDriver:
        return self.start()

    def add_guest(self, domid: int | GuestSpec) -> str:
        spec = _guest_spec(domid)
        path = str(self.daemon.add_guest(spec))
        self.guest_sockets[spec.domid] = path
        return path

    def set_domain_state(self, domid: int, state: str) -> None:
        _check_state(state)
        self.daemon.set_domain_state(domid, state)

    def alive(self) -> bool:
        return self._started and bool(self.daemon.alive())

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.daemon.stop()


_reference_install: ReferenceInstall | None = None
_reference_reason: str | None = None


def reference_install() -> tuple[ReferenceInstall | None, str | None]:
    """(install, None) when the reference C daemon can be used, else (None, why not).

    Computed once per process: fetching and unpacking the packages is slow.
    """
    global _reference_install, _reference_reason
    if _reference_install is None and _reference_reason is None:
        from .reference import ReferenceUnavailable, ensure_install

        try:
            _reference_install = ensure_install()
        except ReferenceUnavailable as exc:
            _reference_reason = f"reference xenstored unavailable: {exc}"
    return _reference_install, _reference_reason


def require_reference() -> ReferenceInstall:
    """The reference install; otherwise skip the test, or fail it when
    ``XSACTOR_REQUIRE_REFERENCE=1`` (CI that must run the reference cases)."""
    import pytest

    install, reason = reference_install()
    if install is not None:
        return install
    if os.environ.get(REQUIRE_REFERENCE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_REFERENCE_ENV}=1)", pytrace=False)
    pytest.skip(reason or "reference xenstored unavailable")


def start_daemon(kind: str, rundir: str | os.PathLike[str], *,
                 install: ReferenceInstall | None = None, **options: Any) -> DaemonUnderTest:
    """Start a daemon of ``kind`` ("embedded" or "reference") in ``rundir``.

    ``options`` go to the driver (e.g. ``extra_args``, ``guests`` for the embedded one); the
    reference one uses ``install``, by default :func:`require_reference`'s.
    """
    if kind == "embedded":
        return EmbeddedDaemonProcess(rundir, **options).start()
    if kind == "reference":
        return ReferenceDaemonDriver(require_reference() if install is None else install, rundir,
                                     **options).start()
    raise ValueError(f"unknown daemon kind {kind!r}")


@contextlib.contextmanager
def running(kind: str, *, prefix: str = "xs-", install: ReferenceInstall | None = None,
            **options: Any) -> Iterator[DaemonUnderTest]:
    """A started daemon of ``kind`` (see :func:`start_daemon`) in a short temporary directory
    of its own; on exit the daemon is stopped and the directory removed."""
    with scratch_dir(prefix) as rundir, start_daemon(kind, rundir, install=install,
                                                     **options) as daemon:
        yield daemon
