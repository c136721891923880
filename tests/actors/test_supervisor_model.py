"""The child table against a model of OTP's rules (S2, S10): random sequences of crashes and
child calls on a one_for_one supervisor; after each step which_children (order and state)
and the call's result agree with the model."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xsactor.actors import process as proc
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, SupFlags

IDS = ("a", "b", "c", "d")
RESTARTS = ("permanent", "transient", "temporary")
REASONS = ("normal", "shutdown", proc.Shutdown("bye"), "boom")


def worker() -> None:
    while True:
        message = proc.receive()
        if message[0] == "crash":
            raise proc.Exit(message[1])


def spec(child_id: str, restart: str) -> ChildSpec:
    return ChildSpec(child_id, lambda: proc.spawn_link(worker), restart=restart)  # type: ignore[arg-type]


class Model:
    """OTP's child table for one_for_one: id -> [restart, running], in start order."""

    def __init__(self) -> None:
        self.children: dict[str, list[Any]] = {}

    def rows(self) -> list[tuple[str, bool]]:
        return [(i, running) for i, (_r, running) in reversed(self.children.items())]

    def crash(self, i: str, reason: Any) -> None:
        restart = self.children[i][0]
        normal = reason in ("normal", "shutdown") or isinstance(reason, proc.Shutdown)
        if restart == "permanent" or (restart == "transient" and not normal):
            return  # restarted in place
        if restart == "temporary":
            del self.children[i]
        else:
            self.children[i][1] = False

    def start_child(self, i: str, restart: str) -> str:
        if i in self.children:
            return "already_started" if self.children[i][1] else "already_present"
        self.children[i] = [restart, True]
        return "ok"

    def terminate_child(self, i: str) -> str:
        if i not in self.children:
            return "not_found"
        if self.children[i][0] == "temporary":
            del self.children[i]
        else:
            self.children[i][1] = False
        return "ok"

    def restart_child(self, i: str) -> str:
        if i not in self.children:
            return "not_found"
        if self.children[i][1]:
            return "running"
        self.children[i][1] = True
        return "ok"

    def delete_child(self, i: str) -> str:
        if i not in self.children:
            return "not_found"
        if self.children[i][1]:
            return "running"
        del self.children[i]
        return "ok"


def outcome(call: Any, *args: Any) -> str:
    try:
        call(*args)
    except sup.SupervisorError as exc:
        return str(exc.reason)
    return "ok"


OPS = st.one_of(
    st.tuples(st.just("crash"), st.sampled_from(IDS), st.sampled_from(REASONS)),
    st.tuples(st.just("start_child"), st.sampled_from(IDS), st.sampled_from(RESTARTS)),
    st.tuples(st.sampled_from(["terminate_child", "restart_child", "delete_child"]),
              st.sampled_from(IDS)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=25))
def test_the_child_table_follows_otp(ops: list[tuple[Any, ...]]) -> None:
    proc.trap_exit(True)
    model = Model()
    s = sup.start_link(SupFlags(intensity=1000, period=60), [])
    try:
        for op, i, *rest in ops:
            if op == "crash":
                row = next((r for r in sup.which_children(s) if r.id == i), None)
                if row is None or not isinstance(row.pid, proc.Pid):
                    continue
                ref = proc.monitor(row.pid)
                proc.send(row.pid, ("crash", rest[0]))
                proc.receive(("DOWN", ref, "process", row.pid, proc.ANY), 5)
                model.crash(i, rest[0])
            elif op == "start_child":
                assert outcome(sup.start_child, s, spec(i, rest[0])) == \
                    model.start_child(i, rest[0])
            else:
                assert outcome(getattr(sup, op), s, i) == getattr(model, op)(i)
            rows = sup.which_children(s)
            assert [(r.id, isinstance(r.pid, proc.Pid)) for r in rows] == model.rows()
            assert all(proc.is_alive(r.pid) for r in rows if isinstance(r.pid, proc.Pid))
            counts = sup.count_children(s)
            assert (counts["specs"], counts["active"]) == (
                len(rows), sum(1 for _i, running in model.rows() if running))
    finally:
        proc.exit(s, "shutdown")
        proc.receive(("EXIT", s, proc.ANY), 10)
