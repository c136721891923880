"""Processes: spawning, messages, names, links, monitors, exit signals, hooks, introspection.

The OTP rules themselves are proven against Erlang in ``tests/otp``; these tests cover what
only xsactor has (adoption, hooks, zombies, logging) and the API's edges.
"""

from __future__ import annotations

import contextlib
from typing import Any

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from xsactor.actors import mailbox_of
from xsactor.actors import process as px
from xsactor.actors.mailbox import ReceiveTimeout
from xsactor.actors.process import (
    ANY,
    BadArg,
    Exit,
    NoProc,
    Pid,
    Shutdown,
    add_exit_hook,
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
    unregister,
    whereis,
)
from xsactor.testing.processes import no_leftovers
from xsactor.testing.util import wait_for


def wait_down(ref: Any, timeout: float = 5.0) -> Any:
    return receive(("DOWN", ref, "process", ANY, ANY), timeout=timeout)[4]


def echo() -> None:
    while True:
        sender, message = receive()
        send(sender, message)


def idle() -> None:
    receive("stop")


# -- terms ---------------------------------------------------------------------------------
def test_pids_are_unique_hashable_and_print_like_erlang() -> None:
    a, b = spawn(idle), spawn(idle)
    assert a != b and len({a, b, a}) == 2
    assert repr(a).startswith("<0.") and repr(a).endswith(".0>")
    for pid in (a, b):
        send(pid, "stop")


def test_shutdown_reason_compares_by_term() -> None:
    assert Shutdown("x") == Shutdown("x") != Shutdown("y")
    assert hash(Shutdown(1)) == hash(Shutdown(1))
    assert Shutdown("x") != "shutdown"


# -- spawn, send, receive ------------------------------------------------------------------
def test_spawn_runs_the_function_with_its_arguments() -> None:
    me = self_pid()
    spawn(lambda a, b=0: send(me, a + b), 2, b=3)
    assert receive(timeout=5) == 5


def test_a_plain_greenlet_is_adopted_and_its_end_is_an_exit() -> None:
    started = gevent.event.Event()
    box: list[Pid] = []

    def plain() -> None:
        box.append(self_pid())
        started.set()
        receive("stop")

    g = gevent.spawn(plain)
    started.wait(5)
    pid = box[0]
    ref = monitor(pid)
    assert is_alive(pid) and mailbox_of(g) is pid._proc.mailbox()
    send(pid, "stop")
    assert wait_down(ref) == "normal"
    g.join(5)


def test_adopted_greenlets_are_forgotten_when_they_end() -> None:
    before = len(px._BY_GREENLET)
    greenlets = [gevent.spawn(self_pid) for _ in range(50)]
    gevent.joinall(greenlets)
    gevent.sleep(0)
    assert len(px._BY_GREENLET) == before
    assert all(not is_alive(g.value) for g in greenlets)


def test_pid_of_never_adopts_adopt_does() -> None:
    g = gevent.spawn(receive, "stop")
    assert px.pid_of(g) is None and px.pid_of() is None
    pid = px.adopt(g)
    assert px.pid_of(g) is pid and px.adopt(g) is pid
    ref = monitor(pid)
    send(pid, "stop")
    assert wait_down(ref) == "normal"
    assert px.pid_of(g) is None
    with pytest.raises(BadArg):
        px.adopt(g)  # it has ended


def test_the_hub_is_not_a_process() -> None:
    errors: list[BaseException] = []
    count = len(px.processes())

    def in_hub() -> None:
        for call in (self_pid, lambda: spawn_link(idle), lambda: spawn_monitor(idle)):
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

    gevent.get_hub().loop.run_callback(in_hub)
    gevent.sleep(0)
    assert len(errors) == 3 and all("hub" in str(error) for error in errors)
    assert len(px.processes()) == count  # no half-made process left


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 9)), max_size=20),
       st.sampled_from("abc"))
def test_selective_receive_takes_the_first_match_and_keeps_the_rest_in_order(
        messages: list[tuple[str, int]], wanted: str) -> None:
    me = self_pid()
    for message in messages:
        send(me, message)
    matching = [m for m in messages if m[0] == wanted]
    if matching:
        assert receive((wanted, ANY), timeout=0) == matching[0]
        messages.remove(matching[0])
    else:
        with pytest.raises(ReceiveTimeout):
            receive((wanted, ANY), timeout=0)
    assert [receive(timeout=0) for _ in messages] == messages


