"""The Python halves of the supervisor scenarios (``sup_*.escript``, with ``sup_common.hrl``).

Each function mirrors its escript line by line, with the helpers of ``sup_common.hrl``:
workers registered under their names, ``start``/``stop`` lines printed by the children, the
supervisor's structlog reports turned into ``report <sup> <kind> <child> [<reason>]`` lines
(OTP's progress and supervisor reports, printed by a logger handler in the escripts), and call
results as ``<call> -> ok ...`` / ``error ...``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import gevent
import structlog

from xsactor.actors import process as proc
from xsactor.actors import server
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.testing.otp import Trace, scenario


# -- the trace format (sup_common.hrl's sfmt) --------------------------------------------------
def sfmt(term: Any) -> str:
    if isinstance(term, proc.Pid):
        info = proc.process_info(term)
        return info["registered_name"] if info and info["registered_name"] else "pid"
    if term is None:
        return "undefined"
    if isinstance(term, proc.Shutdown):
        return "{shutdown," + sfmt(term.term) + "}"
    if isinstance(term, BaseException):
        return sfmt(term.args[0]) if term.args else type(term).__name__
    if isinstance(term, tuple):
        return "{" + ",".join(sfmt(item) for item in term) + "}"
    if isinstance(term, list):
        return "[" + ",".join(sfmt(item) for item in term) + "]"
    return str(term)


class Tracer:
    """The scenario's trace, with the supervisor's reports routed into it."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __call__(self, line: str) -> None:
        self.trace.lines.append(line)

    def report(self, _logger: Any, _method: str,
               event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        kind = event.get("report")
        if kind is not None:
            line = f"report {event['supervisor']} {kind} {sfmt(event['child_id'])}"
            if kind != "progress":
                line += f" {sfmt(event['reason'])}"
            self(line)
        raise structlog.DropEvent

    @contextlib.contextmanager
    def reports(self) -> Iterator[None]:
        was = structlog.is_configured()
        old = structlog.get_config()
        structlog.configure(processors=[self.report], cache_logger_on_first_use=False)
        try:
            yield
        finally:
            if was:
                structlog.configure(**old)
            else:
                structlog.reset_defaults()


def run(fn: Callable[[Tracer], None]) -> Callable[[Trace], None]:
    """The scenario body runs as a process trapping exits (the escript's main process)."""
    @functools.wraps(fn)
    def wrapped(trace: Trace) -> None:
        tracer = Tracer(trace)
        done = gevent.event.Event()
        failure: list[BaseException] = []

        def main() -> None:
            proc.trap_exit(True)
            try:
                fn(tracer)
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                done.set()

        with tracer.reports():
            proc.spawn(main)
            done.wait()
        if failure:
            raise failure[0]
    return scenario(wrapped)


# -- children (sup_common.hrl's start_worker and friends) --------------------------------------
def start_worker(t: Tracer, name: str, kind: str = "trap") -> proc.Pid:
    t(f"start {name}")
    parent = proc.self_pid()
    pid = proc.spawn_link(worker, t, parent, name, kind)
    proc.receive(("ready", pid))  # it traps exits before the supervisor goes on
    proc.register(name, pid)
    return pid


def worker(t: Tracer, parent: proc.Pid, name: str, kind: str) -> None:
    if kind != "plain":
        proc.trap_exit(True)
    proc.send(parent, ("ready", proc.self_pid()))
    while True:
        message = proc.receive()
        if message[0] == "EXIT":
            reason = message[2]
            if kind == "stubborn":
                t(f"ignore {name} {sfmt(reason)}")
                continue
            t(f"stop {name} {sfmt(reason)}")
            if kind == "slow":
                gevent.sleep(0.05)
            raise proc.Exit(reason)
        if message[0] == "crash":
            raise proc.Exit(message[1])


class StartFailed(Exception):
    """What a failing start raises (the escript's start returns ``{error, Reason}``)."""


def start_failing(t: Tracer, name: str, reason: str) -> proc.Pid:
    t(f"start {name}")
    raise StartFailed(reason)


def start_ignore(t: Tracer, name: str) -> str:
    t(f"start {name}")
    return "ignore"


def start_flaky(t: Tracer, name: str, kind: str, ok: int) -> proc.Pid:
    starts = flaky_counts.get(name, 0)
    flaky_counts[name] = starts + 1
    if starts < ok:
        return start_worker(t, name, kind)
    return start_failing(t, name, "nope")


flaky_counts: dict[str, int] = {}


def start_sup(t: Tracer, name: str, flags: SupFlags, specs: list[ChildSpec]) -> proc.Pid:
    t(f"start {name}")
    return sup.start_link(flags, specs, name=name)


def spec(t: Tracer, child_id: str, kind: str = "trap", **options: Any) -> ChildSpec:
    return ChildSpec(child_id, functools.partial(start_worker, t, child_id, kind), **options)


# -- the test process's helpers ----------------------------------------------------------------
def crash(name: str, reason: Any, supervisor: str) -> None:
    """Make ``name`` end with ``reason``; wait until ``supervisor`` handled its EXIT."""
    pid = proc.whereis(name)
    assert pid is not None, name
    ref = proc.monitor(pid)
    proc.send(pid, ("crash", reason))
    proc.receive(("DOWN", ref, "process", pid, proc.ANY))
    sync(supervisor)


def sync(supervisor: str) -> None:
    with contextlib.suppress(proc.ExitError):
        sup.count_children(supervisor)


def stop(t: Tracer, supervisor: str) -> None:
    pid = proc.whereis(supervisor)
    assert pid is not None, supervisor
    proc.exit(pid, "shutdown")
    await_exit(t, supervisor)


def await_exit(t: Tracer, supervisor: str) -> None:
    message = proc.receive(("EXIT", proc.ANY, proc.ANY))
    t(f"exit {supervisor} {sfmt(message[2])}")


def show(t: Tracer, what: str, call: Callable[[], Any], *, pid: bool = False) -> None:
    """A call's result as the escript's result/1 prints it."""
    try:
        value = call()
    except sup.AlreadyStarted as exc:
        t(f"{what} -> error already_started {sfmt(exc.pid)}")
    except sup.FailedToStartChild as exc:
        t(f"{what} -> error failed_to_start_child {sfmt(exc.child_id)} {sfmt(exc.reason)}")
    except sup.SupervisorError as exc:
        t(f"{what} -> error {sfmt(exc.reason)}")
    else:
        t(f"{what} -> ok" + (f" {sfmt(value)}" if pid else ""))


def which(t: Tracer, supervisor: str) -> None:
    rows = [f"{sfmt(row.id)}:{sfmt(row.pid)}" for row in sup.which_children(supervisor)]
    t("which_children -> " + " ".join(rows))


def count(t: Tracer, supervisor: str) -> None:
    c = sup.count_children(supervisor)
    t(f"count_children -> specs={c['specs']} active={c['active']} "
      f"supervisors={c['supervisors']} workers={c['workers']}")


def count_dyn(t: Tracer, supervisor: str) -> None:
    """OTP's simple_one_for_one counts one spec, the dynamic supervisor (Elixir's) one per
    child: the rest they agree on."""
    c = sup.count_children(supervisor)
    t(f"count_children -> active={c['active']} supervisors={c['supervisors']} "
      f"workers={c['workers']}")


# -- the scenarios -----------------------------------------------------------------------------
def _strategy(t: Tracer, strategy: str, ids: str) -> None:
    sup.start_link(SupFlags(strategy), [spec(t, i) for i in ids], name="sup")  # type: ignore[arg-type]
    crash("b", "boom", "sup")
    which(t, "sup")
    stop(t, "sup")


@run
def sup_one_for_one(t: Tracer) -> None:
    _strategy(t, "one_for_one", "abc")


@run
def sup_one_for_all(t: Tracer) -> None:
    _strategy(t, "one_for_all", "abc")


@run
def sup_rest_for_one(t: Tracer) -> None:
    _strategy(t, "rest_for_one", "abcd")


@run
def sup_intensity(t: Tracer) -> None:
    sup.start_link(SupFlags("one_for_all", intensity=2, period=3600),
                   [spec(t, i) for i in "abc"], name="sup")
    crash("a", "boom", "sup")
    crash("c", "boom", "sup")
    which(t, "sup")
    crash("b", "boom", "sup")
    await_exit(t, "sup")


@run
def sup_restart_types(t: Tracer) -> None:
    specs = [spec(t, "p1"), spec(t, "p2", restart="permanent"),
             *(spec(t, f"t{i}", restart="transient") for i in range(1, 5)),
             spec(t, "x1", restart="temporary"), spec(t, "x2", restart="temporary")]
    sup.start_link(SupFlags("one_for_one", intensity=10), specs, name="sup")
    for name, reason in [("p1", "normal"), ("p2", "shutdown"), ("t1", "normal"),
                         ("t2", "shutdown"), ("t3", proc.Shutdown("bye")), ("t4", "boom"),
                         ("x1", "normal"), ("x2", "boom")]:
        crash(name, reason, "sup")
    which(t, "sup")
    count(t, "sup")
    stop(t, "sup")


@run
def sup_temporary_sibling(t: Tracer) -> None:
    sup.start_link(SupFlags("one_for_all"),
                   [spec(t, "a"), spec(t, "x", restart="temporary"), spec(t, "c")], name="sup")
    crash("c", "boom", "sup")
    which(t, "sup")
    stop(t, "sup")


@run
def sup_failed_init(t: Tracer) -> None:
    specs = [spec(t, "a"), spec(t, "b"),
             ChildSpec("c", functools.partial(start_failing, t, "c", "nope")), spec(t, "d")]
    show(t, "start_link", lambda: sup.start_link(SupFlags(), specs, name="sup"), pid=True)


@run
def sup_failed_restart(t: Tracer) -> None:
    flaky_counts.clear()
    specs = [spec(t, "a"), ChildSpec("b", functools.partial(start_flaky, t, "b", "trap", 1)),
             spec(t, "c")]
    sup.start_link(SupFlags("one_for_one", intensity=3, period=3600), specs, name="sup")
    crash("b", "boom", "sup")
    await_exit(t, "sup")


@run
def sup_ignore(t: Tracer) -> None:
    specs = [spec(t, "a"), ChildSpec("i", functools.partial(start_ignore, t, "i")),
             ChildSpec("j", functools.partial(start_ignore, t, "j"), restart="temporary")]
    sup.start_link(SupFlags(), specs, name="sup")
    which(t, "sup")
    show(t, "restart_child i", lambda: sup.restart_child("sup", "i"), pid=True)
    show(t, "start_child k", lambda: sup.start_child(
        "sup", ChildSpec("k", functools.partial(start_ignore, t, "k"))), pid=True)
    show(t, "start_child l", lambda: sup.start_child(
        "sup", ChildSpec("l", functools.partial(start_ignore, t, "l"), restart="temporary")),
        pid=True)
    which(t, "sup")
    count(t, "sup")
    stop(t, "sup")


@run
def sup_shutdown_modes(t: Tracer) -> None:
    specs = [spec(t, "inf", "slow", shutdown="infinity"),
             spec(t, "tmo", "stubborn", shutdown=0.1),
             spec(t, "bk", "trap", shutdown="brutal_kill"),
             spec(t, "ok", shutdown=1.0)]
    sup.start_link(SupFlags(), specs, name="sup")
    show(t, "terminate_child bk", lambda: sup.terminate_child("sup", "bk"))
    show(t, "restart_child bk", lambda: sup.restart_child("sup", "bk"), pid=True)
    stop(t, "sup")


@run
def sup_child_calls(t: Tracer) -> None:
    sup.start_link(SupFlags(), [spec(t, "a"), spec(t, "b")], name="sup")

    def start(child: ChildSpec) -> Callable[[], Any]:
        return lambda: sup.start_child("sup", child)

    show(t, "start_child a", start(spec(t, "a")), pid=True)
    show(t, "start_child c", start(spec(t, "c")), pid=True)
    show(t, "start_child e", start(ChildSpec("e", functools.partial(
        start_failing, t, "e", "nope"))), pid=True)
    which(t, "sup")
    show(t, "restart_child a", lambda: sup.restart_child("sup", "a"), pid=True)
    show(t, "restart_child z", lambda: sup.restart_child("sup", "z"), pid=True)
    show(t, "delete_child a", lambda: sup.delete_child("sup", "a"))
    show(t, "terminate_child a", lambda: sup.terminate_child("sup", "a"))
    show(t, "terminate_child a", lambda: sup.terminate_child("sup", "a"))
    show(t, "terminate_child z", lambda: sup.terminate_child("sup", "z"))
    show(t, "start_child a", start(spec(t, "a")), pid=True)
    which(t, "sup")
    count(t, "sup")
    show(t, "restart_child a", lambda: sup.restart_child("sup", "a"), pid=True)
    show(t, "terminate_child c", lambda: sup.terminate_child("sup", "c"))
    show(t, "delete_child c", lambda: sup.delete_child("sup", "c"))
    show(t, "delete_child c", lambda: sup.delete_child("sup", "c"))
    show(t, "restart_child c", lambda: sup.restart_child("sup", "c"), pid=True)
    show(t, "start_child x", start(spec(t, "x", restart="temporary")), pid=True)
    show(t, "terminate_child x", lambda: sup.terminate_child("sup", "x"))
    show(t, "restart_child x", lambda: sup.restart_child("sup", "x"), pid=True)
    which(t, "sup")
    count(t, "sup")
    stop(t, "sup")


@run
def sup_auto_shutdown(t: Tracer) -> None:
    sup.start_link(SupFlags(auto_shutdown="any_significant"), [
        spec(t, "a"), spec(t, "s1", restart="transient", significant=True),
        spec(t, "s2", restart="temporary", significant=True)], name="sup")
    show(t, "terminate_child s2", lambda: sup.terminate_child("sup", "s2"))
    which(t, "sup")
    crash("s1", "normal", "sup")
    await_exit(t, "sup")
    sup.start_link(SupFlags(auto_shutdown="all_significant"), [
        spec(t, "b"), spec(t, "s3", restart="transient", significant=True),
        spec(t, "s4", restart="temporary", significant=True)], name="sup2")
    crash("s3", "shutdown", "sup2")
    which(t, "sup2")
    crash("s4", "normal", "sup2")
    await_exit(t, "sup2")


def start_dyn(t: Tracer, kind: str, *, name: str) -> proc.Pid:
    return start_worker(t, name, kind)


@run
def sup_dynamic(t: Tracer) -> None:
    sup.start_dynamic_link(name="dsup", extra_arguments=("plain",), intensity=3)

    def start(name: str) -> Callable[[], Any]:
        return lambda: sup.start_child(
            "dsup", ChildSpec("ignored", functools.partial(start_dyn, t, name=name)))

    show(t, "start_child d1", start("d1"), pid=True)
    show(t, "start_child d2", start("d2"), pid=True)
    count_dyn(t, "dsup")
    crash("d1", "boom", "dsup")
    count_dyn(t, "dsup")
    show(t, "terminate_child d2", lambda: sup.terminate_child("dsup", proc.whereis("d2")))
    show(t, "terminate_child d2", lambda: sup.terminate_child("dsup", proc.self_pid()))
    count_dyn(t, "dsup")
    stop(t, "dsup")


@run
def sup_nested(t: Tracer) -> None:
    inner = ChildSpec("inner", functools.partial(
        start_sup, t, "inner", SupFlags(intensity=0), [spec(t, "i1"), spec(t, "i2")]),
        type="supervisor")
    sup.start_link(SupFlags(), [spec(t, "o1"), inner, spec(t, "o2")], name="outer")
    show(t, "start_child i3", lambda: sup.start_child("inner", spec(t, "i3")), pid=True)
    crash("i2", "boom", "inner")
    sync("outer")
    which(t, "outer")
    which(t, "inner")
    stop(t, "outer")


class TracedServer(server.Server):
    """sup_common.hrl's gen_server: traps exits or not, prints its terminate."""

    def __init__(self, t: Tracer) -> None:
        self.t = t

    def init(self, name: str, trap: bool) -> None:
        self.name = name
        proc.trap_exit(trap)

    def terminate(self, reason: Any) -> None:
        self.t(f"terminate {self.name} {sfmt(reason)}")


def start_server(t: Tracer, name: str, trap: bool) -> proc.Pid | None:
    t(f"start {name}")
    return server.start_link(TracedServer(t), name, trap, name=name)


@run
def sup_server_children(t: Tracer) -> None:
    def child(name: str, trap: bool, shutdown: Any) -> ChildSpec:
        return ChildSpec(name, functools.partial(start_server, t, name, trap),
                         shutdown=shutdown)

    sup.start_link(SupFlags(), [child("trapping", True, 1.0), child("plain", False, 1.0),
                                child("killed", True, "brutal_kill"),
                                child("infinite", True, "infinity")], name="sup")
    show(t, "terminate_child trapping", lambda: sup.terminate_child("sup", "trapping"))
    show(t, "restart_child trapping", lambda: sup.restart_child("sup", "trapping"), pid=True)
    stop(t, "sup")
