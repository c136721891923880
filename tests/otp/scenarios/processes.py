"""The Python halves of the process scenarios (P1-P10); each mirrors ``<name>.escript``."""

from __future__ import annotations

from typing import Any

from xsactor.actors.mailbox import ReceiveTimeout
from xsactor.actors.process import (
    ANY,
    KILL,
    NORMAL,
    BadArg,
    Exit,
    NoProc,
    Pid,
    Shutdown,
    demonitor,
    exit,
    is_alive,
    link,
    monitor,
    process_info,
    receive,
    register,
    self_pid,
    send,
    spawn,
    spawn_link,
    spawn_monitor,
    trap_exit,
    unlink,
    whereis,
)
from xsactor.testing.otp import Trace, scenario

# -- helpers the escripts share through trace.hrl -------------------------------------------


def flush() -> list[Any]:
    """Every queued message, oldest first."""
    messages = []
    while True:
        try:
            messages.append(receive(timeout=0))
        except ReceiveTimeout:
            return messages


def wait_down(pid: Pid) -> Any:
    return receive(("DOWN", ANY, "process", pid, ANY))[4]


def receive_or(pattern: Any, default: Any) -> Any:
    """``receive Pattern -> M after 0 -> Default end``."""
    try:
        return receive(pattern, timeout=0)
    except ReceiveTimeout:
        return default


def exit_on_stop(reason: Any) -> None:
    receive("stop")
    raise Exit(reason)


def wait_stop() -> None:
    receive("stop")


def die(how: Any) -> None:
    """``die/1`` of the escripts: return, crash with ``boom``, or exit with ``how``."""
    if how == NORMAL:
        return
    if how == "crash":
        raise RuntimeError("boom")
    raise Exit(how)


REASONS: list[Any] = [NORMAL, KILL, "shutdown", "custom", Shutdown("x")]


# -- scenarios -------------------------------------------------------------------------------
@scenario
def link_twice(trace: Trace) -> None:
    trap_exit(True)
    p = spawn(exit_on_stop, "bye")
    link(p)
    link(p)
    info = process_info(self_pid())
    assert info is not None
    trace("links_to_p", info["links"].count(p))
    send(p, "stop")
    trace("got", receive())
    trace("left", flush())
    q = spawn(exit_on_stop, "bye")
    link(q)
    link(q)
    unlink(q)
    monitor(q)
    send(q, "stop")
    trace("down", wait_down(q))
    trace("left", flush())


@scenario
def spawn_link_atomic(trace: Trace) -> None:
    trap_exit(True)
    p = spawn_link(die, "early")
    trace("trapping", receive(("EXIT", p, ANY))[2])
    trap_exit(False)

    def middle() -> None:
        spawn_link(die, "crash")
        receive("never")

    m, _ = spawn_monitor(middle)
    trace("middle", wait_down(m))
    trace("left", flush())


@scenario
def link_dead(trace: Trace) -> None:
    d, _ = spawn_monitor(die, NORMAL)
    trace("dead", wait_down(d))
    try:
        link(d)
        trace("linked", True)
    except NoProc as exc:
        trace("caught", "error", exc.reason)
    trace("self_alive", True)
    uncaught, _ = spawn_monitor(link, d)
    trace("uncaught", wait_down(uncaught))
    trap_exit(True)
    link(d)
    trace("trapping", "got", receive())
    trace("left", flush())


@scenario
def unlink_flush(trace: Trace) -> None:
    trap_exit(True)
    p = spawn_link(exit_on_stop, "bye")
    ref = monitor(p)
    send(p, "stop")
    trace("down", receive(("DOWN", ref, "process", p, ANY))[4])
    unlink(p)
    trace("flushed", receive_or(("EXIT", p, ANY), (None, None, "none"))[2])
    trace("left", flush())
    q = spawn_link(exit_on_stop, "bye")
    unlink(q)
    monitor(q)
    send(q, "stop")
    trace("down", wait_down(q))
    trace("left", flush())


@scenario
def names_before_down(trace: Trace) -> None:
    parent = self_pid()

    def server() -> None:
        register("srv")
        send(parent, "registered")
        receive("stop")

    p = spawn(server)
    receive("registered")
    trace("whereis", whereis("srv") is p)
    try:
        register("srv")
    except BadArg:
        trace("register", "taken", "badarg")
    ref = monitor(p)
    send(p, "stop")
    why = receive(("DOWN", ref, "process", p, ANY))[4]
    trace("down", why, "whereis", whereis("srv"))
    q = spawn(wait_stop)
    register("srv", q)
    trace("register_again", True)
    trace("whereis", whereis("srv") is q)
    monitor(q)
    send("srv", "stop")
    trace("down", wait_down(q), "whereis", whereis("srv"))
    try:
        send("srv", "hello")
    except BadArg:
        trace("send_to_free_name", "badarg")


def _reporter(parent: Pid, trap: bool) -> None:
    trap_exit(trap)
    send(parent, "ready")
    receive("report")
    send(parent, (self_pid(), flush()))
    receive("stop")


@scenario
def exit_signals(trace: Trace) -> None:
    parent = self_pid()
    for trap in (False, True):
        for reason in REASONS:
            p, ref = spawn_monitor(_reporter, parent, trap)
            receive("ready")
            exit(p, reason)
            send(p, "report")
            _alive_or_died(trace, p, ref, "trap", trap, reason)
    trace("left", flush())


