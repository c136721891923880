"""A split driver's handshake: a vif backend in dom0 and its frontend in the guest.

The toolstack (:func:`add_vif`, as libxl's ``libxl__device_generic_add``) creates both halves:
``/local/domain/0/backend/vif/<domid>/<devid>`` (dom0's, readable by the guest) and
``/local/domain/<domid>/device/vif/<devid>`` (the guest's), each with its ``state`` at 1 and a
pointer to the other. Then the two agents talk only through each other's ``state``
(XenbusState)::

    backend  1 Initialising -> 2 InitWait       (its features published)
    frontend 1 Initialising -> 3 Initialised    (tx-ring-ref, rx-ring-ref, event-channel)
    backend  2 -> 4 Connected                   (maps the ring, binds the event channel)
    frontend 3 -> 4 Connected
    toolstack: backend online = 0 (:func:`detach_vif`, as ``xl network-detach``)
    backend  4 -> 5 Closing;  frontend -> 5 Closing -> 6 Closed;  backend -> 6 Closed

Each side is level-triggered: on any event it re-reads its own state, the other side's and
``online``, and takes the step that the pair calls for, so a restarted instance simply
carries on from what the store says. A new frontend instance has no ring (the crashed one's
memory is gone): it goes back to 1, and the backend, seeing its frontend at 1 while
connected, goes back to 2 and connects to the new ring. A new backend instance finding the
pair connected maps the published ring again and leaves the states alone.

    python -m xsactor.examples.vif      # both sides, vif 0 of guest 5, on an embedded daemon
    xsactor run xsactor.examples.vif:backend_agent --socket DOM0-SOCKET     # or each side
    xsactor run xsactor.examples.vif:frontend_agent --socket GUEST-SOCKET   # on its own
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from .. import logs
from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.restarts import Backoff
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client

log = logs.get_logger(__name__)

UNKNOWN, INITIALISING, INITWAIT, INITIALISED, CONNECTED, CLOSING, CLOSED = range(7)
STATE_NAMES = ("Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing",
               "Closed")

_grants: Iterator[int] = itertools.count(8)
"""Grant references of the simulated frontend's rings (a new instance: new pages)."""


def backend_path(domid: int, devid: int = 0) -> str:
    return f"/local/domain/0/backend/vif/{domid}/{devid}"


def frontend_path(domid: int, devid: int = 0) -> str:
    return f"/local/domain/{domid}/device/vif/{devid}"


# -- the toolstack's part -----------------------------------------------------------------------
def add_vif(dom0: Client, domid: int, devid: int = 0, mac: str = "00:16:3e:00:00:01") -> None:
    """Create both halves of the device, as libxl does, in one transaction."""
    be, fe = backend_path(domid, devid), frontend_path(domid, devid)

    def create(tid: int) -> None:
        dom0.mkdir(be, tid)  # each directory with its ACL first; the nodes below inherit it
        dom0.set_perms(be, ["n0", f"r{domid}"], tid)
        for key, value in (("frontend", fe), ("frontend-id", domid), ("online", 1),
                           ("mac", mac), ("state", INITIALISING)):
            dom0.write(f"{be}/{key}", value, tid)
        dom0.mkdir(fe, tid)
        dom0.set_perms(fe, [f"n{domid}", "r0"], tid)
        for key, value in (("backend", be), ("backend-id", 0), ("mac", mac),
                           ("state", INITIALISING)):
            dom0.write(f"{fe}/{key}", value, tid)
    dom0.transact(create)


def detach_vif(dom0: Client, domid: int, devid: int = 0) -> None:
    """Ask the backend to close the device (``online`` = 0), as ``xl network-detach``."""
    dom0.write(f"{backend_path(domid, devid)}/online", 0)


def remove_vif(dom0: Client, domid: int, devid: int = 0) -> None:
    """Delete both halves (once both are Closed)."""
    def remove(tid: int) -> None:
        dom0.delete(backend_path(domid, devid), tid)
        dom0.delete(frontend_path(domid, devid), tid)
    dom0.transact(remove)


# -- shared ---------------------------------------------------------------------------------------
def switch_state(xs: Client, base: str, side: str, old: int | None, new: int) -> None:
    xs.write(f"{base}/state", new)
    logged_state(base, side, old, new)


def logged_state(base: str, side: str, old: int | None, new: int) -> None:
    log.info("xenbus state", side=side, path=base, state=new, name=STATE_NAMES[new],
             previous=old)


def read_state(xs: Client, base: str) -> int | None:
    raw = xs.read_str(f"{base}/state", default=None)
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None


# -- the backend, in dom0 -------------------------------------------------------------------------
def backend(client: Client | None, domid: int, devid: int) -> None:
    """The backend of one vif: watches its own directory and the frontend's state."""
    xs = client or default_client()
    be, fe = backend_path(domid, devid), frontend_path(domid, devid)
    xs.watch(be, "backend")  # released by the bus when this process dies
    xs.watch(f"{fe}/state", "frontend")
    mapped: tuple[int, int] | None = None
    while True:
        px.receive(("watch_event", px.ANY, px.ANY))
        own, other = read_state(xs, be), read_state(xs, fe)
        if own is None:
            mapped = None
            continue  # no device (not yet, or removed)
        online = xs.read_str(f"{be}/online", default="0") == "1"
        if not online:
            if own < CLOSING:
                switch_state(xs, be, "backend", own, CLOSING)
            elif own == CLOSING and other in (CLOSED, UNKNOWN, None):
                mapped = None
                switch_state(xs, be, "backend", own, CLOSED)
        elif own == INITIALISING:
            def init_wait(tid: int) -> None:
                xs.write(f"{be}/feature-rx-copy", 1, tid)
                xs.write(f"{be}/feature-sg", 1, tid)
                xs.write(f"{be}/state", INITWAIT, tid)
            xs.transact(init_wait)
            logged_state(be, "backend", own, INITWAIT)
        elif own == INITWAIT and other in (INITIALISED, CONNECTED):
            mapped = map_ring(xs, fe)
            if mapped is None:  # the guest's input is not trusted: xenbus_dev_fatal
                xs.write(f"{be}/error", "bad ring details from the frontend")
                switch_state(xs, be, "backend", own, CLOSING)
            else:
                switch_state(xs, be, "backend", own, CONNECTED)
        elif own == CONNECTED and other == INITIALISING:
            log.info("frontend restarted: waiting for its new ring", path=fe)
            mapped = None
            switch_state(xs, be, "backend", own, INITWAIT)
        elif own == CONNECTED and mapped is None and other in (INITIALISED, CONNECTED):
            mapped = map_ring(xs, fe)  # a new backend instance: the pair is still connected
            log.info("backend resumed", path=be, mapped=mapped is not None)


