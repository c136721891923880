"""Erlang processes on gevent: pids, mailboxes, links, monitors, exit signals, names.

A process is a greenlet with a :class:`Pid`, a mailbox (:mod:`.mailbox`; the bus's
``mailbox_of()`` gives the same one, so watch events arrive as messages), links, monitors and
at most one registered name. The rules are OTP's (``docs/actors.md``, rules P1-P10):

- an exit signal is handled the moment it is sent (there is one thread): a trapping process
  gets ``('EXIT', from_pid, reason)``; ``kill`` sent with :func:`exit` kills with ``killed``;
  ``normal`` is ignored unless sent by the process to itself; any other reason kills with that
  reason;
- a process dies at once: the exit sequence (:func:`_release`) releases its name, runs its exit
  hooks (the bus unwatches, purges queued events, ends transactions), and only then sends EXIT
  to its links and ``('DOWN', ref, 'process', pid, reason)`` to its monitors (rule P4);
- the greenlet of a process killed by a signal is then thrown :class:`Exit` so it unwinds
  (``finally`` blocks run). gevent cannot force a greenlet to die: one that swallows
  :class:`Exit` is already dead as a process (messages to it are dropped, its ``receive``
  parks until its timeout, its link/monitor/register calls raise :class:`Exit` again); it is
  logged and left to end on its own.

A plain greenlet that calls :func:`self_pid` (or any call that needs a process) is adopted as
a process, like the Erlang shell; a gevent ``Greenlet`` ends its process when it ends, the
main greenlet with :func:`release_self`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Literal, overload

from gevent import Greenlet, GreenletExit, getcurrent
from gevent.event import Event
from gevent.hub import Hub, get_hub
from greenlet import greenlet as RawGreenlet

from ..logs import get_logger
from .mailbox import Mailbox, ReceiveTimeout, bind_mailbox, mailbox_of
from .terms import (
    ANY,
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    BadArg,
    Exit,
    ExitError,
    NoProc,
    Pid,
    Ref,
    Shutdown,
    is_normal_reason,
    is_reason,
    matcher,
)

__all__ = [
    "ANY", "KILL", "KILLED", "NOPROC", "NORMAL", "SHUTDOWN", "BadArg", "Exit", "ExitError",
    "NoProc", "Pid", "Ref", "Shutdown", "add_exit_hook", "add_info_provider", "adopt", "alias",
    "demonitor", "exit", "is_alive", "is_normal_reason", "link", "mailbox", "matcher", "monitor",
    "pid_of", "process_info", "processes", "receive", "register", "registered", "release_self",
    "remove_exit_hook", "self_pid", "send", "spawn", "spawn_link", "spawn_monitor", "spawn_opt",
    "trap_exit", "unalias", "unlink", "unregister", "whereis",
]

_log = get_logger(__name__)


# -- the process table ---------------------------------------------------------------------
class _Hook:
    """An exit hook: ``callback(pid, reason)`` run when the process dies, before EXIT/DOWN."""

    __slots__ = ("callback", "proc")

    def __init__(self, proc: _Process, callback: Callable[[Pid, Any], object]) -> None:
        self.proc = proc
        self.callback = callback


class _Process:
    __slots__ = ("adopted", "aliases", "alive", "box", "greenlet", "hooks", "links", "monitors",
                 "name", "pid", "reason", "started", "trap", "waiting", "watchers")

    def __init__(self, greenlet: Any, adopted: bool) -> None:
        self.pid = Pid(self)
        self.greenlet = greenlet
        self.adopted = adopted
        self.alive = True
        self.started = adopted
        self.reason: Any = None
        self.box: Mailbox | None = None
        self.aliases: set[Ref] | None = None
        self.links: set[_Process] = set()
        self.monitors: dict[Ref, _Process] = {}  # the processes this one monitors
        self.watchers: dict[Ref, _Process] = {}  # the processes monitoring this one
        self.hooks: dict[_Hook, None] = {}
        self.name: str | None = None
        self.trap = False
        self.waiting = False

    def mailbox(self) -> Mailbox:
        box = self.box
        if box is None:
            box = self.box = mailbox_of(self.greenlet)
        return box

    def put(self, message: Any) -> None:
        """Deliver a system message (EXIT, DOWN, reply): never dropped by a bound."""
        self.mailbox().put(message, system=True)


_PROCS: dict[Pid, _Process] = {}
_BY_GREENLET: dict[Any, _Process] = {}
_NAMES: dict[str, _Process] = {}
_INFO: dict[str, Callable[[Pid], Any]] = {}
_ALIASES: dict[Ref, _Process] = {}


def _current() -> _Process | None:
    return _BY_GREENLET.get(getcurrent())


def _me() -> _Process:
    """The calling process, adopting the calling greenlet if needed."""
    g = getcurrent()
    proc = _BY_GREENLET.get(g)
    return proc if proc is not None else _adopt(g)


def _adopt(g: Any) -> _Process:
    if isinstance(g, Hub):
        raise RuntimeError("the gevent hub is not a process")
    if g.dead:
        raise BadArg(f"{g!r} has ended")
    proc = _Process(g, adopted=True)
    _PROCS[proc.pid] = proc
    _BY_GREENLET[g] = proc
    if isinstance(g, Greenlet):
        g.rawlink(_adopted_ended)
    return proc


def adopt(greenlet: Any) -> Pid:
    """The pid of the process running on ``greenlet``, making it one if it is not yet."""
    proc = _BY_GREENLET.get(greenlet)
    return (proc if proc is not None else _adopt(greenlet)).pid


def _live_me() -> _Process:
    proc = _me()
    if not proc.alive:
        raise Exit(proc.reason)
    return proc


def _adopted_ended(g: Greenlet) -> None:
    proc = _BY_GREENLET.get(g)
    if proc is None:
        return
    _forget_greenlet(proc)
    if not proc.alive:
        return
    if g.successful():
        value = g.value
        reason = value.reason if isinstance(value, Exit) else (
            KILLED if isinstance(value, GreenletExit) else NORMAL)
    else:
        reason = g.exception
    _die(proc, reason, unwind=False)


def _proc_of(pid: Pid | str) -> _Process | None:
    if isinstance(pid, Pid):
        return pid._proc
    return _NAMES.get(pid)


# -- dying ---------------------------------------------------------------------------------
_dying: deque[_Process] = deque()
_unwinding: list[_Process] = []
_draining = False


def _die(proc: _Process, reason: Any, *, unwind: bool = True) -> None:
    """``proc`` is dead with ``reason`` from now on; run the exit sequences (this one and
    those it causes through links) before returning. With ``unwind``, its greenlet is then
    made to unwind (raise :class:`Exit` at once if it is the caller)."""
    global _draining
    if not proc.alive:
        return
    proc.alive = False
    proc.reason = reason
    _dying.append(proc)
    if unwind:
        _unwinding.append(proc)
    if _draining:
        return
    _draining = True
    try:
        while _dying:
            _release(_dying.popleft())
    finally:
        _draining = False
    _unwind_all()


def _unwind_all() -> None:
    me = getcurrent()
    mine: _Process | None = None
    while _unwinding:
        proc = _unwinding.pop()
        g = proc.greenlet
        if g is me:
            mine = proc
        elif proc.started and not g.dead:
            get_hub().loop.run_callback(_throw, proc)
        elif not proc.adopted:
            pass  # not started: _run sees it dead and returns
        else:
            _forget_greenlet(proc)
    if mine is not None:
        if mine.adopted:
            _forget_greenlet(mine)
        raise Exit(mine.reason)


def _forget_greenlet(proc: _Process) -> None:
    if _BY_GREENLET.get(proc.greenlet) is proc:
        del _BY_GREENLET[proc.greenlet]


def _throw(proc: _Process) -> None:
    g = proc.greenlet
    if proc.adopted:
        _forget_greenlet(proc)
    if g.dead:
        return
    g.throw(Exit(proc.reason))
    if not g.dead and not proc.adopted:
        _log.warning("dead process still running (it caught its exit or blocks in cleanup)",
                     pid=repr(proc.pid), reason=repr(proc.reason))


def _release(proc: _Process) -> None:
    """The exit sequence: name, exit hooks, then EXIT to links and DOWN to monitors (P4)."""
    pid, reason = proc.pid, proc.reason
    del _PROCS[pid]
    if proc.name is not None:
        del _NAMES[proc.name]
        proc.name = None
    if proc.hooks:
        hooks, proc.hooks = proc.hooks, {}
        for hook in hooks:
            try:
                hook.callback(pid, reason)
            except (Exception, GreenletExit) as exc:  # one bad hook must not stop the rest
                _log.error("exit hook failed", pid=repr(pid), hook=repr(hook.callback),
                           error=repr(exc), exc_info=exc)
    if proc.links:
        links, proc.links = proc.links, set()
        for other in links:
            other.links.discard(proc)
            _signal(other, pid, reason, link=True)
    if proc.watchers:
        watchers, proc.watchers = proc.watchers, {}
        for ref, watcher in watchers.items():
            del watcher.monitors[ref]
            watcher.put(("DOWN", ref, "process", pid, reason))
    if proc.monitors:
        monitors, proc.monitors = proc.monitors, {}
        for ref, target in monitors.items():
            del target.watchers[ref]
    if proc.aliases:
        for ref in proc.aliases:
            del _ALIASES[ref]
        proc.aliases = None
    if proc.box is not None:
        proc.box.purge(_everything)


def _everything(_message: Any) -> bool:
    return True


def _signal(target: _Process, sender: Pid | None, reason: Any, *, link: bool) -> None:
    """An exit signal from ``sender`` reaches ``target`` (rule P5)."""
    if not target.alive:
        return
    if not link and is_reason(reason, KILL):
        _die(target, KILLED)
    elif target.trap:
        target.put(("EXIT", sender, reason))
    elif is_reason(reason, NORMAL) and (link or sender is not target.pid):
        return
    else:
        _die(target, reason)


# -- spawning ------------------------------------------------------------------------------
def _run(proc: _Process, fn: Callable[..., Any], args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> None:
    if not proc.alive:  # killed before it ran
        _forget_greenlet(proc)
        return
    proc.started = True
    reason: Any = NORMAL
    try:
        fn(*args, **kwargs)
    except Exit as exc:
        reason = exc.reason
    except GreenletExit:
        reason = KILLED
    except (SystemExit, KeyboardInterrupt) as exc:  # end, then let gevent stop the program
        _die(proc, exc, unwind=False)
        _forget_greenlet(proc)
        raise
    except BaseException as exc:  # Exception, and gevent.Timeout: a crash
        reason = exc
        if proc.alive:
            _log.error("process crashed", pid=repr(proc.pid), name=proc.name,
                       error=repr(exc), exc_info=exc)
    if proc.alive:
        _die(proc, reason, unwind=False)
    _forget_greenlet(proc)


@overload
def spawn_opt(fn: Callable[..., Any], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, link: bool = False,
              monitor: Literal[False] = False, mailbox: Mailbox | None = None) -> Pid: ...


@overload
def spawn_opt(fn: Callable[..., Any], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, link: bool = False,
              monitor: Literal[True], mailbox: Mailbox | None = None) -> tuple[Pid, Ref]: ...


@overload
def spawn_opt(fn: Callable[..., Any], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, link: bool = False,
              monitor: bool, mailbox: Mailbox | None = None) -> Pid | tuple[Pid, Ref]: ...


def spawn_opt(fn: Callable[..., Any], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, link: bool = False,
              monitor: bool = False, mailbox: Mailbox | None = None) -> Pid | tuple[Pid, Ref]:
    """Start ``fn(*args, **kwargs)`` as a process; it runs once the caller yields.

    ``link`` links it to the caller before it can run (atomic, rule P1); ``monitor`` returns
    ``(pid, ref)``; ``mailbox`` gives it that mailbox (e.g. a bounded one).
    """
    me = _live_me() if link or monitor else None
    hub = get_hub()
    g = RawGreenlet(_run, hub)
    proc = _Process(g, adopted=False)
    _PROCS[proc.pid] = proc
    _BY_GREENLET[g] = proc
    if mailbox is not None:
        bind_mailbox(g, mailbox)
        proc.box = mailbox
    hub.loop.run_callback(g.switch, proc, fn, args, kwargs or {})
    if me is None:
        return proc.pid
    if link:
        me.links.add(proc)
        proc.links.add(me)
    if not monitor:
        return proc.pid
    ref = Ref()
    me.monitors[ref] = proc
    proc.watchers[ref] = me
    return proc.pid, ref


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Pid:
    """Start ``fn(*args, **kwargs)`` as a process."""
    return spawn_opt(fn, args, kwargs)


def spawn_link(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Pid:
    """Start a process linked to the caller (atomically: it cannot die unlinked)."""
    return spawn_opt(fn, args, kwargs, link=True)


def spawn_monitor(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Pid, Ref]:
    """Start a process monitored by the caller; returns ``(pid, ref)``."""
    return spawn_opt(fn, args, kwargs, monitor=True)


# -- messages ------------------------------------------------------------------------------
def self_pid() -> Pid:
    """The calling process's pid (a plain greenlet is adopted as a process)."""
    return _me().pid


