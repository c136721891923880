"""Mailboxes under load: linear selective receive, the bound and its overflow policy, system
messages, coalescing (a model-based property test against a plain list)."""

from __future__ import annotations

import functools
import gc
import time
from collections import Counter
from typing import Any

import gevent
import pytest
from gevent.event import Event
from hypothesis import given, settings
from hypothesis import strategies as st

from xsactor.actors import Mailbox, ReceiveTimeout


def _scan_seconds(n: int) -> float:
    """One selective receive whose only match is the last of ``n`` queued messages."""
    box = Mailbox()
    for i in range(n):
        box.put(i)
    box.put("wanted")
    gc.disable()  # a collection in one run would skew the ratio
    try:
        start = time.process_time()  # this process's CPU: other load on the machine is out
        assert box.receive(0, match=lambda m: m == "wanted") == "wanted"
        return time.process_time() - start
    finally:
        gc.enable()


def test_one_selective_scan_is_linear_not_quadratic() -> None:
    """Scanning 8x the messages costs about 8x (an indexed deque made it ~50x at 400k)."""
    small = min(_scan_seconds(50_000) for _ in range(5))
    large = min(_scan_seconds(400_000) for _ in range(3))
    assert large / small < 20, f"{large / small:.1f}x for 8x the messages"


def test_a_waiting_selective_receive_examines_each_message_once() -> None:
    box = Mailbox()
    for i in range(1000):
        box.put(("noise", i))
    seen: Counter[Any] = Counter()

    def wanted(message: Any) -> bool:
        seen[message] += 1
        return message == "wanted"

    waiting = Event()

    def receiver() -> Any:
        waiting.set()
        return box.receive(5, match=wanted)

    g = gevent.spawn(receiver)
    waiting.wait()
    for batch in range(5):
        gevent.idle()  # the receiver scans what is queued and waits again
        for i in range(100):
            box.put(("late", batch, i))
    gevent.idle()
    box.put("wanted")
    assert g.get(timeout=5) == "wanted"
    assert len(seen) == 1000 + 500 + 1
    assert max(seen.values()) == 1
    assert len(box) == 1500
    assert box.receive(0) == ("noise", 0)


def test_plain_receive_after_selective_takes_keeps_order() -> None:
    box = Mailbox()
    for i in range(10):
        box.put(i)
    assert box.receive(0, match=lambda m: m == 9) == 9  # the last one
    assert box.receive(0, match=lambda m: m == 4) == 4  # the middle
    assert [box.receive(0) for _ in range(8)] == [0, 1, 2, 3, 5, 6, 7, 8]


def test_bound_drops_the_newest_ordinary_message() -> None:
    box = Mailbox(bound=2)
    assert box.put("a") and box.put("b")
    assert box.full
    assert not box.put("c")
    assert box.dropped == 1
    assert [box.receive(0), box.receive(0)] == ["a", "b"]
    assert not box.full and box.put("d")
    assert box.receive(0) == "d"


def test_system_messages_pass_the_bound_and_are_received_as_themselves() -> None:
    box = Mailbox(bound=1)
    assert box.put(("user", 1))
    assert box.put(("EXIT", "pid", "killed"), system=True)
    assert box.put(("DOWN", "ref"), system=True)
    assert not box.put(("user", 2))  # the bound counts ordinary messages only
    assert len(box) == 3
    assert box.receive(0, match=lambda m: m[0] == "DOWN") == ("DOWN", "ref")
    assert box.purge(lambda m: m[0] == "EXIT") == 1
    assert box.receive(0) == ("user", 1)
    assert box.put(("user", 3))  # the purged system message freed nothing it never held
    assert box.full
    with pytest.raises(ReceiveTimeout):
        box.receive(0, match=lambda m: m[0] == "EXIT")


def test_coalescing_works_on_a_full_mailbox() -> None:
    box = Mailbox(bound=1)
    event = ("watch_event", "/a", "t")
    assert box.put(event, coalesce=True)
    assert not box.put(event, coalesce=True)
    assert box.dropped == 0  # absorbed by the queued one, not dropped
    assert not box.put(("watch_event", "/b", "t"), coalesce=True)
    assert box.dropped == 1
    assert box.coalescing == 1