def map_ring(xs: Client, fe: str) -> tuple[int, int] | None:
    """Read (and, in a real backend, map) the frontend's ring; None if what the guest wrote
    is not a ring reference and an event channel."""
    ring = xs.read_str(f"{fe}/tx-ring-ref", default="")
    channel = xs.read_str(f"{fe}/event-channel", default="")
    if not all(v.isascii() and v.isdigit() for v in (ring, channel)):
        log.warning("bad ring details from the frontend", path=fe, ring_ref=ring,
                    event_channel=channel)
        return None
    log.info("backend mapped the ring", path=fe, ring_ref=int(ring), event_channel=int(channel))
    return int(ring), int(channel)


def backend_child(client: Client | None = None, domid: int = 5, devid: int = 0) -> ChildSpec:
    return ChildSpec(f"vif-{domid}-{devid}",
                     lambda: px.spawn_link(backend, client, domid, devid),
                     backoff=Backoff(min=0.05, max=2.0))


def backend_agent(client: Client | None = None, domid: int = 5, devid: int = 0) -> ChildSpec:
    """dom0's tree: the backend of vif ``devid`` of domain ``domid``."""
    return supervisor_spec("vif-backend", SupFlags(intensity=5, period=30),
                           [backend_child(client, domid, devid)])


# -- the frontend, in the guest -------------------------------------------------------------------
def frontend(client: Client | None, devid: int) -> None:
    """The frontend of vif ``devid``: its directory's watch is declared in its child spec;
    it watches the backend's state itself once it knows where that is."""
    xs = client or default_client()
    base = f"device/vif/{devid}"
    watching: str | None = None
    fresh = True  # this instance has no ring yet
    while True:
        px.receive(("watch_event", px.ANY, px.ANY))
        own = read_state(xs, base)
        be = xs.read_str(f"{base}/backend", default=None)
        if own is None or be is None:
            continue
        if be != watching:
            if watching is not None:
                xs.unwatch(f"{watching}/state", "backend")
            xs.watch(f"{be}/state", "backend")  # its first event comes next
            watching = be
        other = read_state(xs, be)
        if fresh and own in (INITIALISED, CONNECTED) and other != CLOSING:
            log.info("frontend restarted: starting over", path=base)
            switch_state(xs, base, "frontend", own, INITIALISING)
            own = INITIALISING
        fresh = False
        if other == CLOSING and own < CLOSING:
            switch_state(xs, base, "frontend", own, CLOSING)
            switch_state(xs, base, "frontend", CLOSING, CLOSED)
        elif other == INITWAIT and own == INITIALISING:
            tx, rx, channel = next(_grants), next(_grants), next(_grants)

            def initialised(tid: int, tx: int = tx, rx: int = rx, channel: int = channel
                            ) -> None:
                xs.write(f"{base}/tx-ring-ref", tx, tid)
                xs.write(f"{base}/rx-ring-ref", rx, tid)
                xs.write(f"{base}/event-channel", channel, tid)
                xs.write(f"{base}/request-rx-copy", 1, tid)
                xs.write(f"{base}/state", INITIALISED, tid)
            xs.transact(initialised)
            logged_state(base, "frontend", own, INITIALISED)
        elif other == CONNECTED and own == INITIALISED:
            switch_state(xs, base, "frontend", own, CONNECTED)


def frontend_child(client: Client | None = None, devid: int = 0) -> ChildSpec:
    return ChildSpec(f"vif-{devid}", lambda: px.spawn_link(frontend, client, devid),
                     watches=((f"device/vif/{devid}", "device"),),
                     backoff=Backoff(min=0.05, max=2.0))


def frontend_agent(client: Client | None = None, devid: int = 0) -> ChildSpec:
    """The guest's tree: the frontend of vif ``devid``."""
    return supervisor_spec("vif-frontend", SupFlags(intensity=5, period=30),
                           [frontend_child(client, devid)])


def pair(dom0: Client, guest: Client | None = None, domid: int = 5, devid: int = 0
         ) -> ChildSpec:
    """Both sides in one tree (for a demonstration: in life they run in different domains)."""
    return supervisor_spec("vif-pair", SupFlags(intensity=5, period=30), [
        backend_agent(dom0, domid, devid), frontend_agent(guest, devid)])


if __name__ == "__main__":
    from ..bus.client import Client as _Client
    from .main import GUEST, embedded, main

    def _both() -> int:
        with embedded() as (daemon, guest_socket), _Client(daemon.socket_path) as dom0:
            add_vif(dom0, GUEST)
            log.info("vif added; detach it with", command=(
                f"xsactor write -s {daemon.socket_path} {backend_path(GUEST)}/online 0"))
            return main(lambda: pair(dom0), argv=["--socket", guest_socket])

    raise SystemExit(_both())