def send(dest: Pid | str | Ref, message: Any) -> None:
    """Queue ``message`` for ``dest`` (a pid, a registered name or an alias); dropped if it is
    dead or the alias inactive. An unregistered name raises :class:`BadArg`."""
    if isinstance(dest, Ref):
        target = _ALIASES.get(dest)
        if target is not None:
            target.put(message)
        return
    proc = _proc_of(dest)
    if proc is None:
        raise BadArg(f"no process registered as {dest!r}")
    if proc.alive:
        proc.mailbox().put(message)


def receive(match: Any = None, timeout: float | None = None) -> Any:
    """The oldest message (matching ``match``: see :func:`matcher`); unmatched ones stay
    queued in order. Waits up to ``timeout`` seconds (None: forever; 0: poll), then raises
    :class:`~xsactor.actors.mailbox.ReceiveTimeout`."""
    proc = _me()
    if not proc.alive:  # a dead process that caught its Exit: nothing will ever arrive
        Event().wait(timeout)
        raise ReceiveTimeout(f"{proc.pid!r} is dead ({proc.reason!r})")
    proc.waiting = True
    try:
        return proc.mailbox().receive(timeout, matcher(match))
    finally:
        proc.waiting = False


# -- names ---------------------------------------------------------------------------------
def register(name: str, pid: Pid | None = None) -> None:
    """Register ``pid`` (default: the caller) under ``name``. :class:`BadArg` when the name
    is taken, the process already has a name, or it is dead."""
    proc = _live_me() if pid is None else pid._proc
    if not isinstance(name, str) or name == "undefined":
        raise BadArg(f"invalid name {name!r}")
    if name in _NAMES:
        raise BadArg(f"{name!r} is already registered to {_NAMES[name].pid!r}")
    if not proc.alive:
        raise BadArg(f"{proc.pid!r} is not alive")
    if proc.name is not None:
        raise BadArg(f"{proc.pid!r} is already registered as {proc.name!r}")
    proc.name = name
    _NAMES[name] = proc


