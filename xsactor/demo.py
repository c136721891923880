"""``xsactor demo``: a guest's agents under one supervision tree, a vif backend in dom0, and a
toolstack driving them, around an embedded xenstored, in one process, in a few seconds.

1. the embedded daemon boots as dom0's xenstored and builds guest domain 5 as xl does;
2. the guest's agents start under one supervisor, on the guest's own connection: the shutdown
   agent (``control/shutdown`` as Linux's manage.c), a strict balloon (``memory/target``) and
   a vif frontend; dom0 runs the vif backend (:mod:`xsactor.agents`);
3. the toolstack connects a vif (XenbusState 1 -> 4 on both sides), changes the memory target,
   writes a bad one (the balloon crashes; its supervisor restarts it after a backoff) and a
   good one again, then asks for a poweroff;
4. the guest acknowledges, stops its agents and powers off; the hypervisor reports the
   shutdown (``@releaseDomain``), the toolstack destroys the domain and its tree is gone.

The story is told by the console logs of every part (toolstack, agents, supervisors).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from gevent.event import Event

from .actors import process as px
from .actors.childspec import SupFlags
from .actors.supervisor import supervisor_spec
from .agents import balloon, shutdown, vif
from .bus.client import Client
from .bus.default import set_default
from .daemon.config import DaemonConfig
from .daemon.server import Daemon
from .daemon.toolstack import GuestSpec, replaced_paths
from .logs import configure, get_logger
from .runner import host_tree

GUEST = 5
STEP_TIMEOUT = 8.0

log = get_logger("demo")


def guest_agents(guest: Client, poweroff: Event) -> object:
    """The guest's tree: shutdown, a strict balloon and the vif frontend, one_for_one."""
    return supervisor_spec("guest-agents", SupFlags("one_for_one", intensity=5, period=10), [
        shutdown.child({"poweroff": poweroff.set}),
        balloon.child(strict=True),
        vif.frontend_child(guest),
    ])


def run(out: TextIO) -> int:
    """Run the whole story, logging to ``out``; the exit status."""
    configure("info", out, console=True)
    rundir = tempfile.mkdtemp(prefix="xsactor-demo-")
    daemon = Daemon(DaemonConfig(socket_path=str(Path(rundir) / "socket"))).start()
    try:
        return _story(daemon)
    finally:
        px.release_self()
        set_default(None)
        daemon.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def _story(daemon: Daemon) -> int:
    toolstack = log.bind(who="toolstack")
    guest_socket = daemon.add_guest(GuestSpec(GUEST, name="demo-guest"))
    toolstack.info("guest built as xl does and introduced", domid=GUEST, socket=guest_socket)
    with Client(daemon.socket_path, name="dom0") as dom0, \
            Client(daemon.socket_path, name="dom0-backend") as backend_client:
        home = dom0.get_domain_path(GUEST)
        guest = Client(guest_socket, name="guest")
        set_default(guest)                      # the guest's agents use the default connection
        guest.domid()
        poweroff = Event()
        agents = host_tree(guest_agents(guest, poweroff), guest)
        backend = host_tree(vif.backend_tree(backend_client, GUEST), guest)
        toolstack.info("guest agents and the dom0 vif backend started")

        def holds(path: str, expected: str) -> bool | None:
            return dom0.read_str(path, default=None) == expected or None

        vif.add_vif(dom0, GUEST)
        toolstack.info("vif 0 added: both ends in state 1 (Initialising)")
        dom0.wait_for(lambda: holds(f"{vif.frontend_path(GUEST)}/state", "4") and
                      holds(f"{vif.backend_path(GUEST)}/state", "4"), STEP_TIMEOUT)
        toolstack.info("vif 0 connected: both ends in state 4 (Connected)")

        dom0.write(f"{home}/memory/target", 131072)
        dom0.wait_for(lambda: holds(f"{home}/data/balloon/would-apply", "131072"),
                      STEP_TIMEOUT)
        toolstack.info("memory target 131072 KiB acknowledged by the balloon")

        toolstack.info("writing a bad memory target: the balloon will crash")
        dom0.write(f"{home}/memory/target", "lots")
        dom0.write(f"{home}/memory/target", 262144)
        dom0.wait_for(lambda: holds(f"{home}/data/balloon/would-apply", "262144"),
                      STEP_TIMEOUT)
        toolstack.info("the restarted balloon applied 262144 KiB")

        released = dom0.watch_release_domain("released")
        dom0.next_event(released, timeout=STEP_TIMEOUT)  # the registration event
        dom0.write(f"{home}/control/shutdown", "poweroff")
        toolstack.info("asked the guest to power off")
        if not poweroff.wait(STEP_TIMEOUT):
            toolstack.error("the guest did not act on the poweroff")
            return 1
        log.info("powering off: stopping the agents", who="guest",
                 acknowledged=dom0.read_str(f"{home}/control/shutdown") == "")
        agents.stop()
        guest.close()                                    # the guest OS is off
        daemon.set_domain_state(GUEST, "shutdown")       # the hypervisor: it shut down
        dom0.next_event(released, timeout=STEP_TIMEOUT)
        toolstack.info("@releaseDomain fired: the domain shut down; destroying it")
        daemon.set_domain_state(GUEST, "gone")
        for path in (*replaced_paths(GuestSpec(GUEST)), vif.backend_path(GUEST)):
            if dom0.exists(path):
                dom0.delete(path)
        backend.stop()
        gone = not dom0.exists(home)
        toolstack.info("domain destroyed and cleaned up", domid=GUEST, tree_gone=gone,
                       processes_left=len(px.processes()))
        log.info("done")
        return 0 if gone else 1
