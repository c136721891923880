"""The server behaviour, in the style of OTP's gen_server.

Subclass :class:`Server` and override what you need::

    class Counter(Server):
        def init(self, start=0):
            self.count = start

        def handle_call(self, request, caller):
            if request == "get":
                return self.count          # the reply
            raise ValueError(request)      # a crash: terminate runs, the server exits

        def handle_cast(self, message):
            self.count += message

    pid = start_link(Counter, 10, name="counter")
    cast("counter", 5)
    call("counter", "get")                 # 15

The lifecycle, as gen_server's:

- start: the new process builds the server (a class is instantiated with no arguments) and
  runs ``init(*args)`` while the caller waits. ``init`` may raise :class:`Ignore` (start
  returns None) or :class:`Stop` / any exception (start raises :class:`StartError`; the
  failed process is gone, its name free, and the caller gets no exit signal);
- the loop: ``('$gen_call', caller, request)`` → ``handle_call`` (its return value is the
  reply, unless :data:`NOREPLY`: then :func:`reply` later); ``('$gen_cast', msg)`` →
  ``handle_cast``; everything else (watch events, EXIT, DOWN) → ``handle_info``;
- the end: a handler raising :class:`Stop`, :class:`~.process.Exit` or an exception, a
  :func:`stop`, or an EXIT from the parent (the process that started it with
  :func:`start_link`, seen only when the server traps exits) runs ``terminate(reason)``
  and the process exits with ``reason``. A server that does not trap exits is killed by its
  parent's shutdown without ``terminate`` (rule P11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from gevent import GreenletExit

from ..logs import get_logger
from .mailbox import ReceiveTimeout
from .process import (
    alias,
    demonitor,
    exit,
    is_alive,
    monitor,
    receive,
    self_pid,
    send,
    spawn_opt,
    unalias,
    unlink,
    whereis,
)
from .process import register as _register
from .terms import (
    ANY,
    NOPROC,
    NORMAL,
    BadArg,
    Exit,
    ExitError,
    NoProc,
    Pid,
    Ref,
    is_normal_reason,
    is_reason,
)

__all__ = ["NOREPLY", "AlreadyStarted", "CallTimeout", "Caller", "Ignore", "Server",
           "ServerExit", "StartError", "Stop", "call", "cast", "reply", "start", "start_link",
           "stop"]

_log = get_logger(__name__)


class Caller(NamedTuple):
    """Who made a call (gen_server's ``From``): pass it to :func:`reply`."""

    pid: Pid
    ref: Ref


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOREPLY"


NOREPLY: Any = _NoReply()
"""Returned by ``handle_call``: the reply will be sent later with :func:`reply`."""


class Stop(Exception):
    """Raised by a handler (or ``init``) to stop the server with ``reason``; from
    ``handle_call``, ``reply`` (if given) is sent after ``terminate``."""

    def __init__(self, reason: Any = NORMAL, reply: Any = NOREPLY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class Ignore(Exception):
    """Raised by ``init``: the server does not start, and start returns None."""


class StartError(ExitError):
    """The server did not start: ``init`` failed (``.reason``), or the start timed out."""


class AlreadyStarted(StartError):
    """The name is taken; ``.pid`` holds it (OTP's ``{already_started, Pid}``)."""

    def __init__(self, name: str, pid: Pid) -> None:
        super().__init__(("already_started", pid), f"{name!r} is already started as {pid!r}")
        self.pid = pid


class CallTimeout(ExitError, TimeoutError):
    """No reply within the call's timeout (a later reply is dropped)."""

    def __init__(self, server: Any, timeout: float | None) -> None:
        super().__init__("timeout", f"no reply from {server!r} within {timeout} s")


class ServerExit(ExitError):
    """The server exited during the call (``.reason`` is its exit reason)."""


class Server:
    """Base class of servers: override the callbacks; the instance's attributes are its
    state. ``self.pid`` is set before ``init``."""

    pid: Pid

    def init(self, *args: Any) -> None:
        """Set up the state (runs in the new process, while the starter waits)."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a :func:`call`: return the reply, or :data:`NOREPLY`."""
        raise NotImplementedError(f"{type(self).__name__} got an unexpected call {request!r}")

    def handle_cast(self, message: Any) -> None:
        """Handle a :func:`cast`."""
        raise NotImplementedError(f"{type(self).__name__} got an unexpected cast {message!r}")

    def handle_info(self, message: Any) -> None:
        """Any other message (watch events, EXIT, DOWN); by default logged and dropped."""
        _log.warning("server got an unexpected message", pid=repr(self.pid),
                     message=repr(message))

    def terminate(self, reason: Any) -> None:
        """Clean up before the process exits with ``reason`` (not run when it is killed)."""


ServerSpec = type[Server] | Server | Callable[[], Server]


# -- starting ------------------------------------------------------------------------------
def start(server: ServerSpec, *args: Any, name: str | None = None,
          timeout: float | None = None, link: bool = False) -> Pid | None:
    """Start a server process, run ``init(*args)``, return its pid once ``init`` returned
    (None if ``init`` raised :class:`Ignore`). Raises :class:`AlreadyStarted` when ``name``
    is taken, :class:`StartError` when ``init`` failed or ``timeout`` passed."""
    if name is not None:
        holder = whereis(name)
        if holder is not None:
            raise AlreadyStarted(name, holder)
    starter = self_pid()
    tag = alias()
    pid, ref = spawn_opt(_serve, (server, args, tag, starter if link else None), link=link,
                         monitor=True)
    try:
        if name is not None:
            _register(name, pid)
    except BadArg:
        _abandon(pid, ref, link)
        unalias(tag)
        raise
    try:
        message = receive(lambda m: type(m) is tuple and len(m) > 1 and (
            (m[0] == "$ack" and m[1] is tag) or (m[0] == "DOWN" and m[1] is ref)), timeout)
    except ReceiveTimeout:
        _abandon(pid, ref, link)
        raise StartError("timeout", f"{server!r} did not start within {timeout} s") from None
    finally:
        unalias(tag)
    if message[0] == "DOWN":
        raise StartError(message[4])
    _ack, _tag, status, value = message
    if status == "ok":
        demonitor(ref, flush=True)
        return pid
    receive(("DOWN", ref, "process", pid, ANY))  # gone, its name released: then report
    if status == "ignore":
        return None
    raise StartError(value)


def _abandon(pid: Pid, ref: Ref, linked: bool) -> None:
    """Kill a server that will not be started, with no EXIT or DOWN left for the caller."""
    if linked:
        unlink(pid)
    exit(pid, "kill")
    demonitor(ref, flush=True)


def start_link(server: ServerSpec, *args: Any, name: str | None = None,
               timeout: float | None = None) -> Pid | None:
    """:func:`start`, linked to the caller (atomically); the caller is the server's parent,
    whose exit signal makes a trapping server run ``terminate``."""
    return start(server, *args, name=name, timeout=timeout, link=True)


def _serve(spec: ServerSpec, args: tuple[Any, ...], tag: Ref, parent: Pid | None) -> None:
    me = self_pid()
    try:
        server = spec if isinstance(spec, Server) else spec()
        server.pid = me
        server.init(*args)
    except Ignore:
        _init_failed(tag, parent, "ignore", None, NORMAL)
    except Stop as stop:
        _init_failed(tag, parent, "error", stop.reason, stop.reason)
    except Exit as exc:
        if not is_alive(me):
            raise  # killed by a signal while in init
        _init_failed(tag, parent, "error", exc.reason, exc.reason)
    except (GreenletExit, SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # Exception, and gevent.Timeout: a crash
        _log.error("server init crashed", pid=repr(me), error=repr(exc), exc_info=exc)
        _init_failed(tag, parent, "error", exc, exc)
    send(tag, ("$ack", tag, "ok", None))
    _loop(server, me if parent is None else parent)


def _init_failed(tag: Ref, parent: Pid | None, status: str, value: Any, reason: Any) -> None:
    if parent is not None:
        unlink(parent)  # the starter hears of the failure from start, not as a signal
    send(tag, ("$ack", tag, status, value))
    raise Exit(reason)


# -- the loop ------------------------------------------------------------------------------
def _loop(server: Server, parent: Pid) -> None:
    while True:
        message = receive()
        stop = None
        try:
            ending = _handle(server, message, parent)
        except Stop as exc:
            ending, stop = (exc.reason,), exc
        except Exit as exc:
            if not is_alive(server.pid):
                raise  # killed by a signal: no terminate
            ending = (exc.reason,)
        except (GreenletExit, SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # Exception, and gevent.Timeout: a crash
            ending = (exc,)
        if ending is not None:
            _terminate(server, ending[0], message, stop)


def _handle(server: Server, message: Any, parent: Pid) -> tuple[Any] | None:
    """Dispatch one message; ``(reason,)`` when it ends the server."""
    if type(message) is tuple and message:
        tag = message[0]
        if tag == "$gen_call" and len(message) == 3:
            answer = server.handle_call(message[2], message[1])
            if answer is not NOREPLY:
                reply(message[1], answer)
            return None
        if tag == "$gen_cast" and len(message) == 2:
            server.handle_cast(message[1])
            return None
        if tag == "$gen_stop" and len(message) == 2:
            return (message[1],)
        if (tag == "EXIT" and len(message) == 3 and message[1] is parent
                and parent is not server.pid):
            return (message[2],)
    server.handle_info(message)
    return None


def _terminate(server: Server, reason: Any, last: Any, stop: Stop | None = None) -> None:
    """Run ``terminate(reason)``, send a pending stop reply, exit with ``reason``."""
    try:
        server.terminate(reason)
    except Exception as exc:
        reason = exc
    finally:
        if stop is not None and stop.reply is not NOREPLY and type(last) is tuple:
            reply(last[1], stop.reply)
    if not is_normal_reason(reason):
        _log.error("server terminating", pid=repr(server.pid), last_message=repr(last),
                   reason=repr(reason),
                   exc_info=reason if isinstance(reason, BaseException) else None)
    raise Exit(reason)


# -- client side ---------------------------------------------------------------------------
def _resolve(server: Pid | str) -> Pid | None:
    return server if isinstance(server, Pid) else whereis(server)


def call(server: Pid | str, request: Any, timeout: float | None = 5.0) -> Any:
    """Send ``request`` and wait for the reply (``timeout`` seconds; None: forever).

    Raises :class:`NoProc` (no such server), :class:`CallTimeout` (a later reply is
    dropped) or :class:`ServerExit` (it exited during the call, ``.reason``).
    """
    pid = _resolve(server)
    if pid is None:
        raise NoProc(server)
    if pid is self_pid():
        raise ExitError("calling_self", f"{server!r} called itself")
    ref = monitor(pid)
    alias(ref)
    send(pid, ("$gen_call", Caller(self_pid(), ref), request))
    try:
        message = receive(lambda m: type(m) is tuple and len(m) > 1 and m[1] is ref
                          and (m[0] == "$reply" or m[0] == "DOWN"), timeout)
    except ReceiveTimeout:
        raise CallTimeout(server, timeout) from None
    finally:
        unalias(ref)
        demonitor(ref, flush=True)
    if message[0] == "$reply":
        return message[2]
    reason = message[4]
    if is_reason(reason, NOPROC):
        raise NoProc(server)
    raise ServerExit(reason, f"{server!r} exited during the call: {reason!r}")


def reply(caller: Caller, value: Any) -> None:
    """Send ``value`` to a waiting caller (dropped if it gave up or is gone)."""
    send(caller.ref, ("$reply", caller.ref, value))


def cast(server: Pid | str, message: Any) -> None:
    """Send ``message`` to ``handle_cast``; never fails (a missing server drops it)."""
    pid = _resolve(server)
    if pid is not None:
        send(pid, ("$gen_cast", message))


def stop(server: Pid | str, reason: Any = NORMAL, timeout: float | None = None) -> None:
    """Stop the server: it runs ``terminate(reason)`` and exits; returns when it is gone.
    Raises :class:`NoProc`, :class:`CallTimeout`, or :class:`ServerExit` if it exited with
    another reason."""
    pid = _resolve(server)
    if pid is None:
        raise NoProc(server)
    ref = monitor(pid)
    send(pid, ("$gen_stop", reason))
    try:
        got = receive(("DOWN", ref, "process", pid, ANY), timeout)[4]
    except ReceiveTimeout:
        demonitor(ref, flush=True)
        raise CallTimeout(server, timeout) from None
    if is_reason(got, NOPROC):
        raise NoProc(server)
    if got != reason:
        raise ServerExit(got, f"{server!r} exited with {got!r}")