def unregister(name: str) -> None:
    """Remove ``name``; :class:`BadArg` if it is not registered."""
    proc = _NAMES.pop(name, None)
    if proc is None:
        raise BadArg(f"{name!r} is not registered")
    proc.name = None


def whereis(name: str) -> Pid | None:
    """The pid registered under ``name``, or None."""
    proc = _NAMES.get(name)
    return None if proc is None else proc.pid


def registered() -> list[str]:
    """The registered names."""
    return list(_NAMES)


# -- links, monitors, exit signals ---------------------------------------------------------
def link(pid: Pid) -> None:
    """Link the caller and ``pid`` (once per pair, rule P1). If ``pid`` is dead: a trapping
    caller gets ``('EXIT', pid, 'noproc')``, another raises :class:`NoProc` (rule P2)."""
    me = _live_me()
    target = pid._proc
    if target is me:
        return
    if not target.alive:
        if me.trap:
            me.put(("EXIT", pid, NOPROC))
            return
        raise NoProc(pid)
    me.links.add(target)
    target.links.add(me)


def unlink(pid: Pid) -> None:
    """Remove the link; an EXIT from ``pid`` already queued stays queued (rule P3)."""
    me = _me()  # harmless on a dead process
    target = pid._proc
    me.links.discard(target)
    target.links.discard(me)


