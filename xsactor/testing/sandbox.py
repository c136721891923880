"""A xenstored for one test, as an agent author uses it: :class:`Sandbox`.

The pytest plugin hands one out as the ``xs`` fixture; it works without pytest too::

    with Sandbox("inprocess") as xs:
        guest = xs.guest(5)                 # domain 5 is created as xl would, then connected
        guest.write("data/ready", "1")
        assert xs.dom0().read("/local/domain/5/data/ready") == b"1"
        xs.destroy(5)

Daemon kinds: ``"inprocess"`` (the embedded daemon on this process's gevent hub: the fastest),
``"embedded"`` (the embedded daemon in a subprocess) and ``"reference"`` (Xen 4.17's C
xenstored, see :mod:`xsactor.testing.reference`).

Agents run under the sandbox with :meth:`Sandbox.start`; when the sandbox closes (or
:meth:`Sandbox.stop_agents` is called) they are stopped, and it checks that they left no
greenlet and no watch behind (:class:`LeakError`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from greenlet import greenlet as raw_greenlet

from ..bus.client import Client
from ..bus.connection import Connection
from ..bus.default import set_default
from ..daemon.toolstack import GuestSpec, replaced_paths
from ..protocol.errors import ENOENT
from .util import scratch_dir, wait_for

__all__ = ["DAEMON_KINDS", "Agent", "LeakError", "Sandbox"]

DAEMON_KINDS = ("inprocess", "embedded", "reference")
STOP_TIMEOUT = 10.0
SETTLE_TIMEOUT = 1.0
"""How long stopped agents' greenlets and connections get to wind down before it is a leak."""


class LeakError(AssertionError):
    """Agents stopped by the sandbox left greenlets or watches behind."""


class _InProcess:
    """The embedded daemon on this process's hub, behind the test drivers' interface."""

    name = "inprocess"

    def __init__(self, rundir: str) -> None:
        from ..daemon.config import DaemonConfig
        from ..daemon.server import Daemon

        self.daemon = Daemon(DaemonConfig(socket_path=os.path.join(rundir, "socket"),
                                          guest_dir=os.path.join(rundir, "guests")))
        self.socket_path = self.daemon.socket_path
        self.guest_sockets: dict[int, str] = {}

    def start(self) -> _InProcess:
        self.daemon.start()
        return self

    def add_guest(self, domid: int | GuestSpec) -> str:
        spec = domid if isinstance(domid, GuestSpec) else GuestSpec(domid)
        path = self.daemon.add_guest(spec)
        self.guest_sockets[spec.domid] = path
        return path

    def set_domain_state(self, domid: int, state: str) -> None:
        self.daemon.set_domain_state(domid, state)

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        self.daemon.stop()


class Agent:
    """Something started under the sandbox: a greenlet, stopped by killing it, or what
    ``stop`` says."""

    def __init__(self, handle: Any, stop: Callable[[], object]) -> None:
        self.handle = handle
        self._stop = stop
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._stop()


def _live_greenlets() -> weakref.WeakSet[Any]:
    """Every greenlet alive now (weakly: an id could be reused by a later one)."""
    return weakref.WeakSet(g for g in gc.get_objects()
                           if isinstance(g, raw_greenlet) and not g.dead
                           and g.parent is not None)


def _watching_connections(exclude: set[int]) -> list[Connection]:
    return [c for c in gc.get_objects() if isinstance(c, Connection) and id(c) not in exclude
            and not c.closed and c.watches()]