def _alive_or_died(trace: Trace, pid: Pid, ref: Any, *head: Any, stop: bool = True) -> None:
    """``receive {'DOWN', Ref, ...} -> died; {Pid, Got} -> alive (then stop it) end``."""
    message = receive(lambda m: m[:2] == ("DOWN", ref) or (type(m) is tuple and m[0] is pid))
    if message[0] == "DOWN":
        trace(*head, "died", message[4])
    else:
        trace(*head, "alive", message[1])
        if stop:
            send(pid, "stop")
        trace("then", wait_down(pid))


@scenario
def link_signals(trace: Trace) -> None:
    parent = self_pid()

    def linked(trap: bool, how: Any) -> None:
        trap_exit(trap)

        def child() -> None:
            receive("go")
            die(how)

        c = spawn_link(child)
        cref = monitor(c)
        send(c, "go")
        receive(("DOWN", cref, "process", c, ANY))
        send(parent, (self_pid(), flush()))
        receive("stop")

    for trap in (False, True):
        for how in (NORMAL, "shutdown", "custom", "crash", KILL, Shutdown("x")):
            p, ref = spawn_monitor(linked, trap, how)
            _alive_or_died(trace, p, ref, "trap", trap, how)
    trace("left", flush())


@scenario
def exit_self(trace: Trace) -> None:
    parent = self_pid()

    def signal_self(trap: bool, reason: Any) -> None:
        trap_exit(trap)
        exit(self_pid(), reason)
        send(parent, (self_pid(), flush()))

    for trap in (False, True):
        for reason in (NORMAL, "custom", KILL):
            p, ref = spawn_monitor(signal_self, trap, reason)
            _alive_or_died(trace, p, ref, "trap", trap, reason, stop=False)
    trace("left", flush())


def _watcher(a: Pid, trap: bool) -> tuple[Pid, Any]:
    parent = self_pid()

    def watch() -> None:
        trap_exit(trap)
        link(a)
        send(parent, (self_pid(), "linked"))
        send(parent, (self_pid(), receive()))

    w = spawn(watch)
    ref = monitor(w)
    receive((w, "linked"))
    return w, ref


@scenario
def killed_propagation(trace: Trace) -> None:
    def victim() -> None:
        receive("die")
        raise Exit(KILL)

    for kill in (lambda a: exit(a, KILL), lambda a: send(a, "die")):
        a = spawn(victim)
        aref = monitor(a)
        b, bref = _watcher(a, False)
        c, cref = _watcher(a, True)
        kill(a)
        trace("a", "died", receive(("DOWN", aref, "process", a, ANY))[4])
        trace("b", "died", receive(("DOWN", bref, "process", b, ANY))[4])
        trace("c", "got", receive((c, ANY))[1])
        trace("c", "died", receive(("DOWN", cref, "process", c, ANY))[4])
    trace("left", flush())


@scenario
def monitors(trace: Trace) -> None:
    p = spawn(exit_on_stop, "bye")
    r1 = monitor(p)
    r2 = monitor(p)
    trace("distinct", r1 is not r2)
    send(p, "stop")
    d1 = receive(("DOWN", r1, "process", p, ANY))[4]
    d2 = receive(("DOWN", r2, "process", p, ANY))[4]
    trace("downs", d1, d2)
    r3 = monitor(p)
    trace("dead", receive(("DOWN", r3, "process", p, ANY))[4])
    parent = self_pid()
    t = spawn(wait_stop)

    def holder() -> None:
        monitor(t)
        send(parent, "ready")
        raise Exit("gone")

    h, href = spawn_monitor(holder)
    receive("ready")
    trace("holder", "died", receive(("DOWN", href, "process", h, ANY))[4])
    trace("target_alive", is_alive(t))
    tref = monitor(t)
    send(t, "stop")
    trace("target", "died", receive(("DOWN", tref, "process", t, ANY))[4])
    trace("left", flush())


@scenario
def demonitor_flush(trace: Trace) -> None:
    p = spawn(wait_stop)
    r0 = monitor(p)
    trace("demonitor_active", demonitor(r0))
    r1 = monitor(p)
    r2 = monitor(p)
    send(p, "stop")
    first = receive(lambda m: m[:2] in (("DOWN", r1), ("DOWN", r2)))
    trace("down", first[4])
    other = r2 if first[1] is r1 else r1
    demonitor(other, flush=True)
    trace("demonitor_flush", True)
    trace("left", flush())
    trace("demonitor_again", demonitor(other))


@scenario
def message_order(trace: Trace) -> None:
    parent = self_pid()

    def sender(name: str) -> None:
        for i in range(1, 6):
            send(parent, (name, i))

    for name in ("a", "b"):
        spawn(sender, name)
    trace("first", receive(("b", 3)))
    rest = [receive() for _ in range(9)]
    trace("a", [i for n, i in rest if n == "a"])
    trace("b", [i for n, i in rest if n == "b"])
    me = self_pid()
    send(me, ("x", 1))
    send(me, ("y", 2))
    send(me, ("x", 3))
    trace("selective", receive(("y", ANY)))
    trace("left", flush())
