"""A split driver's handshake: a vif backend agent in dom0 and a frontend agent in the guest.

The toolstack (:func:`add_vif`, as xl does) creates ``/local/domain/0/backend/vif/<domid>/<n>``
and the guest's ``device/vif/<n>``, both in state 1 (Initialising), each pointing at the other.
Then, each side acting on the other's ``state`` key (XenbusState):

- backend: 1 → 2 (InitWait, after publishing its features); when the frontend is 3 it reads
  ``ring-ref`` and ``event-channel`` and goes 4 (Connected); told to go offline
  (``online`` = 0) it goes 5 (Closing), and 6 (Closed) once the frontend is 6;
- frontend: when the backend is 2 it publishes ``ring-ref`` and ``event-channel`` and goes 3
  (Initialised), in one transaction; when the backend is 4 it goes 4; when the backend is 5 it
  goes 6.

Both are level-triggered: every event means "re-read both states and do what is due", so a
side that crashes and is restarted by its supervisor picks up where the states say, and so does
the other side when it sees the restarted one. Run::

    xsactor serve --socket /tmp/xs/socket --guest 5 &
    XENSTORED_PATH=/tmp/xs/socket xsactor run xsactor.agents.vif:backend_tree &   # domain 5
    XENSTORED_PATH=/tmp/xs/5 xsactor run xsactor.agents.vif:frontend_tree
    # and, as the toolstack: python -c "import xsactor; from xsactor.agents.vif import add_vif;
    #   add_vif(xsactor.Client('/tmp/xs/socket'), 5)"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.restarts import Backoff
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client
from ..logs import get_logger

log = get_logger("vif")

INITIALISING, INIT_WAIT, INITIALISED, CONNECTED, CLOSING, CLOSED = range(1, 7)
RING_REF, EVENT_CHANNEL = 8, 9  # what a real frontend would get from grant tables and evtchn


def backend_path(domid: int, devid: int = 0) -> str:
    return f"/local/domain/0/backend/vif/{domid}/{devid}"


def frontend_path(domid: int, devid: int = 0) -> str:
    return f"/local/domain/{domid}/device/vif/{devid}"


def add_vif(dom0: Client, domid: int, devid: int = 0) -> None:
    """What xl does for a new vif: both directories, state 1, each naming the other."""
    back, front = backend_path(domid, devid), frontend_path(domid, devid)

    def create(tid: int) -> None:
        dom0.mkdir(back, tid)                        # new nodes inherit their parent's ACL
        dom0.set_perms(back, ["n0", f"r{domid}"], tid)
        dom0.mkdir(front, tid)
        dom0.set_perms(front, [f"n{domid}", "r0"], tid)
        backend_keys: dict[str, str | int] = {
            "frontend": front, "frontend-id": domid, "online": 1, "state": INITIALISING,
            "mac": "00:16:3e:00:00:01"}
        frontend_keys: dict[str, str | int] = {
            "backend": back, "backend-id": 0, "state": INITIALISING, "handle": devid}
        for key, value in backend_keys.items():
            dom0.write(f"{back}/{key}", value, tid)
        for key, value in frontend_keys.items():
            dom0.write(f"{front}/{key}", value, tid)

    dom0.transact(create)


def _state(client: Client, path: str) -> int:
    return client.read_integer(f"{path}/state", default=0)


def backend(client: Client, domid: int, devid: int) -> None:
    back, front = backend_path(domid, devid), frontend_path(domid, devid)
    client.watch(f"{front}/state")
    client.watch(f"{back}/online")
    while True:
        px.receive(("watch_event", px.ANY, px.ANY))     # level-triggered: re-read it all
        mine, theirs = _state(client, back), _state(client, front)
        if client.read(f"{back}/online", default=b"1") == b"0" and mine < CLOSING:
            log.info("backend closing", domid=domid, devid=devid)
            client.write(f"{back}/state", CLOSING)
        elif mine == INITIALISING:
            client.write(f"{back}/feature-sg", 1)
            client.write(f"{back}/state", INIT_WAIT)
        elif mine == INIT_WAIT and theirs in (INITIALISED, CONNECTED):
            ring = client.read_integer(f"{front}/ring-ref")
            channel = client.read_integer(f"{front}/event-channel")
            log.info("backend connected", domid=domid, devid=devid, ring_ref=ring,
                     event_channel=channel)
            client.write(f"{back}/state", CONNECTED)
        elif mine == CLOSING and theirs == CLOSED:
            client.write(f"{back}/state", CLOSED)
            log.info("backend closed", domid=domid, devid=devid)


def frontend(client: Client, devid: int) -> None:
    front = f"device/vif/{devid}"
    client.watch(front)                     # until the toolstack has created the device
    back = None
    while True:
        px.receive(("watch_event", px.ANY, px.ANY))
        if back is None:
            back = client.read_str(f"{front}/backend", default=None)
            if back is None:
                continue
            client.watch(f"{back}/state")
        mine, theirs = _state(client, front), _state(client, back)
        if theirs == INIT_WAIT and mine < INITIALISED:
            def publish(tid: int) -> None:
                client.write(f"{front}/ring-ref", RING_REF, tid)
                client.write(f"{front}/event-channel", EVENT_CHANNEL, tid)
                client.write(f"{front}/state", INITIALISED, tid)

            client.transact(publish)
            log.info("frontend initialised", devid=devid)
        elif theirs == CONNECTED and mine == INITIALISED:
            client.write(f"{front}/state", CONNECTED)
            log.info("frontend connected", devid=devid)
        elif theirs == CLOSING and mine < CLOSED:
            client.write(f"{front}/state", CLOSED)
            log.info("frontend closed", devid=devid)


def _child(child_id: str, fn: Callable[..., Any], *args: Any) -> ChildSpec:
    return ChildSpec(child_id, lambda: px.spawn_link(fn, *args),
                     backoff=Backoff(min=0.01, max=1.0))


def backend_tree(client: Client | None = None, domid: int = 5, devid: int = 0) -> ChildSpec:
    """dom0's backend agent for ``domid``'s vif ``devid`` (on ``client``, default: the
    default connection)."""
    return supervisor_spec("vif-backend", SupFlags("one_for_one", intensity=10, period=10), [
        _child("backend", lambda: backend(client or default_client(), domid, devid))])


def frontend_child(client: Client | None = None, devid: int = 0) -> ChildSpec:
    """The guest's frontend worker for its vif ``devid``."""
    return _child("frontend", lambda: frontend(client or default_client(), devid))


def frontend_tree(client: Client | None = None, devid: int = 0) -> ChildSpec:
    """The guest's frontend agent for its vif ``devid``."""
    return supervisor_spec("vif-frontend", SupFlags("one_for_one", intensity=10, period=10),
                           [frontend_child(client, devid)])

