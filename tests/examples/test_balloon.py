"""The balloon agent follows memory/target level-triggered and ignores what is not a number;
the strict subscriber crashes on it, is restarted with backoff, and its tree gives up past
its intensity."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from xsactor.actors import process as px
from xsactor.actors import server as gs
from xsactor.actors.restarts import Backoff
from xsactor.bus.client import Client
from xsactor.examples import balloon, strict
from xsactor.protocol.errors import EINVAL
from xsactor.testing.sandbox import Sandbox

HOME = "/local/domain/5"


def reported(dom0: Client, value: str) -> None:
    dom0.wait_for(lambda: dom0.read_str(f"{HOME}/data/balloon", default=None) == value or None,
                  10)


def test_balloon_follows_the_target_and_ignores_garbage(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    with capture_logs() as logs:
        xs.start(balloon.agent(guest), client=guest)
        reported(dom0, "262144")
        server = px.whereis("balloon")  # xl's value, read on the registration event
        for value in ("131072", "140000", "65536"):  # several changes: only the last matters
            dom0.write(f"{HOME}/memory/target", value)
        reported(dom0, "65536")
        dom0.write(f"{HOME}/memory/target", "lots")
        dom0.write(f"{HOME}/memory/target", "٤٢")  # digits, but not ASCII ones
        dom0.write(f"{HOME}/memory/target", "98304")
        reported(dom0, "98304")
    assert gs.call("balloon", "status") == 98304
    assert px.whereis("balloon") is server  # never crashed
    # each event re-reads the current value: a bad one is logged when it was still there
    ignored = {e["value"] for e in logs if e["event"] == "memory target ignored: not a number"}
    assert ignored <= {"lots", "٤٢"}
    applied = [e for e in logs if e["event"] == "balloon target"]
    assert applied[0]["target_kib"] == 262144 and applied[-1]["target_kib"] == 98304
    assert applied[-1]["would"] == "deflate" and applied[-1]["pages"] == (98304 - 65536) // 4


def instance(timeout: float = 10.0) -> tuple[px.Pid, int]:
    message = px.receive(("strict", px.ANY, px.ANY), timeout)
    return message[1], message[2]


def strict_agent(guest: Client, intensity: int) -> object:
    me = px.self_pid()
    return strict.agent(guest, intensity=intensity, period=30,
                        backoff=Backoff(min=0.02, max=0.5, jitter=0),
                        report=lambda target: px.send(me, ("strict", px.self_pid(), target)))


def test_strict_subscriber_crashes_and_is_restarted(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    with capture_logs() as logs:
        root = xs.start(strict_agent(guest, intensity=5), client=guest).handle
        first, target = instance()
        assert target == 262144
        down = px.monitor(first)
        dom0.write(f"{HOME}/memory/target", "lots")
        reason = px.receive(("DOWN", down, "process", first, px.ANY), 10)[4]
        assert isinstance(reason, EINVAL)
        dom0.write(f"{HOME}/memory/target", "4096")
        second, target = instance()
        assert second != first and target == 4096
    assert px.is_alive(root)
    terminated = [e for e in logs if e["event"] == "child terminated"]
    assert terminated and terminated[0]["child_id"] == "strict"
    assert any(e["event"] == "child restart delayed" for e in logs)


def test_strict_tree_gives_up_past_its_intensity(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    with capture_logs() as logs:
        tree = xs.start(strict_agent(guest, intensity=3), client=guest)
        instance()
        dom0.write(f"{HOME}/memory/target", "lots")  # stays bad: every instance dies on it
        assert tree.wait(10) == "shutdown"
    delays = [e["delay"] for e in logs if e["event"] == "child restart delayed"]
    assert delays == sorted(delays) and len(set(delays)) == len(delays) == 3  # 0.02, 0.04, 0.08
    assert [e["event"] for e in logs if e.get("report") == "shutdown"] == ["supervisor gave up"]
    with pytest.raises(px.ReceiveTimeout):
        instance(timeout=0)
