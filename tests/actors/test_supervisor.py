"""Supervisors beyond the OTP scenarios: crash storms, backoff, the restart gate, declared
watches, the dynamic supervisor's limits, errors and reports."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import gevent
import pytest
from structlog.testing import capture_logs

from xsactor.actors import process as proc
from xsactor.actors import server
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, RestartGate, SupFlags
from xsactor.actors.restarts import Backoff


@pytest.fixture(autouse=True)
def trapping() -> Iterator[proc.Pid]:
    """The test is a process that traps exits (it is the supervisors' parent)."""
    proc.trap_exit(True)
    yield proc.self_pid()


def worker() -> None:
    while True:
        message = proc.receive()
        if message[0] == "crash":
            raise proc.Exit(message[1])


def start_worker(owner: proc.Pid, name: str) -> proc.Pid:
    """Start a worker and tell ``owner`` (the test) ``("started", name, pid)``."""
    pid = proc.spawn_link(worker)
    proc.send(owner, ("started", name, pid))
    return pid


def spec(name: str, **options: Any) -> ChildSpec:
    return ChildSpec(name, functools.partial(start_worker, proc.self_pid(), name), **options)


def started(name: str, timeout: float = 5.0) -> proc.Pid:
    message: tuple[str, str, proc.Pid] = proc.receive(("started", name, proc.ANY), timeout)
    return message[2]


def crash(pid: proc.Pid, reason: Any = "boom") -> None:
    ref = proc.monitor(pid)
    proc.send(pid, ("crash", reason))
    proc.receive(("DOWN", ref, "process", pid, proc.ANY), 5)


def stop(pid: proc.Pid) -> Any:
    proc.exit(pid, "shutdown")
    return proc.receive(("EXIT", pid, proc.ANY), 10)[2]


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# -- crash storms (S4, S6) ----------------------------------------------------------------------
def test_a_crash_storm_at_the_intensity_is_survived() -> None:
    s = sup.start_link(SupFlags(intensity=5, period=60), [spec("w")])
    pid = started("w")
    for _ in range(5):
        crash(pid)
        pid = started("w")
    assert sup.which_children(s) == [sup.ChildInfo("w", pid, "worker")]
    assert sup.describe(s)["children"][0]["restarts"] == 5
    assert stop(s) == "shutdown"


def test_a_crash_storm_beyond_the_intensity_gives_up_with_shutdown() -> None:
    with capture_logs() as logs:
        s = sup.start_link(SupFlags(intensity=5, period=60), [spec("a"), spec("w")])
        survivor = started("a")
        pid = started("w")
        monitor = proc.monitor(survivor)
        for _ in range(5):
            crash(pid)
            pid = started("w")
        crash(pid)
        assert proc.receive(("EXIT", s, proc.ANY), 5)[2] == "shutdown"
    # the sibling was terminated (with shutdown) before the supervisor exited
    assert proc.receive(("DOWN", monitor, "process", survivor, proc.ANY), 0)[4] == "shutdown"
    gave_up = events(logs, "supervisor gave up")
    assert [(e["child_id"], e["reason"], e["report"]) for e in gave_up] == [
        ("w", "reached_max_restart_intensity", "shutdown")]
    assert len(events(logs, "child terminated")) == 6
    assert all(e["reason"] == "boom" for e in events(logs, "child terminated"))


def test_restarts_older_than_the_period_leave_the_window() -> None:
    s = sup.start_link(SupFlags(intensity=1, period=0.2), [spec("w")])
    pid = started("w")
    crash(pid)
    pid = started("w")
    gevent.sleep(0.25)  # not synchronisation: the window's period has to pass
    crash(pid)  # the first restart is older than the period: still one in the window
    started("w")
    assert proc.is_alive(s)
    assert stop(s) == "shutdown"


# -- reports (S11) ------------------------------------------------------------------------------
def test_every_start_crash_restart_and_shutdown_is_logged_with_child_id_and_reason() -> None:
    with capture_logs() as logs:
        s = sup.start_link(SupFlags(), [spec("w")], name="reporting")
        crash(started("w"), "boom")
        started("w")
        stop(s)
    by_event = {e["event"]: e for e in logs}
    assert by_event["child started"]["child_id"] == "w"
    assert by_event["child started"]["supervisor"] == "reporting"
    assert (by_event["child terminated"]["child_id"], by_event["child terminated"]["reason"]) \
        == ("w", "boom")
    assert by_event["child restarted"]["restarts"] == 1
    assert by_event["child shut down"]["child_id"] == "w"
    assert by_event["supervisor stopped"]["reason"] == "shutdown"


def test_a_failed_start_names_the_child() -> None:
    def broken() -> proc.Pid:
        raise OSError("no such device")

    with pytest.raises(sup.FailedToStartChild) as info:
        sup.start_link(SupFlags(), [spec("a"), ChildSpec("dev", broken)])
    assert info.value.child_id == "dev" and isinstance(info.value.reason, OSError)
    assert not proc.is_alive(started("a"))  # terminated before the start failed
    with pytest.raises(proc.ReceiveTimeout):  # as gs.start_link: no EXIT left behind
        proc.receive(("EXIT", proc.ANY, proc.ANY), 0)


def test_a_start_returning_something_else_than_a_pid_is_a_failed_start() -> None:
    s = sup.start_link(SupFlags(), [])
    with pytest.raises(sup.StartError) as info:
        sup.start_child(s, ChildSpec("bad", lambda: 42))
    assert info.value.reason == 42
    assert sup.which_children(s) == []
    stop(s)


def test_calls_to_a_missing_supervisor_raise_noproc() -> None:
    with pytest.raises(proc.NoProc):
        sup.which_children("nobody-here")


def test_a_name_taken_gives_already_started() -> None:
    s = sup.start_link(SupFlags(), [], name="taken")
    with pytest.raises(server.AlreadyStarted) as info:
        sup.start_link(SupFlags(), [], name="taken")
    assert info.value.pid == s
    stop(s)


# -- backoff ------------------------------------------------------------------------------------
def test_backoff_delays_each_restart_in_a_row_and_the_supervisor_stays_responsive() -> None:
    backoff = Backoff(min=0.05, max=1.0, jitter=0.0, reset_after=60)
    s = sup.start_link(SupFlags(intensity=10, period=60), [spec("w", backoff=backoff)])
    pid = started("w")
    for expected in (0.05, 0.1, 0.2):
        crash(pid)
        died = time.monotonic()
        # while the child waits for its restart, calls are answered and show it restarting
        assert sup.which_children(s) == [sup.ChildInfo("w", sup.RESTARTING, "worker")]
        with pytest.raises(sup.Restarting):
            sup.restart_child(s, "w")
        pid = started("w")
        assert time.monotonic() - died >= expected * 0.9
    assert stop(s) == "shutdown"


def test_backoff_restarts_still_count_toward_the_intensity() -> None:
    backoff = Backoff(min=0.01, max=0.01, jitter=0.0)
    s = sup.start_link(SupFlags(intensity=2, period=60), [spec("w", backoff=backoff)])
    pid = started("w")
    for _ in range(2):
        crash(pid)
        pid = started("w")
    crash(pid)  # the third in the period: gives up at the death, not after the delay
    assert proc.receive(("EXIT", s, proc.ANY), 5)[2] == "shutdown"
    with pytest.raises(proc.ReceiveTimeout):
        started("w", timeout=0.05)


def test_terminate_child_cancels_a_pending_delayed_restart() -> None:
    s = sup.start_link(SupFlags(), [spec("w", backoff=Backoff(min=0.05, jitter=0))])
    crash(started("w"))
    sup.terminate_child(s, "w")
    assert sup.which_children(s) == [sup.ChildInfo("w", None, "worker")]
    with pytest.raises(proc.ReceiveTimeout):
        started("w", timeout=0.15)
    assert sup.restart_child(s, "w") == started("w")
    stop(s)


# -- the restart gate ---------------------------------------------------------------------------
class Gate(RestartGate):
    """A gate a test opens and closes; deaths with reason "lost" do not count."""

    def __init__(self) -> None:
        self.open = True
        self.waiting: list[Callable[[], None]] = []

    def counts(self, child_id: Any, reason: Any) -> bool:
        return reason != "lost"

    def is_open(self) -> bool:
        return self.open

    def when_open(self, callback: Callable[[], None]) -> None:
        self.waiting.append(callback)

    def set_open(self) -> None:
        self.open = True
        waiting, self.waiting = self.waiting, []
        for callback in waiting:
            callback()


def test_deaths_the_gate_does_not_count_leave_the_intensity_alone() -> None:
    gate = Gate()
    s = sup.start_link(SupFlags(intensity=1, period=60, gate=gate), [spec("w")])
    pid = started("w")
    for _ in range(10):  # a reconnect storm: none of these count
        crash(pid, "lost")
        pid = started("w")
    crash(pid, "boom")  # counts: 1 of 1
    pid = started("w")
    assert sup.describe(s)["restarts_in_window"] == 1
    crash(pid, "boom")  # 2 of 1: gives up
    assert proc.receive(("EXIT", s, proc.ANY), 5)[2] == "shutdown"


def test_a_closed_gate_holds_restarts_until_it_opens() -> None:
    gate = Gate()
    s = sup.start_link(SupFlags(strategy="one_for_all", gate=gate), [spec("a"), spec("b")])
    started("a")
    b = started("b")
    gate.open = False
    crash(b, "lost")
    assert sup.which_children(s) == [sup.ChildInfo("b", sup.RESTARTING, "worker"),
                                     sup.ChildInfo("a", None, "worker")]
    with pytest.raises(proc.ReceiveTimeout):
        started("a", timeout=0.05)
    gate.set_open()
    started("a")
    started("b")
    assert sup.count_children(s)["active"] == 2
    stop(s)


# -- declared watches ---------------------------------------------------------------------------
def test_declared_watches_are_registered_for_every_instance() -> None:
    registered: list[tuple[proc.Pid, Sequence[tuple[str, Any]]]] = []
    previous = sup.set_watch_registrar(lambda pid, watches: registered.append((pid, watches)))
    try:
        s = sup.start_link(SupFlags(), [spec("w", watches=[("memory/target", "mem")])])
        first = started("w")
        crash(first)
        second = started("w")
        assert registered == [(first, (("memory/target", "mem"),)),
                              (second, (("memory/target", "mem"),))]
        stop(s)
    finally:
        sup.set_watch_registrar(previous)


def test_declared_watches_without_a_registrar_fail_the_start() -> None:
    previous = sup.set_watch_registrar(None)
    try:
        with pytest.raises(sup.FailedToStartChild, match="'w'") as info:
            sup.start_link(SupFlags(), [spec("w", watches=[("memory/target", "mem")])])
        assert "registrar" in str(info.value.reason)
        pid = started("w")
        assert not proc.is_alive(pid)  # the instance was not left running
    finally:
        sup.set_watch_registrar(previous)


# -- the dynamic supervisor (S12) ---------------------------------------------------------------
def test_dynamic_supervisor_max_children_and_extra_arguments() -> None:
    owner = proc.self_pid()
    d = sup.start_dynamic_link(max_children=2, extra_arguments=(owner,))

    def child(name: str) -> ChildSpec:
        return ChildSpec(name, functools.partial(start_worker, name=name))

    one = sup.start_child(d, child("one"))
    assert started("one") == one
    sup.start_child(d, child("two"))
    with pytest.raises(sup.MaxChildren):
        sup.start_child(d, child("three"))
    assert sup.count_children(d) == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
    assert {row.id for row in sup.which_children(d)} == {None}
    with pytest.raises(sup.SupervisorError):
        sup.restart_child(d, "one")
    sup.terminate_child(d, one)
    assert sup.start_child(d, child("three")) == started("three")
    assert stop(d) == "shutdown"


def test_dynamic_supervisor_default_intensity_is_three_in_five_seconds() -> None:
    owner = proc.self_pid()
    d = sup.start_dynamic_link(extra_arguments=(owner,))
    pid = sup.start_child(d, ChildSpec("w", functools.partial(start_worker, name="w")))
    started("w")
    for _ in range(3):
        crash(pid)
        pid = started("w")
    crash(pid)
    assert proc.receive(("EXIT", d, proc.ANY), 5)[2] == "shutdown"


def test_dynamic_children_stop_in_parallel_within_their_shutdown() -> None:
    def stubborn(owner: proc.Pid, name: str) -> proc.Pid:
        def body() -> None:
            proc.trap_exit(True)
            proc.send(owner, ("started", name, proc.self_pid()))
            while True:
                proc.receive()
        return proc.spawn_link(body)

    owner = proc.self_pid()
    d = sup.start_dynamic_link(extra_arguments=(owner,))
    for i in range(3):
        sup.start_child(d, ChildSpec(i, functools.partial(stubborn, name=f"s{i}"),
                                     shutdown=0.2))
        started(f"s{i}")
    began = time.monotonic()
    assert stop(d) == "shutdown"
    # three stubborn children of 0.2 s each: killed together, not one after the other
    assert time.monotonic() - began < 0.55


def test_gevent_is_not_blocked_by_a_supervisor_waiting_for_a_child() -> None:
    s = sup.start_link(SupFlags(), [spec("w", shutdown="infinity")])
    started("w")
    other = gevent.spawn(lambda: "ran")
    assert stop(s) == "shutdown"
    assert other.get(timeout=1) == "ran"
