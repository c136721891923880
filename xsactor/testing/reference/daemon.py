"""Run Xen 4.17's C xenstored as a user process, with guest domains, without a hypervisor.

The daemon runs with ``-N`` and the stub (``stub.c``) preloaded; its files (event FIFO,
guest rings, domain-state table) live in ``<rundir>/stub``. After start the harness applies
dom0's boot entries over a dom0 connection, so the tree matches the embedded daemon's.

Guests: :meth:`ReferenceDaemon.add_guest` builds xl's layout and INTRODUCEs the domain (the
stub maps ``stub/ring-<domid>`` as its ring), then the bridge process (``bridge.py``) serves
that ring as a unix socket, one client at a time.

Domain states: :meth:`ReferenceDaemon.set_domain_state` writes ``stub/state-<domid>`` (what
``xc_domain_getinfo`` answers) and fires the domain-exception VIRQ by writing its port into
the event FIFO; the stub acknowledges on ``stub/virq-ack`` once the daemon has checked every
domain, and only then does the call return.

Not thread-safe: drive one instance from one thread (or greenlet) at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from ...daemon.domains import HYPERVISOR_STATES as DOMAIN_STATES
from ...daemon.toolstack import GuestSpec
from ...logs import get_logger
from ...protocol import ConnectionLost, Op
from ...protocol.ops import DOMID_FIRST_RESERVED
from ..toolstack import boot_dom0, create_guest
from ..util import accepts_connections, short_tempdir, wait_for
from ..wire import WireClient
from .bridge import ERROR_OFFSET, PAGE_SIZE, U32
from .fetch import ReferenceInstall

log = get_logger(__name__)

VIRQ_PORT = 1
PORT_BASE = 0x10000
"""The stub binds domain D's event channel as local port PORT_BASE + D."""
SUN_PATH_MAX = 107
_REPO_ROOT = Path(__file__).resolve().parents[3]
_BRIDGE_MAIN = "import sys; from xsactor.testing.reference.bridge import main; sys.exit(main())"


class ReferenceDaemonError(RuntimeError):
    """The reference daemon (or its bridge) failed; the message ends with its log's tail."""


