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

Agents run under the sandbox with :meth:`Sandbox.start`: a supervision tree (as ``xsactor run``
runs it) or a plain function. When the sandbox closes they are stopped, and it checks that
they left no process, greenlet or watch behind (:class:`LeakError`).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gevent

from ..bus.client import Client
from ..bus.connection import Connection
from ..bus.default import set_default
from ..daemon.toolstack import GuestSpec, replaced_paths
from ..protocol.errors import ENOENT
from .processes import live_greenlets, unwind
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

        self.config = DaemonConfig(socket_path=os.path.join(rundir, "socket"),
                                   guest_dir=os.path.join(rundir, "guests"))
        self.daemon: Any = None
        self.socket_path = self.config.socket_path
        self.guest_sockets: dict[int, str] = {}

    def start(self) -> _InProcess:
        """Start a fresh daemon (an empty store) on the same sockets."""
        from ..daemon.server import Daemon

        self.daemon = Daemon(self.config).start()
        self.guest_sockets.clear()
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
        if self.daemon is not None:
            self.daemon.stop()


class Agent:
    """Something started under the sandbox; ``handle`` is the root's pid for a supervision
    tree, the greenlet for a function, or what a ``target`` with ``stop`` returned."""

    def __init__(self, handle: Any, stop: Callable[[], object], tree: Any = None) -> None:
        self.handle = handle
        self._stop = stop
        self._tree = tree
        self.stopped = False
        self.exit_reason: Any = None
        """For a tree: the root's exit reason once stopped (``"shutdown"`` after a clean stop)."""

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.exit_reason = self._stop()

    def wait(self, timeout: float | None = None) -> Any:
        """For a tree: wait for its root to end by itself (a supervisor that gave up ends
        with ``"shutdown"``); its exit reason. Raises gevent's Timeout."""
        if self._tree is None:
            raise TypeError("only a supervision tree can be waited for")
        return self._tree.wait(timeout)


def _is_tree(target: Any) -> bool:
    from ..actors.childspec import ChildSpec

    return isinstance(target, ChildSpec | Mapping)


