"""The server behaviour: what the OTP scenarios (tests/otp) do not already prove."""

from __future__ import annotations

import inspect
from typing import Any

import gevent
import pytest
from structlog.testing import capture_logs

from xsactor.actors import Mailbox, mailbox_of
from xsactor.actors import process as px
from xsactor.actors import server as gs
from xsactor.actors.process import (
    ANY,
    BadArg,
    Exit,
    ExitError,
    NoProc,
    Pid,
    exit,
    is_alive,
    monitor,
    receive,
    self_pid,
    send,
    spawn_opt,
    trap_exit,
    whereis,
)


class Store(gs.Server):
    """A key-value store; ``("wait", key)`` replies once the key is set (from handle_cast)."""

    def init(self, initial: dict[str, Any] | None = None) -> None:
        self.data = dict(initial or {})
        self.waiting: dict[str, list[gs.Caller]] = {}
        self.infos: list[Any] = []

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        op, key = request
        if op == "get":
            return self.data.get(key)
        if op == "wait":
            if key in self.data:
                return self.data[key]
            self.waiting.setdefault(key, []).append(caller)
            return gs.NOREPLY
        if op == "infos":
            return list(self.infos)
        raise ValueError(op)

    def handle_cast(self, message: Any) -> None:
        key, value = message
        self.data[key] = value
        for caller in self.waiting.pop(key, []):
            gs.reply(caller, value)

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)


def started(*args: Any, **options: Any) -> Pid:
    pid = gs.start(Store, *args, **options)
    assert pid is not None
    return pid


def test_call_waits_five_seconds_by_default() -> None:
    assert inspect.signature(gs.call).parameters["timeout"].default == 5.0


def test_noreply_then_reply_from_another_handler() -> None:
    s = started()
    waiter_results: list[Any] = []

    def waiter() -> None:
        waiter_results.append(gs.call(s, ("wait", "k"), timeout=5))

    w = spawn_opt(waiter, monitor=True)
    gevent.sleep(0)
    gs.cast(s, ("k", 42))
    assert receive(("DOWN", w[1], "process", ANY, ANY), timeout=5)[4] == "normal"
    assert waiter_results == [42]
    gs.stop(s)


def test_messages_that_are_not_calls_or_casts_go_to_handle_info() -> None:
    s = started()
    send(s, ("watch_event", "/a", "tok"))
    mailbox_of(s._proc.greenlet).put(("DOWN", "not", "a", "real", "one"))
    assert gs.call(s, ("infos", None)) == [("watch_event", "/a", "tok"),
                                            ("DOWN", "not", "a", "real", "one")]
    gs.stop(s)


def test_a_server_can_be_given_as_an_instance() -> None:
    store = Store()
    s = gs.start(store, {"a": 1})
    assert s is not None and store.pid is s and gs.call(s, ("get", "a")) == 1
    gs.stop(s)


def test_call_errors() -> None:
    with pytest.raises(NoProc):
        gs.call("nobody", "x")
    s = started()
    exit(s, "kill")
    with pytest.raises(NoProc):
        gs.call(s, ("get", "a"))

    class Slow(Store):
        def handle_call(self, request: Any, caller: gs.Caller) -> Any:
            receive("never")

    slow = gs.start(Slow)
    assert slow is not None
    ref = monitor(slow)

    def killer() -> None:
        exit(slow, "kill")

    spawn_opt(killer)
    with pytest.raises(gs.ServerExit) as info:
        gs.call(slow, "x", timeout=5)
    assert info.value.reason == "killed"
    assert receive(("DOWN", ref, ANY, ANY, ANY), timeout=5)[4] == "killed"


def test_a_server_cannot_call_itself() -> None:
    class Selfish(Store):
        def handle_call(self, request: Any, caller: gs.Caller) -> Any:
            try:
                gs.call(self.pid, "again")
            except ExitError as exc:
                return exc.reason

    s = gs.start(Selfish)
    assert s is not None and gs.call(s, "x") == "calling_self"
    gs.stop(s)


def test_start_timeout_kills_the_server_and_frees_the_name() -> None:
    trap_exit(True)
    class Stuck(gs.Server):
        def init(self) -> None:
            receive("never")

    with pytest.raises(gs.StartError) as info:
        gs.start_link(Stuck, name="stuck", timeout=0.05)
    assert info.value.reason == "timeout"
    assert whereis("stuck") is None
    with pytest.raises(Exception, match="no message"):
        receive(timeout=0)  # no EXIT from the killed server: it was unlinked first