def test_receive_patterns_predicates_and_types() -> None:
    me = self_pid()
    for message in ("text", 7, ("tag", 1, "x"), ("tag", 2)):
        send(me, message)
    assert receive(int, timeout=0) == 7
    assert receive(("tag", int, str), timeout=0) == ("tag", 1, "x")
    assert receive(lambda m: isinstance(m, tuple), timeout=0) == ("tag", 2)
    assert receive(timeout=0) == "text"
    with pytest.raises(ReceiveTimeout):
        receive(timeout=0.01)


def test_send_to_a_dead_process_is_dropped_and_to_an_unknown_name_is_badarg() -> None:
    pid, ref = spawn_monitor(lambda: None)
    wait_down(ref)
    send(pid, "lost")
    with pytest.raises(BadArg):
        send("nobody", "hello")


# -- names ---------------------------------------------------------------------------------
def test_register_rules() -> None:
    a = spawn(idle)
    register("a", a)
    assert whereis("a") is a and "a" in px.registered()
    with pytest.raises(BadArg):
        register("a")  # taken
    with pytest.raises(BadArg):
        register("other", a)  # one name per process
    with pytest.raises(BadArg):
        register("undefined")
    send("a", "stop")
    ref = monitor(a)
    wait_down(ref)
    assert whereis("a") is None
    with pytest.raises(BadArg):
        register("a", a)  # dead
    register("me")
    unregister("me")
    with pytest.raises(BadArg):
        unregister("me")


# -- links, monitors, exit signals ---------------------------------------------------------
def test_link_to_self_does_nothing_and_link_to_dead_raises_noproc() -> None:
    link(self_pid())
    info = process_info(self_pid())
    assert info is not None and info["links"] == []
    pid, ref = spawn_monitor(lambda: None)
    wait_down(ref)
    with pytest.raises(NoProc):
        link(pid)


def test_killed_before_it_ran_it_never_runs() -> None:
    ran: list[bool] = []
    pid, ref = spawn_monitor(lambda: ran.append(True))
    exit(pid, "kill")
    assert not is_alive(pid)
    assert wait_down(ref) == "killed"
    gevent.sleep(0)
    assert ran == []


def test_exit_that_kills_the_caller_raises_exit_in_it() -> None:
    trap_exit(False)
    with pytest.raises(Exit) as info:
        exit(self_pid(), "custom")
    assert info.value.reason == "custom"
    assert is_alive(self_pid())  # the main greenlet is adopted again, as the shell restarts


def test_a_long_chain_of_links_dies_without_recursion() -> None:
    def node(depth: int) -> None:
        if depth:
            spawn_link(node, depth - 1)
        receive("never")

    trap_exit(True)
    head = spawn_link(node, 3000)
    wait_for(lambda: len(px.processes()) == 3002, 5.0, "the chain", sleep=gevent.sleep)
    exit(head, "kill")
    assert receive(("EXIT", head, ANY), timeout=5)[2] == "killed"
    assert px.processes() == [self_pid()]


def test_monitor_by_name_and_demonitor_of_an_unknown_ref() -> None:
    a = spawn(idle)
    register("named", a)
    ref = monitor("named")
    send("named", "stop")
    assert wait_down(ref) == "normal"
    ref = monitor("named")  # no such name now
    assert receive(("DOWN", ref, "process", "named", ANY), timeout=0)[4] == "noproc"
    assert demonitor(px.Ref()) is False


# -- exit hooks: names first, then hooks, then EXIT/DOWN (P4) -------------------------------
def test_hooks_run_after_the_name_is_released_and_before_down() -> None:
    seen: list[Any] = []
    main = gevent.getcurrent()

    def proc() -> None:
        register("hooked")
        add_exit_hook(lambda pid, reason: seen.append(
            (whereis("hooked"), reason, len(mailbox_of(main)))))
        receive("stop")
        raise Exit("bye")

    pid, ref = spawn_monitor(proc)
    gevent.sleep(0)
    send(pid, "stop")
    assert wait_down(ref) == "bye"
    assert seen == [(None, "bye", 0)]  # no name, no DOWN queued yet


def test_hooks_run_in_order_a_failing_hook_is_logged_and_down_follows() -> None:
    order: list[str] = []
    main = gevent.getcurrent()

    def proc() -> None:
        add_exit_hook(lambda pid, reason: order.append("first"))
        add_exit_hook(lambda pid, reason: 1 / 0)
        add_exit_hook(lambda pid, reason: link(pid))  # needs a live process: raises Exit
        handle = add_exit_hook(lambda pid, reason: order.append("removed"))
        add_exit_hook(lambda pid, reason: order.append(f"last, queued: {len(mailbox_of(main))}"))
        assert px.remove_exit_hook(handle) and not px.remove_exit_hook(handle)
        receive("stop")

    with capture_logs() as logs:
        pid, ref = spawn_monitor(proc)
        gevent.sleep(0)
        send(pid, "stop")
        assert wait_down(ref) == "normal"
    assert order == ["first", "last, queued: 0"]
    assert [log["event"] for log in logs] == ["exit hook failed", "exit hook failed"]
    assert logs[0]["pid"] == repr(pid)


