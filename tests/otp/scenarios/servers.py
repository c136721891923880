"""The Python halves of the server scenarios (P9, P11); each mirrors ``<name>.escript``."""

from __future__ import annotations

from typing import Any

from xsactor.actors import server as gs
from xsactor.actors.process import (
    ANY,
    ExitError,
    Pid,
    Shutdown,
    exit,
    link,
    monitor,
    receive,
    send,
    spawn,
    trap_exit,
    whereis,
)
from xsactor.testing.otp import Trace, scenario

from .processes import exit_on_stop, flush, wait_down


def catch_call(server: Pid | str, request: Any, timeout: float) -> Any:
    try:
        return gs.call(server, request, timeout)
    except ExitError as exc:
        return ("exit", exc.reason)


class CallServer(gs.Server):
    def init(self, name: str, trace: Trace) -> None:
        self.name, self.trace = name, trace
        self.held: gs.Caller | None = None

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        if request == "ping":
            return "pong"
        if request == "hold":
            self.held = caller
            return gs.NOREPLY
        if request == "later":
            spawn(gs.reply, caller, "from_outside")
            return gs.NOREPLY
        if request == "crash":
            raise RuntimeError("boom")
        if request == "stop_silent":
            raise gs.Stop("custom")
        assert request == "stop_reply"
        raise gs.Stop("normal", reply="bye")

    def handle_cast(self, message: Any) -> None:
        assert message == "release" and self.held is not None
        gs.reply(self.held, "too_late")
        self.held = None

    def terminate(self, reason: Any) -> None:
        self.trace(self.name, "terminate", reason)


@scenario
def gen_call(trace: Trace) -> None:
    s = gs.start(CallServer, "srv", trace, name="srv")
    assert s is not None
    trace("ping", gs.call("srv", "ping"))
    trace("forever", gs.call("srv", "ping", None))
    trace("later", gs.call(s, "later"))
    trace("hold", catch_call(s, "hold", 0.05))
    gs.cast(s, "release")
    trace("ping", gs.call(s, "ping"))
    trace("left", flush())
    trace("unknown", catch_call("nobody", "ping", 1))
    trace("crash", catch_call(s, "crash", 1))
    trace("dead", catch_call(s, "ping", 1))
    s2 = gs.start(CallServer, "s2", trace)
    assert s2 is not None
    trace("stop_silent", catch_call(s2, "stop_silent", 1))
    s3 = gs.start(CallServer, "s3", trace)
    assert s3 is not None
    monitor(s3)
    trace("stop_reply", catch_call(s3, "stop_reply", 1))
    trace("s3", "down", wait_down(s3))
    trace("left", flush())


class TerminateServer(gs.Server):
    def init(self, name: str, trap: bool, trace: Trace) -> None:
        trap_exit(trap)
        self.name, self.trace = name, trace

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        if isinstance(request, tuple) and request[0] == "link":
            link(request[1])
        return "ok"

    def handle_cast(self, message: Any) -> None:
        raise RuntimeError("boom")

    def handle_info(self, message: Any) -> None:
        self.trace(self.name, "info", message)

    def terminate(self, reason: Any) -> None:
        self.trace(self.name, "terminate", reason)


def _started(trace: Trace, name: str, trap: bool) -> Pid:
    pid = gs.start_link(TerminateServer, name, trap, trace)
    assert pid is not None
    return pid


def _exit_reason(pid: Pid) -> Any:
    return receive(("EXIT", pid, ANY))[2]


@scenario
def gen_terminate(trace: Trace) -> None:
    trap_exit(True)
    for name, trap, reason in (("plain", False, "shutdown"), ("trapping", True, "shutdown"),
                               ("trapping_kill", True, "kill"),
                               ("trapping_custom", True, Shutdown("x"))):
        p = _started(trace, name, trap)
        exit(p, reason)
        trace(name, "exit", _exit_reason(p))
    a = _started(trace, "stopped", False)
    gs.stop(a)
    trace("stop", "ok")
    trace("stopped", "exit", _exit_reason(a))
    b = _started(trace, "stopped_custom", False)
    gs.stop(b, "custom", None)
    trace("stop", "ok")
    trace("stopped_custom", "exit", _exit_reason(b))
    c = _started(trace, "crashing", False)
    gs.cast(c, "crash")
    trace("crashing", "exit", _exit_reason(c))
    d = _started(trace, "other", True)
    o = spawn(exit_on_stop, "bye")
    assert gs.call(d, ("link", o)) == "ok"
    send(o, "stop")
    monitor(o)
    wait_down(o)
    assert gs.call(d, "sync") == "ok"
    exit(d, "shutdown")
    trace("other", "exit", _exit_reason(d))
    trace("left", flush())


class NamedServer(gs.Server):
    def init(self, how: str) -> None:
        if how == "ignore":
            raise gs.Ignore()
        if how == "fail":
            raise gs.Stop("bad")
        if how == "crash":
            raise RuntimeError("boom")
        self.how = how

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        return self.how


def _try_start(how: str) -> Any:
    try:
        pid = gs.start(NamedServer, how, name="other")
    except gs.StartError as exc:
        return ("error", exc.reason)
    return "ignore" if pid is None else pid


@scenario
def already_started(trace: Trace) -> None:
    s = gs.start(NamedServer, "ok", name="gs")
    try:
        gs.start(NamedServer, "ok", name="gs")
    except gs.AlreadyStarted as exc:
        trace("already_started", exc.pid is s)
    for how in ("ignore", "fail", "crash"):
        trace(how, _try_start(how), whereis("other"))
    gs.stop("gs")
    trace("stop", "ok", whereis("gs"))
    s2 = gs.start(NamedServer, "again", name="gs")
    trace("restarted", whereis("gs") is s2, gs.call("gs", "get"))
    assert s2 is not None
    gs.stop(s2)
    trace("stop", "ok")
    trace("left", flush())