def _watching_connections() -> list[Connection]:
    """Open client connections that still hold watches."""
    return [c for c in gc.get_objects()
            if isinstance(c, Connection) and not c.closed and c.watches()]


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
        self._baseline: set[Any] | None = None
        self._environ: tuple[bool, str | None] | None = None
        self._stopped_guests: list[int] = []
        rundir = self._stack.enter_context(scratch_dir(prefix))
        if kind == "inprocess":
            self.daemon: Any = _InProcess(rundir).start()
            self._stack.callback(lambda: self.daemon.stop())
        else:
            from .daemons import start_daemon

            self.daemon = self._stack.enter_context(start_daemon(kind, rundir))

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the agents, close the clients and the daemon; then, if agents ran, check
        that they left nothing behind (:class:`LeakError`)."""
        try:
            self.stop_agents()
        finally:
            self._reset_default()
            for client in self._clients:
                client.close()
            self._stack.close()
        if self._baseline is not None:
            baseline, self._baseline = self._baseline, None
            self._check_no_leaks(baseline)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def socket_path(self) -> str:
        """dom0's socket."""
        return str(self.daemon.socket_path)

    # -- clients -----------------------------------------------------------------------------
    def client(self, domid: int = 0, *, client_class: type[Client] = Client,
               **options: Any) -> Client:
        """A new :class:`Client` as ``domid`` (created first if it is a new guest), closed with
        the sandbox. ``options`` go to :class:`Client` (it reconnects fast unless they say
        otherwise: ``backoff_initial=0.01, backoff_max=0.5``); ``client_class``: a subclass
        of it to use instead (a test double)."""
        path = self.socket_path if domid == 0 else self.guest_socket(domid)
        options.setdefault("backoff_initial", 0.01)
        options.setdefault("backoff_max", 0.5)
        client = client_class(path, **options)
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

    # -- the daemon itself ----------------------------------------------------------------------
    def stop_daemon(self) -> None:
        """The daemon dies under the agents (its socket files stay, refusing connections):
        clients lose their connections and retry with their backoff; nothing else changes
        until :meth:`start_daemon`."""
        self._stopped_guests = sorted(self.daemon.guest_sockets)
        self.daemon.stop()

    def start_daemon(self) -> None:
        """Start the daemon stopped by :meth:`stop_daemon` again, on the same sockets, fresh:
        an empty store, with the guests it served built again as xl builds them (their
        agents' keys are gone). Clients reconnect by themselves."""
        guests, self._stopped_guests = self._stopped_guests, []
        self.daemon.start()
        for domid in guests:
            self.create_domain(domid)

    # -- agents ------------------------------------------------------------------------------
    def start(self, target: Any, *args: Any, stop: Callable[[Any], object] | None = None,
              domid: int = 0, client: Client | None = None, **kwargs: Any) -> Agent:
        """Run an agent under the test; it is stopped when the sandbox closes, which then
        fails with :class:`LeakError` if a process, a greenlet or a watch outlived it.

        - a supervision tree: a child spec (:class:`~xsactor.actors.childspec.ChildSpec`, e.g.
          from ``supervisor_spec``) runs as ``xsactor run`` runs it, with the bus's restart gate
          and the child specs' declared watches on ``client`` (one of :meth:`client`,
          :meth:`dom0`, :meth:`guest`: the one the agent was given), else on the default
          connection as ``domid`` (:meth:`use_default`); ``agent.handle`` is the root's pid.
          Each tree has its own gate and watches: trees on different connections (a dom0
          backend, a guest frontend) run side by side;
        - a function: ``target(*args, **kwargs)`` in a greenlet of its own, killed to stop it;
        - with ``stop``: ``handle = target(*args, **kwargs)``, stopped by ``stop(handle)``.
        """
        if self._baseline is None:
            self._baseline = live_greenlets()
        if _is_tree(target):
            agent = self._start_tree(target, client or self.use_default(domid))
        elif stop is None:
            greenlet = gevent.spawn(target, *args, **kwargs)
            agent = Agent(greenlet, lambda: greenlet.kill(block=True, timeout=STOP_TIMEOUT))
        else:
            handle = target(*args, **kwargs)
            agent = Agent(handle, lambda: stop(handle))
        self._agents.append(agent)
        return agent

    def _start_tree(self, spec: Any, client: Client) -> Agent:
        from ..runner import host_tree

        tree = host_tree(spec, client, timeout=STOP_TIMEOUT)
        return Agent(tree.root, lambda: tree.stop(STOP_TIMEOUT), tree)

    def stop_agents(self) -> None:
        """Stop every agent, last started first (the leak check runs when the sandbox
        closes)."""
        agents, self._agents = self._agents, []
        for agent in reversed(agents):
            agent.stop()

    def _check_no_leaks(self, baseline: Any) -> None:
        """After everything the sandbox owns is closed: no process, no greenlet that was not
        alive before the first agent started, no open connection with a watch. Leftovers are
        killed, then reported."""
        from ..actors import process as px

        px.release_self()  # the test's own greenlet, adopted if it used processes

        def leaked() -> list[Any]:
            return (px.processes() + sorted(live_greenlets() - baseline, key=repr)
                    + _watching_connections())

        try:
            wait_for(lambda: not leaked(), SETTLE_TIMEOUT, "agents to leave nothing behind",
                     error=LeakError, sleep=gevent.sleep)
        except LeakError:
            left = leaked()
            for item in left:
                if isinstance(item, px.Pid):
                    px.exit(item, px.KILL)
                elif isinstance(item, Connection):
                    item.close()
            unwind(item for item in left if not isinstance(item, px.Pid | Connection))
            gevent.sleep(0)
            raise LeakError(f"left behind after the agents stopped: {left!r}") from None


@contextlib.contextmanager
def sandbox(kind: str = "inprocess") -> Iterator[Sandbox]:
    """A :class:`Sandbox` of ``kind``, closed on exit."""
    with Sandbox(kind) as box:
        yield box