class ReferenceDaemon:
    """One C xenstored, its stub files, and the bridge serving its guests' rings."""

    def __init__(self, install: ReferenceInstall, rundir: str | os.PathLike[str], *,
                 trace: bool = False, extra_args: tuple[str, ...] = (),
                 start_timeout: float = 15.0, timeout: float = 10.0) -> None:
        self.install = install
        self.rundir = Path(rundir)
        self.stub_dir = self.rundir / "stub"
        self.log_path = self.rundir / "xenstored.log"
        self.bridge_log_path = self.rundir / "bridge.log"
        self.trace_path = self.rundir / "trace.log" if trace else None
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self.timeout = timeout
        self._sock_dir = self.rundir
        self._tmp_sock_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._bridge: subprocess.Popen[bytes] | None = None
        self._bridge_buf = bytearray()
        self._dom0: WireClient | None = None
        self._events_fd = -1
        self._ack_fd = -1
        self._guests: dict[int, str] = {}
        self._finalizer: weakref.finalize | None = None
        self.log = log.bind(rundir=str(self.rundir))

    # -- paths ----------------------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        """The daemon's unix socket (every connection on it is privileged dom0)."""
        return str(self._sock_dir / "socket")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def bridge_pid(self) -> int | None:
        return self._bridge.pid if self._bridge is not None else None

    def ring_path(self, domid: int) -> Path:
        return self.stub_dir / f"ring-{domid}"

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the daemon, wait until it answers, boot dom0's tree, start the bridge."""
        if self._proc is not None:
            raise RuntimeError("the reference daemon is already started")
        try:
            self._prepare_dirs()
            self._start_daemon()
            self._wait_for_socket()
            self._dom0 = WireClient(self.socket_path, timeout=self.timeout)
            boot_dom0(self._dom0)
            self._start_bridge()
        except BaseException:
            self.stop()
            raise
        self.log.info("reference.started", pid=self.pid, socket=self.socket_path)

    def stop(self) -> None:
        """Stop the bridge and the daemon; no process is left behind."""
        if self._dom0 is not None:
            self._dom0.close()
            self._dom0 = None
        _stop_processes(self._bridge, self._proc)
        self._bridge = None
        self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        for fd in (self._events_fd, self._ack_fd):
            if fd >= 0:
                os.close(fd)
        self._events_fd = self._ack_fd = -1
        self._guests.clear()
        if self._tmp_sock_dir is not None:
            shutil.rmtree(self._tmp_sock_dir, ignore_errors=True)
            self._tmp_sock_dir = None
            self._sock_dir = self.rundir

    def alive(self) -> bool:
        """True while the daemon process runs."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the daemon to exit; its exit status, or None on timeout."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> ReferenceDaemon:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- connections ----------------------------------------------------------------------
    def connect(self, timeout: float | None = None) -> WireClient:
        """A new dom0 connection (the caller closes it)."""
        self._require_running()
        return WireClient(self.socket_path, timeout=self.timeout if timeout is None else timeout)

    # -- guests ---------------------------------------------------------------------------
    def add_guest(self, spec: GuestSpec) -> str:
        """Create the guest as xl does, INTRODUCE it, and serve its ring; the socket path."""
        self._require_running()
        domid = spec.domid
        if self._is_introduced(domid):
            raise ValueError(f"domain {domid} is already introduced")
        self._unbridge(domid)  # a previous domain with this domid (released, or gone)
        (self.stub_dir / f"state-{domid}").unlink(missing_ok=True)
        _fresh_file(self.ring_path(domid), bytes(PAGE_SIZE))
        _fresh_fifo(self.stub_dir / f"notify-{domid}")
        dom0 = self._dom0
        assert dom0 is not None
        try:
            create_guest(dom0, spec)  # the INTRODUCE reply means the ring indices are zeroed
        except (OSError, ConnectionLost) as exc:
            raise self._failure(f"creating guest {domid} failed: {exc}") from exc
        return self._bridge_guest(domid)

    def attach_guest(self, domid: int) -> str:
        """Serve the ring of a domain the caller INTRODUCEd itself; the socket path."""
        self._require_running()
        if domid in self._guests:
            return self._guests[domid]
        if not self._is_introduced(domid):
            raise ValueError(f"domain {domid} is not introduced")
        return self._bridge_guest(domid)

    def guest_status(self, domid: int) -> dict[str, Any]:
        """The bridge's view of a guest: connected, cleaning, broken, ring_error, ..."""
        return self._bridge_call({"op": "status", "domid": domid})

    def ring_error(self, domid: int) -> int:
        """The ``error`` field of the guest's ring page (3: protocol violation)."""
        with open(self.ring_path(domid), "rb") as fh:
            fh.seek(ERROR_OFFSET)
            return U32.unpack(fh.read(4))[0]

    def set_domain_state(self, domid: int, state: str) -> None:
        """Tell the daemon the hypervisor now sees ``domid`` as ``state``.

        Returns once the daemon has handled the domain-exception VIRQ: any
        ``@releaseDomain`` event is queued for its watchers (they receive it with their next
        read), and for ``dying``/``gone`` the domain's connection is gone and the nodes it
        owned are deleted. ``running`` changes nothing visible (RESUME re-arms shutdown).
        """
        if state not in DOMAIN_STATES:
            raise ValueError(f"state must be one of {', '.join(DOMAIN_STATES)}, not {state!r}")
        if not 0 < domid < DOMID_FIRST_RESERVED:
            raise ValueError(f"not a guest domid: {domid}")
        self._require_running()
        _fresh_file(self.stub_dir / f"state-{domid}", state.encode() + b"\n")
        _drain(self._ack_fd)
        os.write(self._events_fd, U32.pack(VIRQ_PORT))
        self._wait_readable(self._ack_fd, f"the daemon's check of domain {domid}")
        _drain(self._ack_fd)
        self.log.info("reference.domain_state", domid=domid, state=state)
        if state in ("dying", "gone"):
            self._unbridge(domid)

    # -- internals ------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        if len(str(self.rundir)) + len("/guest-32751") > SUN_PATH_MAX:
            # AF_UNIX paths are short: put the sockets in a short folder of their own.
            self._tmp_sock_dir = Path(short_tempdir("xsref-"))
            self._sock_dir = self._tmp_sock_dir
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        shutil.rmtree(self.stub_dir, ignore_errors=True)
        self.stub_dir.mkdir()
        for name in ("events", "virq-ack"):
            os.mkfifo(self.stub_dir / name, 0o600)
        # Read-write: opening never blocks and writing never fails for want of a reader.
        flags = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC
        self._events_fd = os.open(self.stub_dir / "events", flags)
        self._ack_fd = os.open(self.stub_dir / "virq-ack", flags)

    def _start_daemon(self) -> None:
        install = self.install
        env = dict(os.environ)
        env.update({
            "LD_PRELOAD": str(install.stub),
            "LD_LIBRARY_PATH": install.ld_library_path,
            "XENSTORED_RUNDIR": str(self._sock_dir),
            "XSACTOR_STUB_DIR": str(self.stub_dir),
        })
        argv = [str(install.xenstored), "-N", "-F", str(self.rundir / "xenstored.pid")]
        if self.trace_path is not None:
            argv += ["-T", str(self.trace_path)]
        argv += self.extra_args
        with open(self.log_path, "wb") as out:
            self._proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, cwd=self.rundir)
        self._finalizer = weakref.finalize(self, _stop_processes, None, self._proc)

    def _wait_for_socket(self) -> None:
        """Until a connect succeeds, or the process dies."""
        proc = self._proc
        assert proc is not None

        def check_alive() -> None:
            if proc.poll() is not None:
                raise self._failure(f"xenstored exited with status {proc.returncode} at start")

        try:
            wait_for(lambda: accepts_connections(self.socket_path), self.start_timeout,
                     check=check_alive)
        except TimeoutError:
            raise self._failure(f"xenstored did not listen on {self.socket_path} "
                                f"within {self.start_timeout}s") from None

    def _start_bridge(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        argv = [sys.executable, "-c", _BRIDGE_MAIN, "--events", str(self.stub_dir / "events")]
        with open(self.bridge_log_path, "wb") as err:
            self._bridge = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=err,
                                            cwd=self.rundir)
        self._finalizer = weakref.finalize(self, _stop_processes, self._bridge, self._proc)
        self._bridge_call({"op": "ping"}, timeout=self.start_timeout)

    def _bridge_guest(self, domid: int) -> str:
        path = str(self._sock_dir / f"guest-{domid}")
        self._bridge_call({"op": "add", "domid": domid, "port": PORT_BASE + domid,
                           "ring": str(self.ring_path(domid)),
                           "notify": str(self.stub_dir / f"notify-{domid}"), "socket": path})
        self._guests[domid] = path
        self.log.info("reference.guest_bridged", domid=domid, socket=path)
        return path

    def _unbridge(self, domid: int) -> None:
        if self._guests.pop(domid, None) is not None:
            self._bridge_call({"op": "remove", "domid": domid})

    def _bridge_call(self, cmd: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        bridge = self._bridge
        if bridge is None or bridge.stdin is None or bridge.stdout is None:
            raise ReferenceDaemonError("the guest bridge is not running")
        try:
            bridge.stdin.write(json.dumps(cmd).encode() + b"\n")
            bridge.stdin.flush()
        except OSError as exc:
            raise self._bridge_failure(f"bridge unreachable: {exc}") from exc
        fd = bridge.stdout.fileno()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._bridge_buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._bridge_failure(f"no answer from the bridge to {cmd['op']}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                data = os.read(fd, 65536)
                if not data:
                    raise self._bridge_failure("the bridge exited")
                self._bridge_buf += data
        line, _, rest = bytes(self._bridge_buf).partition(b"\n")
        self._bridge_buf = bytearray(rest)
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise ReferenceDaemonError(f"bridge {cmd['op']} failed: {reply.get('error')}")
        return reply

    def _wait_readable(self, fd: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure(f"timed out waiting for {what}")
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.25))
            if readable:
                return
            if not self.alive():
                raise self._failure(f"xenstored died while waiting for {what}")

    def _is_introduced(self, domid: int) -> bool:
        dom0 = self._dom0
        assert dom0 is not None
        try:
            return dom0.call(Op.IS_DOMAIN_INTRODUCED, domid) == b"T\0"
        except (OSError, ConnectionLost) as exc:
            raise self._failure(f"dom0 connection failed: {exc}") from exc

    def _require_running(self) -> None:
        if self._proc is None:
            raise RuntimeError("the reference daemon is not started")
        if not self.alive():
            raise self._failure(f"xenstored has exited with status {self._proc.returncode}")

    def _failure(self, message: str) -> ReferenceDaemonError:
        return ReferenceDaemonError(f"{message}\n--- {self.log_path} (tail) ---\n"
                                    f"{_tail(self.log_path)}")

    def _bridge_failure(self, message: str) -> ReferenceDaemonError:
        return ReferenceDaemonError(f"{message}\n--- {self.bridge_log_path} (tail) ---\n"
                                    f"{_tail(self.bridge_log_path)}")


def _stop_processes(bridge: subprocess.Popen[bytes] | None,
                    daemon: subprocess.Popen[bytes] | None) -> None:
    """End the bridge (EOF on its stdin), then the daemon (SIGTERM, then SIGKILL)."""
    if bridge is not None:
        if bridge.stdin is not None:
            with contextlib.suppress(OSError):
                bridge.stdin.close()
        _reap(bridge, signal.SIGTERM)
        if bridge.stdout is not None:
            bridge.stdout.close()
    if daemon is not None:
        if daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                daemon.send_signal(signal.SIGTERM)
        _reap(daemon, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes], then: signal.Signals) -> None:
    try:
        proc.wait(5.0)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(then)
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _fresh_file(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically (a new inode: old mappings keep the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def _fresh_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path, 0o600)


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"