def test_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        Mailbox(bound=-1)


# -- model-based: the mailbox behaves as a list with the documented rules ---------------------
_message = st.tuples(st.sampled_from("abc"), st.integers(0, 3))
_op = st.one_of(
    st.tuples(st.just("put"), _message, st.booleans(), st.booleans()),
    st.tuples(st.just("receive"), st.sampled_from([None, "a", "b", "c"])),
    st.tuples(st.just("purge"), st.sampled_from("abc")),
)


def _tagged(tag: str, message: Any) -> bool:
    return message[0] == tag


@settings(max_examples=200, deadline=None)
@given(bound=st.one_of(st.none(), st.integers(0, 4)), ops=st.lists(_op, max_size=40))
def test_mailbox_matches_a_list_model(bound: int | None, ops: list[Any]) -> None:
    box = Mailbox(bound=bound)
    model: list[tuple[Any, bool, bool]] = []  # (message, coalesced, system)
    dropped = 0
    for op in ops:
        if op[0] == "put":
            _, message, coalesce, system = op
            ordinary = sum(1 for _m, _c, s in model if not s)
            if coalesce and any(c and m == message for m, c, _s in model):
                expected = False
            elif not system and bound is not None and ordinary >= bound:
                expected, dropped = False, dropped + 1
            else:
                expected = True
                model.append((message, coalesce, system))
            assert box.put(message, coalesce=coalesce, system=system) is expected
        elif op[0] == "receive":
            kind = op[1]
            match = None if kind is None else (lambda m, k=kind: m[0] == k)
            index = next((i for i, (m, _c, _s) in enumerate(model)
                          if match is None or match(m)), None)
            if index is None:
                with pytest.raises(ReceiveTimeout):
                    box.receive(0, match)
            else:
                assert box.receive(0, match) == model.pop(index)[0]
        else:
            kept = [entry for entry in model if entry[0][0] != op[1]]
            assert box.purge(functools.partial(_tagged, op[1])) == len(model) - len(kept)
            model = kept
        assert len(box) == len(model)
        assert box.dropped == dropped
        assert box.coalescing == sum(1 for _m, c, _s in model if c)


def test_two_receivers_on_one_mailbox_each_get_a_message() -> None:
    box = Mailbox()
    receivers = [gevent.spawn(box.receive, 5) for _ in range(2)]
    gevent.idle()  # both wait
    box.put("a")
    box.put("b")
    assert sorted(g.get(timeout=5) for g in receivers) == ["a", "b"]


def test_a_receiver_killed_while_waiting_is_not_woken_again() -> None:
    box = Mailbox()
    victim = gevent.spawn(box.receive)
    gevent.idle()
    victim.kill()
    assert victim.dead
    waiting = gevent.spawn(box.receive, 5)
    gevent.idle()
    box.put("x")
    assert waiting.get(timeout=5) == "x"
    with pytest.raises(ReceiveTimeout):  # a timed wait that a put does not satisfy
        box.receive(0.01, match=lambda m: m == "never")
    box.put("late")
    assert box.receive(0) == "late"


def test_a_full_bounded_process_mailbox_still_gets_down_and_exit() -> None:
    from xsactor.actors import process as px

    got: list[Any] = []
    ready = Event()

    def flooded() -> None:
        px.trap_exit(True)
        child = px.spawn_link(px.receive, lambda m: m == "stop")
        ref = px.monitor(child)
        ready.set()
        px.receive(lambda m: m == "go")  # a system-free wait: "go" must fit in the bound
        px.exit(child, "bye")
        got.append(px.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] is ref,
                              timeout=5))
        got.append(px.receive(lambda m: type(m) is tuple and m[0] == "EXIT", timeout=5))

    box = Mailbox(bound=1)
    pid = px.spawn_opt(flooded, mailbox=box)
    ready.wait(5)
    px.send(pid, "go")
    for i in range(10):
        px.send(pid, ("noise", i))  # dropped: the bound is full
    px.monitor(pid)
    px.receive(lambda m: type(m) is tuple and m[0] == "DOWN", timeout=5)
    assert box.dropped >= 9
    assert [m[0] for m in got] == ["DOWN", "EXIT"] and got[0][4] == "bye"