def monitor(pid: Pid | str) -> Ref:
    """Monitor ``pid`` (or a registered name): a new reference each call; its end gives
    ``('DOWN', ref, 'process', pid, reason)``, at once with ``noproc`` if it is dead (P7)."""
    me = _live_me()
    ref = Ref()
    target = _proc_of(pid)
    if target is None or not target.alive:
        me.put(("DOWN", ref, "process", pid, NOPROC))
    else:
        me.monitors[ref] = target
        target.watchers[ref] = me
    return ref


def demonitor(ref: Ref, flush: bool = False) -> bool:
    """Stop the monitor ``ref``: no DOWN for it is queued after this; with ``flush``, one
    already queued is removed (P8). True if the monitor was active."""
    me = _me()  # harmless on a dead process
    target = me.monitors.pop(ref, None)
    if target is not None:
        del target.watchers[ref]
    if flush and target is None and me.box is not None:  # an active one had queued nothing
        me.box.purge(lambda m: type(m) is tuple and len(m) == 5 and m[0] == "DOWN"
                     and m[1] is ref)
    return target is not None


def alias(ref: Ref | None = None) -> Ref:
    """Make ``ref`` (default: a new one) an alias of the caller: messages sent to it arrive
    (never dropped by a bound) until :func:`unalias`, then are dropped. Calls use the
    monitor reference as the alias, so a late reply is never delivered."""
    me = _live_me()
    ref = Ref() if ref is None else ref
    if me.aliases is None:
        me.aliases = set()
    me.aliases.add(ref)
    _ALIASES[ref] = me
    return ref