def test_a_hook_for_a_dead_process_runs_at_once() -> None:
    pid, ref = spawn_monitor(lambda: None)
    wait_down(ref)
    got: list[Any] = []
    add_exit_hook(lambda p, reason: got.append((p, reason)), pid)
    assert got == [(pid, "noproc")]


# -- crashes and stuck processes -----------------------------------------------------------
def test_a_crash_is_logged_with_its_pid_and_gevent_prints_nothing(
        capfd: pytest.CaptureFixture[str]) -> None:
    def crash() -> None:
        register("crasher")
        raise ValueError("bad value")

    with capture_logs() as logs:
        pid, ref = spawn_monitor(crash)
        reason = wait_down(ref)
    assert isinstance(reason, ValueError)
    assert len(logs) == 1 and logs[0]["event"] == "process crashed"
    assert logs[0]["pid"] == repr(pid) and logs[0]["name"] == "crasher"
    assert "Traceback" not in capfd.readouterr().err


def test_a_process_that_swallows_its_kill_is_declared_dead_and_released() -> None:
    released: list[Any] = []
    me = self_pid()

    def stubborn() -> None:
        register("stubborn")
        add_exit_hook(lambda pid, reason: released.append(reason))
        link(me)
        send(me, "ready")
        with contextlib.suppress(Exit):  # ignores its kill
            receive("never")
        send(me, "still running")
        with pytest.raises(ReceiveTimeout):
            receive(timeout=0.01)  # parks: nothing reaches a dead process
        send(me, "done")

    trap_exit(True)
    with capture_logs() as logs:
        pid, ref = spawn_monitor(stubborn)
        receive("ready", timeout=5)
        exit(pid, "kill")
        # declared dead at once: name, hooks, links and monitors released / told
        assert not is_alive(pid) and whereis("stubborn") is None
        assert released == ["killed"]
        assert receive(("EXIT", pid, ANY), timeout=0)[2] == "killed"
        assert wait_down(ref, timeout=0) == "killed"
        assert process_info(pid) is None
        assert receive("still running", timeout=5)
        send(pid, "dropped")
        assert receive("done", timeout=5)
    assert any(log["event"].startswith("dead process still running") for log in logs)


# -- introspection -------------------------------------------------------------------------
def test_process_info_describes_the_process() -> None:
    px.add_info_provider("test_resource", lambda pid: "held" if whereis("info") is pid
                         else None)
    try:
        a = spawn(idle)
        register("info", a)
        link(a)
        ref = monitor(a)
        send(a, "extra")
        gevent.sleep(0)
        info = process_info(a)
        assert info is not None
        assert info["registered_name"] == "info"
        assert info["status"] == "waiting"
        assert info["message_queue_len"] == 1
        assert info["links"] == [self_pid()]
        assert info["monitored_by"] == [self_pid()]
        assert info["resources"] == {"test_resource": "held"}
        mine = process_info(self_pid())
        assert mine is not None and mine["status"] == "running" and mine["monitors"] == [a]
        demonitor(ref)
        trap_exit(True)
        send(a, "stop")
        assert receive(("EXIT", a, ANY), timeout=5)[2] == "normal"
        assert process_info(a) is None
    finally:
        px._INFO.pop("test_resource", None)


# -- the leftover check itself -------------------------------------------------------------
def test_the_leftover_check_finds_and_ends_a_stray_greenlet() -> None:
    with pytest.raises(pytest.fail.Exception, match="greenlets left"), no_leftovers():
        stray = gevent.spawn(gevent.sleep, 30)
        gevent.sleep(0)
    assert stray.dead


def test_the_leftover_check_finds_and_kills_a_process() -> None:
    with (pytest.raises(pytest.fail.Exception, match="processes left"),
          no_leftovers(timeout=0.05)):
        pid = spawn(receive, "never")
    assert not is_alive(pid)


