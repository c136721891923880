"""Supervisors: OTP's supervisor.erl, for xsactor processes.

All restart logic lives here, in the order supervisor.erl writes it:

- start-up (S7): children start synchronously in spec order; a failed start terminates the
  ones already started (reverse order) and fails the supervisor's start with
  :class:`FailedToStartChild`; ``"ignore"`` keeps the spec with no process (a temporary
  child's spec is dropped);
- a child's exit (S2): ``do_restart`` by restart type; ``restart`` counts one event in the
  intensity window (S4), then restarts by strategy (S3): one_for_one the child,
  rest_for_one the child and those started after it, one_for_all every child, terminating
  the others first in reverse start order and starting them in start order; a failed start
  during a restart is retried through the mailbox, each retry counting (S5);
- giving up (S6): report ``reached_max_restart_intensity``, terminate the rest in reverse
  order, exit with reason ``shutdown``;
- stopping a child (S8): monitor; ``brutal_kill``: kill; T seconds: ``shutdown``, wait T for
  the DOWN, then kill; ``infinity``: wait;
- auto_shutdown (S9) for significant children ending by themselves;
- the calls (S10): :func:`start_child`, :func:`terminate_child`, :func:`restart_child`,
  :func:`delete_child`, :func:`which_children`, :func:`count_children`,
  :func:`get_childspec`;
- the dynamic supervisor (S12, Elixir's DynamicSupervisor): children by pid, ``max_children``,
  ``extra_arguments`` prepended to each start, intensity 3 in 5 s, parallel shutdown.

Beyond OTP, for agents: per-child restart :class:`~xsactor.actors.restarts.Backoff` (the
restart is an event in the window when the child dies, the start runs after the delay while
the supervisor keeps answering calls), the :class:`~xsactor.actors.childspec.RestartGate`
(deaths that do not count; restarts held while the gate is closed), and watches declared in
the child spec, handed to the installed watch registrar for every new instance.

Every start, crash, restart, give-up and shutdown is a structlog event with the supervisor,
the child id and the reason; ``report=`` names OTP's report (progress, child_terminated,
start_error, shutdown_error, shutdown).
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import gevent

from ..logs import get_logger
from . import process as proc
from . import server
from .childspec import ChildSpec, RestartGate, SupFlags, child_spec
from .mailbox import ReceiveTimeout
from .restarts import BackoffState, RestartIntensity

__all__ = [
    "RESTARTING",
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildInfo",
    "FailedToStartChild",
    "MaxChildren",
    "NotFound",
    "Restarting",
    "Running",
    "StartError",
    "Supervisor",
    "SupervisorError",
    "count_children",
    "delete_child",
    "describe",
    "get_childspec",
    "restart_child",
    "set_default_gate",
    "set_watch_registrar",
    "set_wiring",
    "start_child",
    "start_dynamic_link",
    "start_link",
    "supervisor_spec",
    "terminate_child",
    "which_children",
]

log = get_logger(__name__)

RESTARTING = "restarting"
"""The pid shown for a child whose restart is pending (OTP's ``restarting``)."""


# -- errors (OTP's {error, ...} results, as exceptions) ----------------------------------------
class SupervisorError(Exception):
    """A supervisor call's error result (OTP: ``{error, Reason}``)."""

    reason: Any = None


class NotFound(SupervisorError):
    reason = "not_found"


class Running(SupervisorError):
    reason = "running"


class Restarting(SupervisorError):
    reason = "restarting"


class AlreadyPresent(SupervisorError):
    reason = "already_present"


class AlreadyStarted(SupervisorError):
    """The id is taken by a running child; ``pid`` is that child."""

    reason = "already_started"

    def __init__(self, child_id: Hashable, pid: Any) -> None:
        super().__init__(f"child {child_id!r} already started as {pid}")
        self.child_id = child_id
        self.pid = pid


class MaxChildren(SupervisorError):
    """The dynamic supervisor has ``max_children`` children already."""

    reason = "max_children"


class StartError(SupervisorError):
    """The child's start failed; ``reason`` is what it raised (or the bad value it returned)."""

    def __init__(self, child_id: Hashable, reason: Any) -> None:
        super().__init__(f"child {child_id!r} failed to start: {reason!r}")
        self.child_id = child_id
        self.reason = reason


class FailedToStartChild(StartError):
    """The supervisor's own start failed (OTP: ``{shutdown, {failed_to_start_child, Id,
    Reason}}``); the children started before it were terminated."""


class ChildInfo(NamedTuple):
    """One row of :func:`which_children` (OTP: ``{Id, Child, Type, Modules}``); ``pid`` is a
    Pid, :data:`RESTARTING` or None (OTP's ``undefined``); ``id`` is None in a dynamic
    supervisor."""

    id: Hashable
    pid: Any
    type: str


# -- the watch registrar (installed by the program; the runner installs the bus's) -------------
WatchRegistrar = Callable[[Any, Sequence[tuple[str, Any]]], None]
_watch_registrar: WatchRegistrar | None = None


def set_watch_registrar(registrar: WatchRegistrar | None) -> WatchRegistrar | None:
    """Install ``registrar(pid, watches)``, called in the supervisor right after a child with
    declared ``watches`` started, to register them into that child's mailbox (and release them
    when it dies). Returns the previous one."""
    global _watch_registrar
    previous, _watch_registrar = _watch_registrar, registrar
    return previous


_default_gate = RestartGate()


def set_default_gate(gate: RestartGate | None) -> RestartGate:
    """Make ``gate`` the one supervisors use when their flags name none (None: OTP's, every
    death counts and restarts run at once); returns the previous one. The runner installs a
    gate that follows the bus's connection."""
    global _default_gate
    previous, _default_gate = _default_gate, gate if gate is not None else RestartGate()
    return previous


class Wiring(NamedTuple):
    """A tree's own restart gate and watch registrar (see :func:`set_wiring`)."""

    gate: RestartGate
    registrar: WatchRegistrar | None


_wirings: weakref.WeakKeyDictionary[Any, Wiring] = weakref.WeakKeyDictionary()
"""Greenlet -> the wiring of the supervisors it starts (a wired process, or a supervisor)."""


def set_wiring(gate: RestartGate | None, registrar: WatchRegistrar | None) -> None:
    """Give the supervisors the calling process starts, and their whole trees, this default
    gate and watch registrar instead of the process-wide ones (:func:`set_default_gate`,
    :func:`set_watch_registrar`): two trees in one program, each on its own connection.
    A supervisor passes its wiring on to the supervisors it starts as children; one started by
    a worker process uses the process-wide ones."""
    _wirings[gevent.getcurrent()] = Wiring(gate or RestartGate(), registrar)


# -- a child, as the supervisor holds it -------------------------------------------------------
class _Child:
    __slots__ = ("backoff", "failure", "key", "pid", "restarts", "spec", "timer", "timer_token")

    def __init__(self, key: Hashable, spec: ChildSpec) -> None:
        self.key = key
        self.spec = spec
        self.pid: Any = None
        self.restarts = 0
        self.backoff = BackoffState(spec.backoff) if spec.backoff is not None else None
        self.timer: gevent.Greenlet | None = None
        self.timer_token = -1
        self.failure: Any = None  # the last start error, while a restart is retried

    @property
    def running(self) -> bool:
        return self.pid is not None and self.pid != RESTARTING

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.kill(block=False)
            self.timer = None


_TRY_AGAIN = "$sup_try_again"
_DELAYED = "$sup_delayed_restart"


class Supervisor(server.Server):
    """The supervisor's state and callbacks, a :class:`~xsactor.actors.server.Server` (OTP's
    supervisor is a gen_server).

    Start it with :func:`start_link` or :func:`start_dynamic_link`; talk to it with the
    module's functions.
    """

    def __init__(self, flags: SupFlags, specs: Iterable[ChildSpec | Mapping[str, Any]] = (),
                 *, name: Any = None, dynamic: bool = False, max_children: int | None = None,
                 extra_arguments: Sequence[Any] = ()) -> None:
        self.flags = flags
        self.name = name
        self.dynamic = dynamic
        self.max_children = max_children
        self.extra_arguments = tuple(extra_arguments)
        self.specs = [child_spec(spec) for spec in specs]
        if dynamic and self.specs:
            raise ValueError("a dynamic supervisor starts with no children")
        ids = [spec.id for spec in self.specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate child ids in {ids}")
        flags.check_children(self.specs)
        self.intensity = RestartIntensity(flags.intensity, flags.period)
        self.children: dict[Hashable, _Child] = {}  # insertion order = start order
        self.by_pid: dict[Any, Hashable] = {}
        self._keys = itertools.count()
        self._timers = itertools.count()
        self.log = log.bind(supervisor=str(name) if name is not None else None)
        self.wiring = _wirings.get(gevent.getcurrent())
        """The starting process's wiring (:func:`set_wiring`); None: the process-wide one."""

    @property
    def gate(self) -> RestartGate:
        if self.flags.gate is not None:
            return self.flags.gate
        return self.wiring.gate if self.wiring is not None else _default_gate

    @property
    def registrar(self) -> WatchRegistrar | None:
        return self.wiring.registrar if self.wiring is not None else _watch_registrar

    # -- lifecycle: init -------------------------------------------------------------------
    def init(self) -> None:
        """Start the children in order (S7); when one fails, stop with
        ``Shutdown(("failed_to_start_child", id, reason))`` (start_link raises
        :class:`FailedToStartChild`)."""
        proc.trap_exit(True)
        if self.wiring is not None:
            _wirings[gevent.getcurrent()] = self.wiring  # for the supervisors it starts
        if self.name is None:
            self.log = log.bind(supervisor=str(self.pid))
        for spec in self.specs:
            child = self._add(spec.id, spec)
            try:
                self._start(child)
            except StartError as exc:
                self.log.error("child start failed", report="start_error",
                               child_id=spec.id, reason=exc.reason)
                self._remove(child)
                self._terminate_all()
                raise server.Stop(proc.Shutdown(("failed_to_start_child", spec.id, exc.reason))
                                  ) from None
            if child.pid is None and spec.restart == "temporary":
                self._remove(child)

    # -- lifecycle: terminate --------------------------------------------------------------
    def terminate(self, reason: Any) -> None:
        """The supervisor ends: its children stop in reverse start order (S6, S8)."""
        if self.dynamic:
            self._terminate_parallel(list(self.children.values()))
        else:
            self._terminate_all()
        self.log.info("supervisor stopped", reason=reason)

    # -- calls -----------------------------------------------------------------------------
    def handle_call(self, request: tuple[Any, ...], caller: server.Caller) -> Any:
        """``("ok", value)`` or ``("error", exception)``: the API raises the exception."""
        op, *args = request
        handler = getattr(self, f"_call_{op}", None)
        if handler is None:
            return ("error", ValueError(f"unknown supervisor request {op!r}"))
        try:
            return ("ok", handler(*args))
        except (SupervisorError, ValueError, TypeError) as exc:
            return ("error", exc)

    def _call_which_children(self) -> list[ChildInfo]:
        return [ChildInfo(None if self.dynamic else c.key, c.pid, c.spec.type)
                for c in reversed(self.children.values())]

    def _call_count_children(self) -> dict[str, int]:
        children = list(self.children.values())
        return {"specs": len(children),
                "active": sum(1 for c in children if c.running),
                "supervisors": sum(1 for c in children if c.spec.type == "supervisor"),
                "workers": sum(1 for c in children if c.spec.type == "worker")}

    def _call_get_childspec(self, key: Any) -> ChildSpec:
        return self._find(key).spec

    def _call_describe(self) -> dict[str, Any]:
        return {"supervisor": self.name, "pid": self.pid, "strategy": self.flags.strategy,
                "dynamic": self.dynamic, "restarts_in_window": len(self.intensity),
                "children": [{"id": c.key if not self.dynamic else None, "pid": c.pid,
                              "type": c.spec.type, "restart": c.spec.restart,
                              "restarts": c.restarts,
                              "watches": list(c.spec.watches)}
                             for c in self.children.values()]}

    def _call_start_child(self, spec: ChildSpec | Mapping[str, Any]) -> Any:
        spec = child_spec(spec)
        self.flags.check_children([spec])
        if self.dynamic:
            if self.max_children is not None and len(self.children) >= self.max_children:
                raise MaxChildren(f"{self.max_children} children already")
            child = self._add(next(self._keys), spec)
            try:
                self._start(child)
            except StartError:
                self._remove(child)
                raise
            if child.pid is None:  # ignore: a dynamic child without a process is not kept
                self._remove(child)
            return child.pid
        existing = self.children.get(spec.id)
        if existing is not None:
            if existing.running:
                raise AlreadyStarted(spec.id, existing.pid)
            raise AlreadyPresent(f"child {spec.id!r} is already present")
        child = self._add(spec.id, spec)
        try:
            self._start(child)
        except StartError:
            self._remove(child)
            raise
        if child.pid is None and spec.restart == "temporary":
            self._remove(child)
        return child.pid

    def _call_terminate_child(self, key: Any) -> None:
        if self.dynamic:
            child = self.children.get(self.by_pid.get(key, _MISSING))
            if child is None:
                raise NotFound(f"no child {key}")
            self._terminate(child)
            self._remove(child)
            return
        child = self._find(key)
        child.cancel_timer()
        self._terminate(child)
        self._del_child(child)

    def _call_restart_child(self, key: Any) -> Any:
        child = self._stopped("restart_child", key)
        self._start(child)
        return child.pid

    def _call_delete_child(self, key: Any) -> None:
        self._remove(self._stopped("delete_child", key))

    def _stopped(self, what: str, key: Any) -> _Child:
        """The child ``key`` for restart_child / delete_child: it must have no process."""
        if self.dynamic:
            raise SupervisorError(f"{what} is not for a dynamic supervisor")
        child = self._find(key)
        if child.pid == RESTARTING:
            raise Restarting(f"child {key!r} is restarting")
        if child.pid is not None:
            raise Running(f"child {key!r} is running")
        return child

    # -- messages ------------------------------------------------------------------------
    def handle_cast(self, message: Any) -> None:
        """A failed restart, retried (OTP's try_again_restart cast)."""
        if type(message) is tuple and len(message) == 2 and message[0] == _TRY_AGAIN:
            child = self.children.get(message[1])
            if child is not None and child.pid == RESTARTING and child.timer is None:
                self._restart(child, child.failure)

    def handle_info(self, message: Any) -> None:
        """EXIT from a child, a delayed or gated restart."""
        if type(message) is not tuple or not message:
            self.log.warning("unexpected message", message=repr(message)[:200])
            return
        tag = message[0]
        if tag == "EXIT" and len(message) == 3:
            self._child_exited(message[1], message[2])
        elif tag == _DELAYED and len(message) == 3:
            _tag, key, token = message
            child = self.children.get(key)
            if child is not None and child.pid == RESTARTING and child.timer is not None \
                    and child.timer_token == token:
                child.timer = None
                self._restart_now(child)
        else:
            self.log.warning("unexpected message", message=repr(message)[:200])

    # -- a child's exit: do_restart (S2) ---------------------------------------------------
    def _child_exited(self, pid: Any, reason: Any) -> None:
        key = self.by_pid.pop(pid, _MISSING)
        if key is _MISSING:
            return
        child = self.children[key]
        child.pid = None
        restart = child.spec.restart
        if restart == "permanent" or (restart == "transient" and not proc.is_normal_reason(reason)):
            self._report_terminated(child, pid, reason)
            self._restart(child, reason)
            return
        if restart == "temporary" and not proc.is_normal_reason(reason):
            self._report_terminated(child, pid, reason)
        else:
            self.log.info("child exited", child_id=self._id(child), pid=str(pid),
                          reason=reason)
        self._del_child(child)
        self._auto_shutdown(child)

    def _report_terminated(self, child: _Child, pid: Any, reason: Any) -> None:
        self.log.error("child terminated", report="child_terminated", child_id=self._id(child),
                       pid=str(pid), reason=reason)

    def _auto_shutdown(self, child: _Child) -> None:
        """S9: a significant child ended by itself."""
        mode = self.flags.auto_shutdown
        if mode == "never" or not child.spec.significant:
            return
        if mode == "all_significant" and any(
                c.spec.significant and c.pid is not None for c in self.children.values()):
            return
        self.log.info("auto shutdown", child_id=self._id(child), auto_shutdown=mode)
        raise server.Stop("shutdown")

    # -- restart: the intensity, the gate, the backoff, then the strategy ----------------
    def _restart(self, child: _Child, reason: Any) -> None:
        if self.gate.counts(child.key, reason) and not self.intensity.add():
            self.log.error("supervisor gave up", report="shutdown",
                           reason="reached_max_restart_intensity", child_id=self._id(child),
                           intensity=self.flags.intensity, period=self.flags.period)
            self._del_child(child)
            raise server.Stop("shutdown")
        child.restarts += 1
        group = self._group(child)
        self._terminate_group(child, group)
        child.pid = RESTARTING
        if not self.gate.is_open():
            self._hold(child, "gate")
            return
        if child.backoff is not None:
            delay = child.backoff.next_delay()
            self.log.info("child restart delayed", child_id=self._id(child), delay=delay,
                          in_a_row=child.backoff.in_a_row)
            self._hold(child, delay)
            return
        self._restart_now(child)

    def _hold(self, child: _Child, delay: float | str) -> None:
        """Restart ``child`` later: after ``delay`` seconds, or when the gate opens."""
        child.cancel_timer()
        token = next(self._timers)
        me, key = self.pid, child.key

        def fire() -> None:
            proc.send(me, (_DELAYED, key, token))

        def later(seconds: float) -> None:
            gevent.sleep(seconds)
            fire()

        if isinstance(delay, str):
            timer = gevent.Greenlet(self.gate.when_open, fire)
        else:
            timer = gevent.Greenlet(later, delay)
        child.timer, child.timer_token = timer, token
        timer.start()

    def _restart_now(self, child: _Child) -> None:
        """Start ``child``'s group in start order; a failure is retried through the mailbox."""
        if not self.gate.is_open():
            self._hold(child, "gate")
            return
        for member in self._group(child):
            if member.running or member.key not in self.children:
                continue
            try:
                self._start(member)
            except StartError as exc:
                self.log.error("child start failed", report="start_error",
                               child_id=self._id(member), reason=exc.reason)
                member.pid = RESTARTING
                member.failure = exc.reason
                server.cast(self.pid, (_TRY_AGAIN, member.key))
                return
            self.log.info("child restarted", child_id=self._id(member), pid=str(member.pid),
                          restarts=member.restarts)

    def _group(self, child: _Child) -> list[_Child]:
        """The children a strategy restarts for ``child``, in start order (S3)."""
        strategy = self.flags.strategy
        if self.dynamic or strategy == "one_for_one":
            return [child]
        children = list(self.children.values())
        if strategy == "one_for_all":
            return children
        return children[children.index(child):]

    def _terminate_group(self, child: _Child, group: list[_Child]) -> None:
        """Terminate the rest of the group in reverse start order; temporary ones are gone."""
        for member in reversed(group):
            if member is child:
                continue
            member.cancel_timer()
            self._terminate(member)
            if member.spec.restart == "temporary":
                self._remove(member)
            else:
                member.pid = None

    # -- starting and stopping one child ---------------------------------------------------
    def _start(self, child: _Child) -> None:
        """Run the child's start; sets ``child.pid`` (None for ignore) or raises StartError."""
        spec = child.spec
        try:
            result = spec.start(*self.extra_arguments) if self.dynamic else spec.start()
        except Exception as exc:
            raise StartError(self._id(child), exc) from exc
        if isinstance(result, str) and result == "ignore":
            child.pid = None
            self.log.info("child ignored", child_id=self._id(child))
            return
        if not isinstance(result, proc.Pid):
            raise StartError(self._id(child), result)
        if spec.watches:
            try:
                registrar = self.registrar
                if registrar is None:
                    raise RuntimeError("the child spec declares watches but no watch "
                                       "registrar is installed")
                registrar(result, spec.watches)
            except Exception as exc:
                proc.exit(result, "kill")
                self._flush_exit(result)
                raise StartError(self._id(child), exc) from exc
        child.pid = result
        self.by_pid[result] = child.key
        if child.backoff is not None:
            child.backoff.started()
        # OTP sends no progress report for a dynamic (simple_one_for_one) child
        self.log.info("child started", child_id=self._id(child), pid=str(result),
                      **({} if self.dynamic else {"report": "progress"}))

    def _terminate(self, child: _Child) -> None:
        """do_terminate: stop a running child (S8), report a shutdown_error."""
        if not child.running:
            return
        pid = child.pid
        self.by_pid.pop(pid, None)
        reason = self._shutdown(child.spec, pid)
        child.pid = None
        if reason is not None and not (reason == "normal" and child.spec.restart != "permanent"):
            self.log.error("shutdown error", report="shutdown_error", child_id=self._id(child),
                           pid=str(pid), reason=reason)
        else:
            self.log.info("child shut down", child_id=self._id(child), pid=str(pid))

    def _shutdown(self, spec: ChildSpec, pid: Any) -> Any:
        """OTP's shutdown/1: None when the child ended as it should, else its exit reason."""
        ref = proc.monitor(pid)
        if spec.shutdown == "brutal_kill":
            proc.exit(pid, "kill")
            reason = self._unlink_flush(pid, self._await_down(ref, None))
            return None if reason == "killed" or self._quiet_end(spec, reason) else reason
        proc.exit(pid, "shutdown")
        reason = self._await_down(ref, spec.shutdown_timeout)
        if reason is _MISSING:
            proc.exit(pid, "kill")
            reason = self._await_down(ref, None)
        reason = self._unlink_flush(pid, reason)
        return None if reason == "shutdown" or self._quiet_end(spec, reason) else reason

    @staticmethod
    def _quiet_end(spec: ChildSpec, reason: Any) -> bool:
        return (spec.restart != "permanent" and reason != "shutdown"
                and proc.is_normal_reason(reason))

    @staticmethod
    def _await_down(ref: Any, timeout: float | None) -> Any:
        def down(message: Any) -> bool:
            return (type(message) is tuple and len(message) == 5 and message[0] == "DOWN"
                    and message[1] == ref)
        try:
            return proc.receive(match=down, timeout=timeout)[4]
        except ReceiveTimeout:
            return _MISSING

    @staticmethod
    def _unlink_flush(pid: Any, default: Any) -> Any:
        """unlink, then take the child's EXIT if it came (its reason wins over the DOWN's)."""
        proc.unlink(pid)
        got = Supervisor._flush_exit(pid)
        return default if got is _MISSING else got

    @staticmethod
    def _flush_exit(pid: Any) -> Any:
        def exit_of(message: Any) -> bool:
            return (type(message) is tuple and len(message) == 3 and message[0] == "EXIT"
                    and message[1] == pid)
        try:
            return proc.receive(match=exit_of, timeout=0)[2]
        except ReceiveTimeout:
            return _MISSING

    def _terminate_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.cancel_timer()
            self._terminate(child)

    def _terminate_parallel(self, children: list[_Child]) -> None:
        """The dynamic supervisor's shutdown: every child told at once, then waited for."""
        waiting: dict[Any, tuple[_Child, Any, float | None, Any]] = {}
        for child in children:
            child.cancel_timer()
            if not child.running:
                continue
            pid = child.pid
            self.by_pid.pop(pid, None)
            ref = proc.monitor(pid)
            brutal = child.spec.shutdown == "brutal_kill"
            proc.exit(pid, "kill" if brutal else "shutdown")
            waiting[ref] = (child, pid, child.spec.shutdown_timeout, brutal)
        started = gevent.get_hub().loop.now()
        for ref, (child, pid, timeout, brutal) in waiting.items():
            left = None if timeout is None else max(
                0.0, timeout - (gevent.get_hub().loop.now() - started))
            reason = self._await_down(ref, left)
            if reason is _MISSING:
                proc.exit(pid, "kill")
                reason = self._await_down(ref, None)
            reason = self._unlink_flush(pid, reason)
            ok = (reason == "killed" if brutal else reason == "shutdown") or \
                self._quiet_end(child.spec, reason)
            child.pid = None
            if not ok:
                self.log.error("shutdown error", report="shutdown_error",
                               child_id=self._id(child), pid=str(pid), reason=reason)

    # -- the children table ----------------------------------------------------------------
    def _add(self, key: Hashable, spec: ChildSpec) -> _Child:
        child = _Child(key, spec)
        self.children[key] = child
        return child

    def _remove(self, child: _Child) -> None:
        child.cancel_timer()
        self.children.pop(child.key, None)
        if child.running:
            self.by_pid.pop(child.pid, None)

    def _del_child(self, child: _Child) -> None:
        """OTP's del_child: a temporary child (or any dynamic one) is forgotten, another keeps
        its spec with no process."""
        if self.dynamic or child.spec.restart == "temporary":
            self._remove(child)
        else:
            if child.running:
                self.by_pid.pop(child.pid, None)
            child.pid = None

    def _find(self, key: Any) -> _Child:
        child = None if self.dynamic else self.children.get(key)
        if child is None:
            raise NotFound(f"no child {key!r}")
        return child

    @staticmethod
    def _id(child: _Child) -> Any:
        return child.spec.id


_MISSING: Any = object()


def _start(sup: Supervisor) -> Any:
    """Start the supervisor linked to the caller; its children are started when it returns."""
    try:
        return server.start_link(sup, name=sup.name)
    except server.AlreadyStarted:
        raise
    except server.StartError as exc:
        reason = exc.reason
        if (isinstance(reason, proc.Shutdown) and type(reason.term) is tuple
                and reason.term[0] == "failed_to_start_child"):
            raise FailedToStartChild(reason.term[1], reason.term[2]) from None
        raise


def _call(sup: Any, request: tuple[Any, ...], timeout: float | None = None) -> Any:
    """A request to the supervisor ``sup`` (pid or name), waited for as OTP does (no
    timeout); its error result raised. NoProc when it is not there, ServerExit when it exits
    during the call."""
    status, value = server.call(sup, request, timeout=timeout)
    if status == "error":
        raise value
    return value


# -- the API (OTP's supervisor functions) ------------------------------------------------------
def start_link(flags: SupFlags | None = None,
               children: Iterable[ChildSpec | Mapping[str, Any]] = (), *,
               name: Any = None) -> Any:
    """Start a supervisor linked to the caller, its children started in order; returns its pid.

    Raises :class:`FailedToStartChild` naming the child whose start failed (the others were
    terminated), or ValueError for invalid flags or specs.
    """
    return _start(Supervisor(flags or SupFlags(), children, name=name))


def start_dynamic_link(*, name: Any = None, max_children: int | None = None,
                       extra_arguments: Sequence[Any] = (), intensity: int = 3,
                       period: float = 5.0, gate: RestartGate | None = None) -> Any:
    """Start a dynamic supervisor (Elixir's DynamicSupervisor) linked to the caller."""
    flags = SupFlags("one_for_one", intensity, period, gate=gate)
    return _start(Supervisor(flags, (), name=name, dynamic=True, max_children=max_children,
                             extra_arguments=extra_arguments))


def start_child(sup: Any, spec: ChildSpec | Mapping[str, Any]) -> Any:
    """Add and start a child; returns its pid, or None when its start returned ``"ignore"``.

    Raises AlreadyStarted, AlreadyPresent, MaxChildren (dynamic), StartError, ValueError.
    """
    return _call(sup, ("start_child", spec))


def terminate_child(sup: Any, child: Any) -> None:
    """Stop a child (by id; by pid in a dynamic supervisor). Its spec stays unless it is
    temporary or dynamic. Raises NotFound."""
    _call(sup, ("terminate_child", child))


def restart_child(sup: Any, child_id: Hashable) -> Any:
    """Start a terminated child again; returns its pid (None on ignore). Raises Running,
    Restarting, NotFound, StartError."""
    return _call(sup, ("restart_child", child_id))


def delete_child(sup: Any, child_id: Hashable) -> None:
    """Forget a terminated child's spec. Raises Running, Restarting, NotFound."""
    _call(sup, ("delete_child", child_id))


def which_children(sup: Any) -> list[ChildInfo]:
    """The children, newest first as OTP lists them."""
    result: list[ChildInfo] = _call(sup, ("which_children",))
    return result


def count_children(sup: Any) -> dict[str, int]:
    """``{"specs", "active", "supervisors", "workers"}`` as OTP counts them."""
    result: dict[str, int] = _call(sup, ("count_children",))
    return result


def get_childspec(sup: Any, child_id: Hashable) -> ChildSpec:
    """A child's spec. Raises NotFound."""
    result: ChildSpec = _call(sup, ("get_childspec", child_id))
    return result


def describe(sup: Any, timeout: float | None = None) -> dict[str, Any]:
    """The supervisor and its children with their restart counts (for tree dumps); raises
    :class:`~xsactor.actors.server.CallTimeout` after ``timeout`` seconds if given."""
    result: dict[str, Any] = _call(sup, ("describe",), timeout)
    return result


def supervisor_spec(child_id: Hashable, flags: SupFlags | None = None,
                    children: Iterable[ChildSpec | Mapping[str, Any]] = (), *,
                    name: Any = None, **options: Any) -> ChildSpec:
    """The child spec of a supervisor (type ``supervisor``, shutdown infinity), to nest it or
    to give it to the runner."""
    specs = [child_spec(spec) for spec in children]
    return ChildSpec(child_id, functools.partial(start_link, flags, specs, name=name),
                     type="supervisor", **options)