class Sandbox:
    """A daemon of ``kind`` for one test, its clients, the toolstack and the agents under it.

    - :meth:`dom0` / :meth:`guest`: high-level :class:`~xsactor.Client` s (one each, cached,
      closed with the sandbox); :meth:`client` opens more;
    - :meth:`create_domain`, :meth:`shutdown`, :meth:`crash`, :meth:`destroy`: the domain's
      life as the toolstack and the hypervisor drive it;
    - :meth:`use_default`: ``xsactor.read(...)`` and friends talk to this daemon until the
      sandbox closes (then the default connection is closed and ``$XENSTORED_PATH`` restored);
    - :meth:`start`: run an agent under the test, stopped and checked for leaks at the end.
    """

    def __init__(self, kind: str = "inprocess", *, prefix: str = "xsb-") -> None:
        if kind not in DAEMON_KINDS:
            raise ValueError(f"daemon kind is one of {DAEMON_KINDS}, not {kind!r}")
        self.kind = kind
        self._stack = contextlib.ExitStack()
        self._clients: list[Client] = []
        self._dom0: Client | None = None
        self._guests: dict[int, Client] = {}
        self._agents: list[Agent] = []
        self._baseline: weakref.WeakSet[Any] | None = None
        self._environ: tuple[bool, str | None] | None = None
        rundir = self._stack.enter_context(scratch_dir(prefix))
        if kind == "inprocess":
            self.daemon: Any = _InProcess(rundir).start()
            self._stack.callback(self.daemon.stop)
        else:
            from .daemons import start_daemon

            self.daemon = self._stack.enter_context(start_daemon(kind, rundir))

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the agents (checking for leaks), close the clients and the daemon."""
        try:
            self.stop_agents()
        finally:
            self._reset_default()
            for client in self._clients:
                client.close()
            self._stack.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def socket_path(self) -> str:
        """dom0's socket."""
        return str(self.daemon.socket_path)

    # -- clients -----------------------------------------------------------------------------
    def client(self, domid: int = 0, **options: Any) -> Client:
        """A new :class:`Client` as ``domid`` (created first if it is a new guest), closed with
        the sandbox. ``options`` go to :class:`Client`."""
        path = self.socket_path if domid == 0 else self.guest_socket(domid)
        options.setdefault("backoff_initial", 0.01)
        options.setdefault("backoff_max", 0.5)
        client = Client(path, **options)
        if domid:
            client.domid()  # learnt now, so the client knows when its domain is destroyed
        self._clients.append(client)
        return client

    def dom0(self) -> Client:
        """The sandbox's dom0 client (privileged)."""
        if self._dom0 is None or self._dom0.conn.closed:
            self._dom0 = self.client(0)
        return self._dom0

    def guest(self, domid: int) -> Client:
        """The sandbox's client as guest ``domid`` (the domain is created if needed)."""
        client = self._guests.get(domid)
        if client is None or client.conn.closed:
            client = self._guests[domid] = self.client(domid)
        return client

    def guest_socket(self, domid: int) -> str:
        """The socket that speaks for guest ``domid``, creating the domain if needed."""
        path = self.daemon.guest_sockets.get(domid)
        return path if path is not None else self.create_domain(domid)

    def use_default(self, domid: int = 0) -> Client:
        """Point xsactor's default connection (``xsactor.read`` ...) and ``$XENSTORED_PATH``
        at this daemon as ``domid``; both are reset when the sandbox closes."""
        path = self.socket_path if domid == 0 else self.guest_socket(domid)
        if self._environ is None:
            self._environ = ("XENSTORED_PATH" in os.environ, os.environ.get("XENSTORED_PATH"))
        os.environ["XENSTORED_PATH"] = path
        client = self.client(domid)
        set_default(client)
        return client

    def _reset_default(self) -> None:
        set_default(None)
        if self._environ is not None:
            had, value = self._environ
            if had and value is not None:
                os.environ["XENSTORED_PATH"] = value
            else:
                os.environ.pop("XENSTORED_PATH", None)
            self._environ = None

    # -- domains -----------------------------------------------------------------------------
    def create_domain(self, domid: int | GuestSpec) -> str:
        """Build the guest's tree as xl does and introduce it; its socket's path."""
        return str(self.daemon.add_guest(domid))

    def shutdown(self, domid: int) -> None:
        """The guest shut down (the hypervisor's view; ``@releaseDomain`` fires)."""
        self.daemon.set_domain_state(domid, "shutdown")

    def crash(self, domid: int) -> None:
        """The guest crashed (``@releaseDomain`` fires)."""
        self.daemon.set_domain_state(domid, "crashed")

    def destroy(self, domid: int) -> None:
        """``xl destroy``: the domain dies (its connections close, its clients end with
        :class:`~xsactor.bus.DomainGone`), then the toolstack removes its tree."""
        self.daemon.set_domain_state(domid, "gone")
        dom0 = self.dom0()
        for path in replaced_paths(GuestSpec(domid)):
            with contextlib.suppress(ENOENT):
                dom0.delete(path)

    # -- agents ------------------------------------------------------------------------------
    def start(self, target: Callable[..., Any], *args: Any,
              stop: Callable[[Any], object] | None = None, **kwargs: Any) -> Agent:
        """Run an agent under the test: ``target(*args, **kwargs)`` in a greenlet of its own
        (killed to stop it), or, with ``stop``, ``handle = target(...)`` called here and
        ``stop(handle)`` to stop it. Stopped when the sandbox closes, then checked for leaks.
        """
        if self._baseline is None:
            self._baseline = _live_greenlets()
        if stop is None:
            greenlet = gevent.spawn(target, *args, **kwargs)
            agent = Agent(greenlet, lambda: greenlet.kill(block=True, timeout=STOP_TIMEOUT))
        else:
            handle = target(*args, **kwargs)
            agent = Agent(handle, lambda: stop(handle))
        self._agents.append(agent)
        return agent

    def stop_agents(self) -> None:
        """Stop every agent (last started first) and check they left nothing behind."""
        agents, self._agents = self._agents, []
        for agent in reversed(agents):
            agent.stop()
        if self._baseline is not None:
            baseline, self._baseline = self._baseline, None
            self.check_no_leaks(baseline)

    def check_no_leaks(self, baseline: weakref.WeakSet[Any]) -> None:
        """No greenlet alive that was not in ``baseline`` (or belongs to the sandbox's own
        clients and daemon), no open connection other than the sandbox's with a watch."""
        ours = {id(c.conn) for c in self._clients}

        def leaked() -> list[Any]:
            own = self._own_greenlets()
            live = [g for g in gc.get_objects() if isinstance(g, raw_greenlet) and not g.dead
                    and g.parent is not None and g not in baseline and g not in own]
            return live + _watching_connections(ours)

        try:
            wait_for(lambda: not leaked(), SETTLE_TIMEOUT, "agents to leave nothing behind",
                     error=LeakError, sleep=gevent.sleep)
        except LeakError:
            raise LeakError(f"left behind after the agents stopped: {leaked()!r}") from None

    def _own_greenlets(self) -> weakref.WeakSet[Any]:
        """The greenlets of the sandbox's clients and of the in-process daemon."""
        own: weakref.WeakSet[Any] = weakref.WeakSet()
        for client in self._clients:
            conn = client.conn
            own.update(g for g in (conn._owner, conn._writer) if g is not None)
        if self.kind == "inprocess":
            own.update(g for g in gc.get_objects()
                       if isinstance(g, gevent.Greenlet) and _belongs_to_daemon(g))
        return own


def _belongs_to_daemon(g: gevent.Greenlet) -> bool:
    """A greenlet running a method of the embedded daemon's (server, connections)."""
    run = getattr(g, "_run", None)
    owner = getattr(run, "__self__", None)
    module = type(owner).__module__ if owner is not None else getattr(run, "__module__", "")
    return str(module).startswith(("xsactor.daemon", "gevent.server", "gevent.baseserver"))


@contextlib.contextmanager
def sandbox(kind: str = "inprocess") -> Iterator[Sandbox]:
    """A :class:`Sandbox` of ``kind``, closed on exit."""
    with Sandbox(kind) as box:
        yield box
