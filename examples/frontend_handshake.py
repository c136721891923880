"""The XenBus device handshake, frontend side, with ``wait_for`` and ``transact``.

A split driver's frontend (in the guest) and backend (in dom0) meet in XenStore: each
publishes its details and a ``state`` (XenbusState: 1 Initialising, 3 Initialised,
4 Connected), and each waits for the other. This plays both sides against one daemon::

    python examples/frontend_handshake.py            # its own embedded daemon
"""

from __future__ import annotations

import tempfile

import gevent

import xsactor
from xsactor.daemon import Daemon, DaemonConfig
from xsactor.daemon.toolstack import GuestSpec
from xsactor.logs import configure

INITIALISING, INITIALISED, CONNECTED = 1, 3, 4
DOMID, DEVID = 7, 0


def backend(dom0: xsactor.Client) -> None:
    fe = f"/local/domain/{DOMID}/device/vif/{DEVID}"
    be = f"/local/domain/0/backend/vif/{DOMID}/{DEVID}"

    def setup(tid: int) -> None:
        # As libxl: make each directory with its ACL first; the nodes below inherit it.
        dom0.mkdir(be, tid)
        dom0.set_perms(be, ["n0", f"r{DOMID}"], tid)
        dom0.write(f"{be}/frontend", fe, tid)
        dom0.write(f"{be}/state", INITIALISING, tid)
        dom0.mkdir(fe, tid)
        dom0.set_perms(fe, [f"n{DOMID}", "r0"], tid)
        dom0.write(f"{fe}/backend", be, tid)
        dom0.write(f"{fe}/backend-id", 0, tid)
        dom0.write(f"{fe}/state", INITIALISING, tid)
    dom0.transact(setup)
    print("backend:  device created, waiting for the frontend", flush=True)
    dom0.wait_for(lambda: dom0.read_integer(f"{fe}/state") == INITIALISED or None, 10)
    ring = dom0.read_integer(f"{fe}/tx-ring-ref")
    print(f"backend:  frontend initialised (ring {ring}); connecting", flush=True)
    dom0.write(f"{be}/state", CONNECTED)


def frontend(guest: xsactor.Client) -> None:
    base = f"device/vif/{DEVID}"
    be = guest.wait_for(lambda: guest.read_str(f"{base}/backend", default=None), 10)

    def publish(tid: int) -> None:
        guest.write(f"{base}/tx-ring-ref", 8, tid)
        guest.write(f"{base}/event-channel", 12, tid)
        guest.write(f"{base}/state", INITIALISED, tid)
    guest.transact(publish)
    print(f"frontend: published ring details; waiting for {be}", flush=True)
    guest.wait_for(lambda: guest.read_integer(f"{be}/state") == CONNECTED or None, 10)
    guest.write(f"{base}/state", CONNECTED)
    print("frontend: connected", flush=True)


def main() -> int:
    configure("warning")
    with tempfile.TemporaryDirectory() as rundir, \
            Daemon(DaemonConfig(socket_path=f"{rundir}/socket")) as daemon:
        guest_socket = daemon.add_guest(GuestSpec(DOMID))
        with xsactor.Client(daemon.socket_path) as dom0, xsactor.Client(guest_socket) as guest:
            gevent.joinall([gevent.spawn(backend, dom0), gevent.spawn(frontend, guest)],
                           raise_error=True, timeout=30)
            state = guest.read_integer(f"device/vif/{DEVID}/state")
    return 0 if state == CONNECTED else 1


if __name__ == "__main__":
    raise SystemExit(main())