def unalias(ref: Ref) -> bool:
    """Deactivate the caller's alias ``ref``; False if it was not active."""
    me = _me()  # harmless on a dead process
    if me.aliases is None or ref not in me.aliases:
        return False
    me.aliases.discard(ref)
    del _ALIASES[ref]
    return True


def trap_exit(flag: bool) -> bool:
    """Set whether the caller traps exits (signals become EXIT messages); returns the old
    value."""
    me = _me()  # harmless on a dead process
    old, me.trap = me.trap, bool(flag)
    return old


def exit(pid: Pid, reason: Any) -> None:
    """Send an exit signal with ``reason`` to ``pid`` (erlang:exit/2, rule P5). If it kills
    the caller, this raises :class:`Exit`."""
    me = _current()
    sender = me.pid if me is not None else None
    _signal(pid._proc, sender, reason, link=False)


def is_alive(pid: Pid) -> bool:
    """Whether the process is alive (False at once after a fatal signal)."""
    return pid._proc.alive


def release_self(reason: Any = NORMAL) -> None:
    """End the calling adopted process with ``reason`` (links and monitors are told) while its
    greenlet runs on; a later call that needs a process adopts it again under a new pid. For
    the main greenlet and tests."""
    proc = _current()
    if proc is None:
        return
    if not proc.adopted:
        raise BadArg("release_self is for adopted greenlets; a process exits by returning")
    _forget_greenlet(proc)
    _die(proc, reason, unwind=False)


# -- exit hooks and introspection ----------------------------------------------------------
def add_exit_hook(callback: Callable[[Pid, Any], object], pid: Pid | None = None) -> _Hook:
    """Run ``callback(pid, reason)`` when the process (default: the caller) dies, after its
    name is released and before its EXIT/DOWN signals go out. Hooks must not block; one that
    raises is logged. If the process is already dead, the callback runs now with ``noproc``."""
    proc = _me() if pid is None else pid._proc
    hook = _Hook(proc, callback)
    if proc.alive:
        proc.hooks[hook] = None
    else:
        callback(proc.pid, NOPROC)
    return hook


def remove_exit_hook(handle: _Hook) -> bool:
    """Cancel an exit hook; False if it already ran or was removed."""
    return handle.proc.hooks.pop(handle, False) is None


def add_info_provider(key: str, provider: Callable[[Pid], Any]) -> None:
    """Add ``key: provider(pid)`` to the ``resources`` section of :func:`process_info` (e.g.
    the bus's watches); a provider returning None is left out."""
    _INFO[key] = provider


def processes() -> list[Pid]:
    """The live processes."""
    return list(_PROCS)


def pid_of(greenlet: Any = None) -> Pid | None:
    """The pid of the live process running on ``greenlet`` (default: the caller), or None for
    a plain greenlet (never adopts it: for layers such as the bus that only act on processes)."""
    proc = _BY_GREENLET.get(getcurrent() if greenlet is None else greenlet)
    return proc.pid if proc is not None and proc.alive else None


def mailbox(pid: Pid) -> Mailbox | None:
    """The mailbox of the live process ``pid`` (None if it is dead): for layers that deliver
    into it, such as the bus registering a watch on the process's behalf."""
    proc = pid._proc
    return proc.mailbox() if proc.alive else None


def process_info(pid: Pid) -> dict[str, Any] | None:
    """Status, mailbox length, links, monitors, name, trap_exit and resources of a live
    process; None if it is dead."""
    proc = pid._proc
    if not proc.alive:
        return None
    if proc.greenlet is getcurrent():
        status = "running"
    elif proc.waiting:
        status = "waiting"
    else:
        status = "runnable"
    resources = {}
    for key, provider in _INFO.items():
        value = provider(pid)
        if value is not None:
            resources[key] = value
    return {
        "pid": pid,
        "registered_name": proc.name,
        "status": status,
        "message_queue_len": 0 if proc.box is None else len(proc.box),
        "links": [p.pid for p in proc.links],
        "monitors": [p.pid for p in proc.monitors.values()],
        "monitored_by": [p.pid for p in proc.watchers.values()],
        "trap_exit": proc.trap,
        "adopted": proc.adopted,
        "resources": resources,
    }
