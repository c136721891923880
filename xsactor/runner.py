"""The agent runner: connect the bus, start a supervision tree, run until told to stop.

``run_agent(spec_or_factory, socket=None, json_logs=False)`` (and ``xsactor run
package.module:factory``) does, in order:

1. configure structlog: the console renderer on a terminal, key=value lines otherwise, one
   JSON object per line with ``json_logs``;
2. connect the default connection as the bus chooses (``socket`` or libxenstore's rules);
3. install the bus's restart gate (:class:`ConnectionGate`: a death from a lost connection, or
   while the bus reconnects, does not count toward any supervisor's intensity; restarts wait
   until the bus is connected again) and watch registrar (:func:`watch_registrar`: the
   ``watches`` a child spec declares are registered into each new instance's mailbox, and
   released when it dies);
4. start the root child spec (usually a supervisor: :func:`~.actors.supervisor.supervisor_spec`)
   linked to the runner, and log ``agent started``;
5. wait: SIGTERM or SIGINT stops the root as its parent would (``shutdown``, waiting for the
   whole tree, reverse start order); a second such signal kills it; SIGUSR1 logs the process
   tree (``process tree``: pids, names, mailbox lengths, watches, restart counts).

The exit status is 0 after a requested stop (1 if the second signal had to kill the tree),
and 1 when the root ended by itself with any reason but ``normal`` (a root supervisor that
gave up exits with ``shutdown``), failed to start, or the bus could not connect.
"""

from __future__ import annotations

import importlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gevent
from gevent.event import AsyncResult

from . import logs
from .actors import process as proc
from .actors import server, supervisor
from .actors.childspec import ChildSpec, RestartGate, child_spec
from .bus import default
from .bus.client import Client
from .bus.connection import State
from .protocol.errors import ConnectionLost

__all__ = ["ConnectionGate", "HostedTree", "host_tree", "load_factory", "process_tree",
           "run_agent", "watch_registrar"]

log = logs.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DUMP_SIGNAL = signal.SIGUSR1
_SIGNAL = "$runner_signal"