# -- exit signals through random link graphs, against the rules of P5 ----------------------
def _expected(traps: list[bool], links: set[tuple[int, int]], victim: int,
              reason: str) -> tuple[dict[int, str], dict[int, list[tuple[int, str]]]]:
    """Who dies with what, and the EXIT messages (from, reason) each survivor gets, by P5."""
    dead: dict[int, str] = {}
    inbox: dict[int, list[tuple[int, str]]] = {i: [] for i in range(len(traps))}
    pending: list[tuple[int, int, str, bool]] = [(victim, -1, reason, False)]
    while pending:
        target, sender, why, via_link = pending.pop(0)
        if target in dead:
            continue
        if not via_link and why == "kill":
            dead[target] = "killed"
        elif traps[target]:
            inbox[target].append((sender, why))
            continue
        elif why == "normal":
            continue
        else:
            dead[target] = why
        for a, b in links:
            if target in (a, b):
                pending.append((b if a == target else a, target, dead[target], True))
    return dead, {i: sorted(got) for i, got in inbox.items() if i not in dead}


def _node(trap: bool, main: Pid) -> None:
    trap_exit(trap)
    send(main, "ready")
    while True:
        message = receive(lambda m: m[0] != "EXIT")
        if message[0] == "link":
            link(message[1])
            send(message[2], "linked")
        else:  # ("report", main)
            exits = []
            while True:
                try:
                    exits.append(receive(("EXIT", ANY, ANY), timeout=0))
                except ReceiveTimeout:
                    break
            send(message[1], ("exits", exits))
            receive("stop")
            return


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=6).flatmap(lambda traps: st.tuples(
    st.just(traps),
    st.sets(st.tuples(st.integers(0, len(traps) - 1), st.integers(0, len(traps) - 1))
            .filter(lambda p: p[0] < p[1])),
    st.integers(0, len(traps) - 1),
    st.sampled_from(["normal", "kill", "custom", "shutdown"]))))
def test_exit_signals_through_a_link_graph(case: tuple[list[bool], set[tuple[int, int]], int,
                                                       str]) -> None:
    traps, links, victim, reason = case
    me = self_pid()
    nodes = [spawn_monitor(_node, trap, me) for trap in traps]
    for _ in nodes:
        receive("ready", timeout=5)
    index = {pid: i for i, (pid, _) in enumerate(nodes)}
    for a, b in links:
        send(nodes[a][0], ("link", nodes[b][0], me))
        receive("linked", timeout=5)
    exit(nodes[victim][0], reason)
    dead: dict[int, str] = {}
    inbox: dict[int, list[tuple[int, str]]] = {}
    for i, (pid, ref) in enumerate(nodes):
        if is_alive(pid):
            send(pid, ("report", me))
            exits = receive(("exits", ANY), timeout=5)[1]
            inbox[i] = sorted((index.get(sender, -1), why) for _, sender, why in exits)
        else:
            dead[i] = wait_down(ref, timeout=0)
    assert (dead, inbox) == _expected(traps, links, victim, reason)
    for i, (pid, ref) in enumerate(nodes):
        if i not in dead:
            send(pid, "stop")
            assert wait_down(ref) == "normal"


def test_cleanup_calls_of_a_dead_process_are_harmless() -> None:
    """A process killed inside a call unwinds through the call's cleanup (unalias,
    demonitor) without a second error."""
    from xsactor.actors import server as gs

    class Slow(gs.Server):
        def handle_call(self, request: Any, caller: gs.Caller) -> Any:
            return gs.NOREPLY

    server = gs.start(Slow)
    assert server is not None
    me = self_pid()
    unwound: list[Any] = []

    def caller() -> None:
        try:
            gs.call(server, "x", timeout=None)
        except BaseException as exc:
            unwound.append(exc)
            raise
        finally:
            send(me, "unwound")

    pid, ref = spawn_monitor(caller)
    gevent.sleep(0)
    exit(pid, "custom")
    assert wait_down(ref) == "custom"
    receive("unwound", timeout=5)
    assert len(unwound) == 1 and isinstance(unwound[0], Exit) and unwound[0].reason == "custom"
    assert unwound[0].__context__ is None  # not a second Exit raised by the cleanup
    gs.stop(server)


def test_a_gevent_timeout_escaping_a_process_is_a_crash(
        capfd: pytest.CaptureFixture[str]) -> None:
    def slow() -> None:
        with gevent.Timeout(0.01):
            receive("never")

    with capture_logs() as logs:
        _pid, ref = spawn_monitor(slow)
        assert isinstance(wait_down(ref), gevent.Timeout)
    assert [log["event"] for log in logs] == ["process crashed"]
    assert "Traceback" not in capfd.readouterr().err
