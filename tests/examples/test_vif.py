"""The vif handshake: backend in dom0, frontend in the guest, 1 -> 2 -> 3 -> 4, then 5 -> 6;
each side survives the other's crash and restart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gevent
from structlog.testing import capture_logs

from xsactor.actors import process as px
from xsactor.actors import supervisor as sup
from xsactor.bus.client import Client
from xsactor.examples import vif
from xsactor.testing.sandbox import Sandbox

BE, FE = vif.backend_path(5), vif.frontend_path(5)


def states(dom0: Client, be: int, fe: int, ring: Any = None) -> int:
    """Wait until the backend and frontend states are ``be`` and ``fe`` (and the frontend's
    ring is not ``ring``); the frontend's tx-ring-ref."""
    def check() -> int | None:
        if (vif.read_state(dom0, BE), vif.read_state(dom0, FE)) != (be, fe):
            return None
        current = dom0.read_integer(f"{FE}/tx-ring-ref", default=None)
        return current if current is not None and current != ring else None
    return dom0.wait_for(check, 10)


def walked(logs: Sequence[Mapping[str, Any]], side: str) -> list[int]:
    return [e["state"] for e in logs if e["event"] == "xenbus state" and e["side"] == side]


def child_pid(root: px.Pid) -> px.Pid:
    (child,) = sup.which_children(sup.which_children(root)[0].pid)
    assert isinstance(child.pid, px.Pid)
    return child.pid


def start_backend(xs: Sandbox, dom0: Client) -> px.Pid:
    """The backend's tree in dom0, on dom0's connection."""
    spec = vif.supervisor_spec("dom0", None, [vif.backend_agent(dom0, 5)])
    return xs.start(spec, client=dom0).handle


def start(xs: Sandbox) -> tuple[Client, px.Pid, px.Pid]:
    """Both trees, each on its own domain's connection, then the toolstack adds the vif."""
    dom0, guest = xs.dom0(), xs.guest(5)
    backend = start_backend(xs, dom0)
    spec = vif.supervisor_spec("guest", None, [vif.frontend_agent(guest)])
    frontend = xs.start(spec, client=guest).handle
    vif.add_vif(dom0, 5)
    return dom0, backend, frontend


def test_handshake_connects_and_closes(xs: Sandbox) -> None:
    with capture_logs() as logs:
        dom0, _, _ = start(xs)
        ring = states(dom0, vif.CONNECTED, vif.CONNECTED)
        assert dom0.read_integer(f"{FE}/event-channel") > 0
        assert dom0.read_str(f"{BE}/feature-rx-copy") == "1"
        vif.detach_vif(dom0, 5)
        states(dom0, vif.CLOSED, vif.CLOSED)
        vif.remove_vif(dom0, 5)
    assert walked(logs, "backend") == [2, 4, 5, 6]
    assert walked(logs, "frontend") == [3, 4, 5, 6]
    mapped = [e["ring_ref"] for e in logs if e["event"] == "backend mapped the ring"]
    assert mapped == [ring]
    assert not dom0.exists(BE) and not dom0.exists(FE)


def test_each_side_survives_the_other_restarting(xs: Sandbox) -> None:
    with capture_logs() as logs:
        dom0, backend, frontend = start(xs)
        first_ring = states(dom0, vif.CONNECTED, vif.CONNECTED)

        px.exit(child_pid(frontend), "boom")  # a new frontend has no ring: it starts over
        second_ring = states(dom0, vif.CONNECTED, vif.CONNECTED, ring=first_ring)

        px.exit(child_pid(backend), "boom")  # a new backend takes the pair as it finds it,
        px.exit(child_pid(frontend), "boom")  # whatever the frontend does meanwhile
        third_ring = states(dom0, vif.CONNECTED, vif.CONNECTED, ring=second_ring)
        vif.detach_vif(dom0, 5)
        states(dom0, vif.CLOSED, vif.CLOSED)
    mapped = [e["ring_ref"] for e in logs if e["event"] == "backend mapped the ring"]
    assert mapped[:2] == [first_ring, second_ring] and mapped[-1] == third_ring
    assert set(mapped[2:]) <= {second_ring, third_ring}  # resumed on the second, or not
    assert walked(logs, "frontend") == [3, 4, 1, 3, 4, 1, 3, 4, 5, 6]
    assert walked(logs, "backend")[:3] == [2, 4, 2] and walked(logs, "backend")[-4:] == [
        2, 4, 5, 6]


def test_the_backend_does_not_trust_the_frontend(xs: Sandbox, xs_dom0: Client) -> None:
    """A frontend that publishes garbage gets its device closed, not dom0's backend crashed."""
    dom0, guest = xs_dom0, xs.guest(5)
    backend = start_backend(xs, dom0)
    worker = child_pid(backend)
    vif.add_vif(dom0, 5)
    dom0.wait_for(lambda: vif.read_state(dom0, BE) == vif.INITWAIT or None, 10)
    guest.write("device/vif/0/tx-ring-ref", "../../../etc")  # a hostile guest, by hand
    guest.write("device/vif/0/event-channel", "1")
    guest.write("device/vif/0/state", vif.INITIALISED)
    dom0.wait_for(lambda: vif.read_state(dom0, BE) == vif.CLOSING or None, 10)
    assert dom0.read_str(f"{BE}/error") == "bad ring details from the frontend"
    assert child_pid(backend) is worker  # no crash


def test_a_restarted_backend_resumes_a_connected_pair(xs: Sandbox) -> None:
    with capture_logs() as logs:
        dom0, backend, _ = start(xs)
        ring = states(dom0, vif.CONNECTED, vif.CONNECTED)
        px.exit(child_pid(backend), "boom")
        with gevent.Timeout(10, AssertionError("the new backend never resumed")):
            while not any(e["event"] == "backend resumed" for e in logs):
                gevent.sleep(0.01)
    assert states(dom0, vif.CONNECTED, vif.CONNECTED) == ring  # nothing renegotiated
    assert [e["ring_ref"] for e in logs if e["event"] == "backend mapped the ring"] == [ring, ring]
    assert walked(logs, "backend") == [2, 4] and walked(logs, "frontend") == [3, 4]
