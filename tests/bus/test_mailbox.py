"""Mailboxes: put never blocks, selective receive, timeouts, one mailbox per greenlet."""

from __future__ import annotations

import gc

import gevent
import pytest
from gevent.event import Event

from xsactor.actors import Mailbox, ReceiveTimeout, bind_mailbox, mailbox_of


def test_fifo_and_polling() -> None:
    box = Mailbox()
    for i in range(3):
        box.put(i)
    assert [box.receive(0) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ReceiveTimeout):
        box.receive(0)
    with pytest.raises(TimeoutError):  # ReceiveTimeout is a TimeoutError
        box.receive(0.01)


def test_selective_receive_keeps_the_rest_in_order() -> None:
    box = Mailbox()
    for msg in ["a", ("x", 1), "b", ("x", 2), "c"]:
        box.put(msg)
    assert box.receive(0, match=lambda m: isinstance(m, tuple)) == ("x", 1)
    assert box.receive(0, match=lambda m: isinstance(m, tuple)) == ("x", 2)
    assert [box.receive(0) for _ in range(3)] == ["a", "b", "c"]


def test_receive_waits_for_a_matching_put_from_another_greenlet() -> None:
    box = Mailbox()
    started = Event()

    def receiver() -> object:
        started.set()
        return box.receive(5, match=lambda m: m == "wanted")

    g = gevent.spawn(receiver)
    started.wait()
    box.put("other")
    box.put("wanted")
    assert g.get(timeout=5) == "wanted"
    assert box.receive(0) == "other"


def test_selective_receive_sees_a_match_put_after_a_purge() -> None:
    """A purge while a selective receive waits must not hide later messages from it."""
    box = Mailbox()
    for i in range(5):
        box.put(("noise", i))
    waiting = Event()

    def receiver() -> object:
        waiting.set()
        return box.receive(5, match=lambda m: m == "wanted")

    g = gevent.spawn(receiver)
    waiting.wait()
    gevent.idle()  # the receiver has scanned the five and sleeps
    assert box.purge(lambda m: m[1] < 4) == 4
    box.put("wanted")
    assert g.get(timeout=5) == "wanted"


def test_put_from_the_hub_wakes_a_receiver() -> None:
    box = Mailbox()
    gevent.get_hub().loop.run_callback(box.put, "from-hub")
    assert box.receive(5) == "from-hub"


def test_coalesce_drops_equal_queued_messages_only_while_queued() -> None:
    box = Mailbox()
    assert box.put(("watch_event", "/a", "t"), coalesce=True)
    assert not box.put(("watch_event", "/a", "t"), coalesce=True)
    assert box.put(("watch_event", "/b", "t"), coalesce=True)
    assert len(box) == 2
    assert box.receive(0) == ("watch_event", "/a", "t")
    assert box.put(("watch_event", "/a", "t"), coalesce=True)  # no longer queued: kept
    assert len(box) == 2


def test_unhashable_messages_and_purge() -> None:
    box = Mailbox()
    box.put(["list"])
    box.put(("watch_event", "/a", "t"), coalesce=True)
    box.put({"dict": 1})
    assert box.purge(lambda m: isinstance(m, tuple)) == 1
    assert box.put(("watch_event", "/a", "t"), coalesce=True)
    assert box.receive(0) == ["list"]
    assert box.receive(0) == {"dict": 1}


def test_mailbox_of_is_per_greenlet() -> None:
    mine = mailbox_of()
    assert mailbox_of() is mine
    other = gevent.spawn(lambda: mailbox_of())
    theirs = other.get(timeout=5)
    assert theirs is not mine
    assert theirs.owner is other
    assert mailbox_of(other) is theirs
    assert not theirs.owner_alive  # the greenlet has finished
    assert mine.owner_alive


def test_mailbox_of_without_create_and_bind() -> None:
    g = gevent.spawn(lambda: None)
    assert mailbox_of(g, create=False) is None
    box = Mailbox()
    bind_mailbox(g, box)
    assert mailbox_of(g) is box
    assert box.owner is g
    g.join()


def test_collected_owner_means_not_alive() -> None:
    g = gevent.spawn(lambda: None)
    box = mailbox_of(g)
    g.join()
    del g
    gc.collect()
    assert not box.owner_alive