# -- the bus, wired into the supervisors -------------------------------------------------------
class ConnectionGate(RestartGate):
    """The restart gate that follows a bus connection: deaths of ConnectionLost, or while the
    bus is not connected, do not count; restarts wait while it (re)connects."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def counts(self, child_id: Any, reason: Any) -> bool:
        if isinstance(reason, ConnectionLost):
            return False
        return self.client.state in (State.CONNECTED, State.CLOSED)

    def is_open(self) -> bool:
        return self.client.state in (State.CONNECTED, State.CLOSED)

    def when_open(self, callback: Callable[[], None]) -> None:
        conn = self.client.conn
        fired = False

        def listener(_conn: Any, state: State) -> None:
            nonlocal fired
            if fired or state not in (State.CONNECTED, State.CLOSED):
                return
            fired = True
            conn.unsubscribe_state(listener)
            callback()

        conn.subscribe_state(listener)
        listener(conn, conn.state)  # it may have opened meanwhile


def watch_registrar(client: Client) -> supervisor.WatchRegistrar:
    """Register a child's declared watches into its own mailbox: its events are its messages,
    and the bus releases the watches when the child dies, before its EXIT/DOWN go out (so its
    next instance can watch with the same tokens)."""
    def register(pid: proc.Pid, watches: Sequence[tuple[str, Any]]) -> None:
        box = proc.mailbox(pid)
        if box is None:
            return  # died already: nothing to watch for
        done: list[tuple[str, Any]] = []
        try:
            for path, token in watches:
                client.watch(path, token, mailbox=box)
                done.append((path, token))
        except BaseException:
            for path, token in done:
                client.unwatch_nowait(path, token)
            raise

    return register


# -- the tree dump -----------------------------------------------------------------------------
def process_tree(pid: Any, child_id: Any = None, kind: str = "supervisor",
                 timeout: float = 2.0) -> dict[str, Any]:
    """A process and, for a supervisor, its children: pid, name, status, mailbox length,
    resources (the bus's watches...), restart counts and declared watches."""
    node: dict[str, Any] = {"id": child_id, "pid": repr(pid), "type": kind}
    info = proc.process_info(pid) if isinstance(pid, proc.Pid) else None
    if info is None:
        node["status"] = "not running" if pid is None else str(pid)
        return node
    node.update(name=info["registered_name"], status=info["status"],
                mailbox=info["message_queue_len"])
    if info["resources"]:
        node["resources"] = {key: repr(value) for key, value in info["resources"].items()}
    if kind != "supervisor":
        return node
    try:
        described = supervisor.describe(pid, timeout=timeout)
    except (server.CallTimeout, proc.ExitError) as exc:
        node["children"] = f"unavailable: {exc}"
        return node
    node["strategy"] = described["strategy"]
    node["restarts_in_window"] = described["restarts_in_window"]
    children = []
    for child in described["children"]:
        entry = process_tree(child["pid"], child["id"], child["type"], timeout)
        entry["restarts"] = child["restarts"]
        if child["watches"]:
            entry["watches"] = [list(pair) for pair in child["watches"]]
        children.append(entry)
    node["children"] = children
    return node


# -- the runner --------------------------------------------------------------------------------
def load_factory(target: str) -> Any:
    """``package.module:attribute`` -> the attribute (a factory or a child spec)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"want package.module:factory, not {target!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def root_spec(spec_or_factory: Any) -> ChildSpec:
    """The root child spec: given, or made by calling the factory."""
    spec = spec_or_factory
    if not isinstance(spec, ChildSpec | Mapping):
        if not callable(spec):
            raise TypeError(f"want a child spec or a factory of one, not {spec!r}")
        spec = spec()
    return child_spec(spec)


def run_agent(spec_or_factory: Any, socket: str | None = None, json_logs: bool = False, *,
              level: str = "info", configure_logs: bool = True) -> int:
    """Run an agent's supervision tree until a stop signal; the exit status (module doc)."""
    if configure_logs:
        logs.configure(level, json=json_logs)
    try:
        spec = root_spec(spec_or_factory)
    except Exception as exc:
        log.error("agent spec invalid", error=repr(exc))
        return 2
    try:
        client = default.connect(socket)
    except (OSError, ConnectionLost) as exc:
        log.error("cannot connect", socket=socket, error=str(exc))
        return 1
    previous_gate = supervisor.set_default_gate(ConnectionGate(client))
    previous_registrar = supervisor.set_watch_registrar(watch_registrar(client))
    try:
        return _Runner(spec).run()
    finally:
        supervisor.set_watch_registrar(previous_registrar)
        supervisor.set_default_gate(previous_gate)
        default.close()


class _Runner:
    """The runner's process: it is the root's parent and hears signals as messages."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.stopping = False
        self.killed = False
        self.deadline: gevent.Greenlet | None = None

    def run(self) -> int:
        was_trapping = proc.trap_exit(True)
        me = proc.self_pid()
        handlers = [gevent.signal_handler(signum, proc.send, me, (_SIGNAL, signum))
                    for signum in (*STOP_SIGNALS, DUMP_SIGNAL)]
        try:
            return self._supervise()
        finally:
            for handler in handlers:
                handler.cancel()
            proc.trap_exit(was_trapping)

    def _supervise(self) -> int:
        try:
            root = self.spec.start()
        except Exception as exc:
            log.error("agent failed to start", child_id=self.spec.id, reason=exc)
            return 1
        if not isinstance(root, proc.Pid):
            log.error("agent failed to start", child_id=self.spec.id, reason=root)
            return 0 if root == "ignore" else 1
        log.info("agent started", child_id=self.spec.id, root=repr(root), os_pid=os.getpid())
        while True:
            message = proc.receive(lambda m: type(m) is tuple and len(m) >= 2 and (
                m[0] == _SIGNAL or (m[0] == "EXIT" and m[1] is root)))
            if message[0] == "EXIT":
                return self._ended(message[2])
            self._signal(message[1], root)

    def _signal(self, signum: int, root: proc.Pid) -> None:
        name = signal.Signals(signum).name
        if signum == DUMP_SIGNAL:
            gevent.spawn(self._dump, root)
        elif not self.stopping:
            self.stopping = True
            log.info("agent stopping", signal=name)
            proc.exit(root, "shutdown")
            if self.spec.shutdown_timeout is not None:  # a worker root: its shutdown spec
                self.deadline = gevent.spawn_later(self.spec.shutdown_timeout, self._kill,
                                                   root, "timeout")
        else:
            self._kill(root, name)

    def _kill(self, root: proc.Pid, why: str) -> None:
        if proc.is_alive(root):
            self.killed = True
            log.warning("agent killed", why=why)
            proc.exit(root, "kill")

    def _dump(self, root: proc.Pid) -> None:
        tree = process_tree(root, self.spec.id, self.spec.type)
        log.info("process tree", tree=tree)
        proc.release_self()

    def _ended(self, reason: Any) -> int:
        if self.deadline is not None:
            self.deadline.kill(block=False)
        if self.stopping:
            log.info("agent stopped", reason=reason, killed=self.killed)
            return 1 if self.killed else 0
        if reason == "normal":
            log.info("agent finished", reason=reason)
            return 0
        log.error("agent root exited", child_id=self.spec.id, reason=reason)
        return 1


# -- a tree hosted in a program (the demo, the test sandbox) ------------------------------------
_HOST_STOP = "$host_stop"


class HostedTree:
    """A supervision tree started by :func:`host_tree`: ``root`` is its pid; :meth:`stop` stops
    it as its parent would (``shutdown``) and gives the root's exit reason; :meth:`wait` waits
    for it to end by itself (a supervisor that gave up ends with ``shutdown``)."""

    def __init__(self, holder: proc.Pid, root: Any, ended: AsyncResult) -> None:
        self.root = root
        self._holder = holder
        self._ended = ended

    def stop(self, timeout: float | None = 10.0) -> Any:
        if proc.is_alive(self._holder):
            proc.send(self._holder, _HOST_STOP)
        return self._ended.get(timeout=timeout)

    def wait(self, timeout: float | None = None) -> Any:
        return self._ended.get(timeout=timeout)


def _hold(spec: ChildSpec, client: Client, started: AsyncResult, ended: AsyncResult) -> None:
    """The root's parent: wires the tree to ``client``, starts it, stops it when told; the
    root's exit reason to ``ended``."""
    proc.trap_exit(True)
    supervisor.set_wiring(ConnectionGate(client), watch_registrar(client))
    try:
        root = spec.start()
    except BaseException as exc:
        started.set_exception(exc)
        return
    started.set(root)
    if not isinstance(root, proc.Pid):
        ended.set(root)
        return
    message = proc.receive(
        lambda m: m == _HOST_STOP or (type(m) is tuple and m[:2] == ("EXIT", root)))
    if message == _HOST_STOP:
        proc.exit(root, "shutdown")
        message = proc.receive(("EXIT", root, proc.ANY))
    ended.set(message[2])


def host_tree(spec_or_factory: Any, client: Client, timeout: float | None = 10.0
              ) -> HostedTree:
    """Start a tree in this program as :func:`run_agent` does, with ``client``'s restart gate
    and watch registrar, without taking over signals or the process's exit. The wiring is the
    tree's own (:func:`~.actors.supervisor.set_wiring`): trees on different connections can
    run side by side."""
    spec = root_spec(spec_or_factory)
    started: AsyncResult = AsyncResult()
    ended: AsyncResult = AsyncResult()
    holder = proc.spawn(_hold, spec, client, started, ended)
    root = started.get(timeout=timeout)
    return HostedTree(holder, root, ended)
