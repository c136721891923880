"""The shutdown agent behaves as Linux's manage.c: transaction, acknowledge only what it
handles, retry on EAGAIN, act after the commit, advertise its features."""

from __future__ import annotations

from typing import Any

import pytest

from xsactor.actors import process as px
from xsactor.bus.client import Client
from xsactor.examples import shutdown
from xsactor.testing.sandbox import Sandbox

HOME = "/local/domain/5"


def recording(dom0: Client, names: tuple[str, ...] = tuple(shutdown.FEATURES)
              ) -> dict[str, Any]:
    """Actions that tell the test what they did and what control/shutdown held then."""
    me = px.self_pid()

    def act(name: str) -> None:
        px.send(me, ("acted", name, dom0.read_str(f"{HOME}/control/shutdown")))

    return {name: (lambda name=name: act(name)) for name in names}


def acted(timeout: float = 10.0) -> tuple[str, str]:
    message = px.receive(("acted", px.ANY, px.ANY), timeout)
    return message[1], message[2]


def request(dom0: Client, value: str) -> None:
    dom0.write(f"{HOME}/control/shutdown", value)


def test_advertises_acknowledges_and_acts_after_the_commit(
        xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    xs.start(shutdown.agent(guest, recording(dom0)), client=guest)
    features = dom0.wait_for(lambda: [dom0.read_str(f"{HOME}/control/feature-{n}", default=None)
                                      for n in ("poweroff", "reboot", "suspend", "halt")]
                             if dom0.exists(f"{HOME}/control/feature-suspend") else None, 10)
    assert features == ["1", "1", "1", None]  # halt has no feature flag

    request(dom0, "suspend")
    assert acted() == ("suspend", "")  # acknowledged and committed before acting
    request(dom0, "poweroff")
    assert acted() == ("poweroff", "")
    request(dom0, "reboot")  # shutting down: ignored, left in place
    with pytest.raises(px.ReceiveTimeout):
        acted(timeout=0.3)
    assert dom0.read_str(f"{HOME}/control/shutdown") == "reboot"


def test_empty_and_unknown_requests_are_left_alone(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    xs.start(shutdown.agent(guest, recording(dom0, ("poweroff", "reboot"))), client=guest)
    dom0.wait_for(lambda: dom0.exists(f"{HOME}/control/feature-reboot") or None, 10)
    # no suspend action: not advertised (the node stays as xl made it)
    assert dom0.read_str(f"{HOME}/control/feature-suspend") == ""
    request(dom0, "")
    request(dom0, "suspend")  # not handled here: not acknowledged, for whoever knows it
    request(dom0, "reboot")
    assert acted() == ("reboot", "")
    dom0.write(f"{HOME}/control/shutdown", "dance")
    with pytest.raises(px.ReceiveTimeout):
        acted(timeout=0.3)
    assert dom0.read_str(f"{HOME}/control/shutdown") == "dance"


def test_a_conflicting_write_makes_it_read_again(xs: Sandbox, xs_dom0: Client) -> None:
    dom0 = xs_dom0

    class Racing(Client):
        """The toolstack changes its mind between the agent's read and its commit."""
        raced = False

        def commit(self, tid: int, **kw: Any) -> None:
            if not Racing.raced:
                Racing.raced = True
                dom0.write(f"{HOME}/control/shutdown", "reboot")
            super().commit(tid, **kw)

    guest = xs.client(5, client_class=Racing)
    xs.start(shutdown.agent(guest, recording(dom0)), client=guest)
    dom0.wait_for(lambda: dom0.exists(f"{HOME}/control/feature-reboot") or None, 10)
    request(dom0, "poweroff")
    assert acted() == ("reboot", "")  # the poweroff it first read was never acted on
    assert Racing.raced
    with pytest.raises(px.ReceiveTimeout):
        acted(timeout=0.3)
