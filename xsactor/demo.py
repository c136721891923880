"""``xsactor demo``: a guest agent and a toolstack around an embedded xenstored, in one process.

What it shows, in order:

1. the embedded daemon boots as dom0's xenstored and builds guest domain 5 as xl does;
2. a guest agent (a greenlet speaking as domain 5 on the guest's socket) watches
   ``control/shutdown`` and ``memory/target``; the events arrive as
   ``('watch_event', path, token)`` messages in its own mailbox, Erlang style;
3. the toolstack (dom0) changes the memory target and waits, with ``wait_for``, for the agent's
   acknowledgement under ``data/``; it asks for a poweroff, the agent acknowledges and stops;
4. the simulated hypervisor reports the shutdown: the toolstack's ``@releaseDomain`` watch
   fires; then the domain dies and the daemon deletes the nodes the guest owned.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import gevent

from . import __version__
from .actors.mailbox import mailbox_of
from .bus.client import Client
from .daemon.config import DaemonConfig
from .daemon.server import Daemon
from .daemon.toolstack import GuestSpec

GUEST = 5
STEP_TIMEOUT = 10.0

Say = Callable[[str, str], None]


def guest_agent(socket_path: str, say: Say) -> str:
    """A minimal guest agent: publish, then react to the toolstack until asked to stop.

    Returns the shutdown request it obeyed (``poweroff``, ``reboot``, ...).
    """
    with Client(socket_path) as xs:
        me = xs.domid()
        say("guest", f"agent up in domain {me} (home {xs.home})")
        xs.write("data/agent/version", __version__)
        xs.write("control/feature-poweroff", "1")
        xs.watch("memory/target", "memory")
        xs.watch("control/shutdown", "shutdown")
        xs.write("data/agent/state", "running")
        mailbox = mailbox_of()
        while True:
            match mailbox.receive(timeout=STEP_TIMEOUT):
                case ("watch_event", _path, "memory"):
                    target = xs.read_integer("memory/target")
                    say("guest", f"memory/target is {target} KiB: ballooning, acknowledging")
                    xs.write("data/memory/target-ack", target)
                case ("watch_event", _path, "shutdown"):
                    request = xs.read_str("control/shutdown", default="")
                    if not request:
                        continue  # the registration event, or our own acknowledgement
                    say("guest", f"control/shutdown says {request!r}: acknowledging, stopping")
                    def acknowledge(tid: int) -> None:
                        xs.write("control/shutdown", "", tid)
                        xs.write("data/agent/state", "stopped", tid)

                    xs.transact(acknowledge)
                    return request


def run(out: TextIO) -> int:
    """Run the whole story; a line per step on ``out``. Returns the exit status."""

    def say(who: str, text: str) -> None:
        print(f"[{who:9}] {text}", file=out, flush=True)

    rundir = tempfile.mkdtemp(prefix="xsactor-demo-")
    daemon = Daemon(DaemonConfig(socket_path=str(Path(rundir) / "socket"))).start()
    try:
        say("xenstored", f"embedded xenstored serving dom0 on {daemon.socket_path}")
        guest_socket = daemon.add_guest(GuestSpec(GUEST, name="demo-guest"))
        say("xenstored", f"guest {GUEST} built as xl does, introduced, on {guest_socket}")
        with Client(daemon.socket_path) as dom0:
            home = dom0.get_domain_path(GUEST)
            released = dom0.watch_release_domain("released")
            dom0.next_event(released, timeout=STEP_TIMEOUT)  # the registration event
            agent = gevent.spawn(guest_agent, guest_socket, say)

            def published(path: str, expected: str) -> bool | None:
                return dom0.read_str(f"{home}/{path}", default=None) == expected or None

            dom0.wait_for(lambda: published("data/agent/state", "running"), STEP_TIMEOUT)
            version = dom0.read_str(f"{home}/data/agent/version")
            say("toolstack", f"the agent is running (version {version}); "
                             "setting memory/target to 131072")
            dom0.write(f"{home}/memory/target", 131072)
            dom0.wait_for(lambda: published("data/memory/target-ack", "131072"), STEP_TIMEOUT)
            say("toolstack", "memory target acknowledged; asking for a poweroff")
            dom0.write(f"{home}/control/shutdown", "poweroff")
            request = agent.get(timeout=STEP_TIMEOUT)
            dom0.wait_for(lambda: published("data/agent/state", "stopped"), STEP_TIMEOUT)
            say("toolstack", f"the agent obeyed {request!r}; the hypervisor shuts the domain down")
            daemon.set_domain_state(GUEST, "shutdown")
            path, _ = dom0.next_event(released, timeout=STEP_TIMEOUT)
            say("toolstack", f"{path} fired: domain {GUEST} is shut down; destroying it")
            owned = len(dom0.list(f"{home}/data"))
            daemon.set_domain_state(GUEST, "dying")
            dom0.next_event(released, timeout=STEP_TIMEOUT)
            gone = not dom0.exists(f"{home}/data")
            say("xenstored", f"domain {GUEST} died: its own nodes are deleted "
                             f"({home}/data with {owned} entries {'gone' if gone else 'KEPT'})")
        say("demo", "done")
        return 0 if gone else 1
    finally:
        daemon.stop()
        shutil.rmtree(rundir, ignore_errors=True)