@pytest.mark.parametrize("failure", [gs.Stop("custom"), Exit("custom")])
def test_init_can_stop_with_a_reason(failure: BaseException) -> None:
    class Stopping(gs.Server):
        def init(self) -> None:
            raise failure

    with pytest.raises(gs.StartError) as info:
        gs.start_link(Stopping, name="stopping")  # not trapping: a signal would kill us
    assert info.value.reason == "custom" and whereis("stopping") is None


def test_a_failed_start_link_sends_no_exit_signal_to_the_caller() -> None:
    class Failing(gs.Server):
        def init(self) -> None:
            raise RuntimeError("no")

    with capture_logs() as logs, pytest.raises(gs.StartError) as info:
        gs.start_link(Failing)  # not trapping: an exit signal would kill this process
    assert isinstance(info.value.reason, RuntimeError)
    assert is_alive(self_pid())
    trap_exit(True)
    with pytest.raises(gs.StartError):
        gs.start_link(Failing)
    with pytest.raises(Exception, match="no message"):
        receive(timeout=0)
    assert [log["event"] for log in logs] == ["server init crashed"]


def test_a_crash_is_logged_once_with_the_last_message_and_terminate_runs() -> None:
    ended: list[Any] = []

    class Crashing(Store):
        def terminate(self, reason: Any) -> None:
            ended.append(reason)

    s = gs.start(Crashing)
    assert s is not None
    ref = monitor(s)
    with capture_logs() as logs:
        with pytest.raises(gs.ServerExit) as info:
            gs.call(s, ("bad-op", None))
        assert receive(("DOWN", ref, ANY, ANY, ANY), timeout=5)[4] is info.value.reason
    assert isinstance(info.value.reason, ValueError) and ended == [info.value.reason]
    assert [log["event"] for log in logs] == ["server terminating"]
    assert logs[0]["pid"] == repr(s) and "bad-op" in logs[0]["last_message"]


def test_terminate_that_raises_gives_the_exit_reason() -> None:
    class BadTerminate(Store):
        def terminate(self, reason: Any) -> None:
            raise KeyError("in terminate")

    s = gs.start(BadTerminate)
    assert s is not None
    with capture_logs(), pytest.raises(gs.ServerExit) as info:
        gs.stop(s)
    assert isinstance(info.value.reason, KeyError)


def test_stop_errors() -> None:
    with pytest.raises(NoProc):
        gs.stop("nobody")

    class Stubborn(Store):
        def terminate(self, reason: Any) -> None:
            receive("never")

    s = gs.start(Stubborn)
    assert s is not None
    with pytest.raises(gs.CallTimeout):
        gs.stop(s, timeout=0.05)
    exit(s, "kill")


def test_replies_exit_and_down_are_system_messages() -> None:
    """Replies, EXIT and DOWN are put with system=True (never dropped by a bound)."""
    recorded: list[Any] = []

    class Recording(Mailbox):
        def put(self, message: Any, *, coalesce: bool = False, system: bool = False) -> bool:
            if system:
                recorded.append(message[0])
            return super().put(message, coalesce=coalesce, system=system)

    s = started({"a": 1})
    me = self_pid()

    def client() -> None:
        trap_exit(True)
        assert gs.call(s, ("get", "a")) == 1
        other = spawn_opt(lambda: None, link=True, monitor=True)
        receive(("DOWN", other[1], ANY, ANY, ANY))
        receive(("EXIT", ANY, ANY))
        send(me, "done")

    spawn_opt(client, mailbox=Recording())
    receive("done", timeout=5)
    gs.stop(s)
    assert recorded == ["$reply", "EXIT", "DOWN"]


def test_an_invalid_name_leaves_no_server_behind() -> None:
    self_pid()
    count = len(px.processes())
    with pytest.raises(BadArg):
        gs.start_link(Store, name="undefined")
    with pytest.raises(Exception, match="no message"):
        receive(timeout=0)  # neither EXIT nor DOWN of the abandoned server
    assert len(px.processes()) == count


def test_a_gevent_timeout_in_a_handler_is_a_crash_and_terminate_runs() -> None:
    ended: list[Any] = []

    class Impatient(Store):
        def handle_cast(self, message: Any) -> None:
            with gevent.Timeout(0.01):
                receive("never")

        def terminate(self, reason: Any) -> None:
            ended.append(reason)

    s = gs.start(Impatient)
    assert s is not None
    ref = monitor(s)
    with capture_logs():
        gs.cast(s, "wait")
        reason = receive(("DOWN", ref, ANY, ANY, ANY), timeout=5)[4]
    assert isinstance(reason, gevent.Timeout) and ended == [reason]
