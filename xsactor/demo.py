"""``xsactor demo``: a guest's supervised agents, a vif backend in dom0 and a toolstack around
an embedded xenstored, in one process, in a few seconds.

1. the embedded daemon boots as dom0's xenstored and builds guest 5 as xl does;
2. dom0 runs its tree (the domain monitor, the vif backend) and the guest its own
   (:mod:`xsactor.examples.guest`: shutdown, balloon, strict, metrics, vif frontend), each on
   its own connection, with the runner's restart gate and declared watches;
3. the toolstack plays its part: it connects a vif (XenbusState 1 -> 4 on both sides),
   changes the memory target, writes a bad one (the strict subscriber crashes and is
   restarted with backoff until a good value is back), detaches the vif (5 -> 6), and asks
   for a poweroff; the guest's shutdown agent acknowledges it as manage.c does, and "powers
   off" (its tree stops); the hypervisor reports the shutdown, the toolstack destroys the
   domain, and the monitor sees it gone.

The story is told by structlog's console logs; the toolstack's own steps are ``toolstack``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import gevent

from . import logs
from .actors import process as px
from .actors import server as gs
from .actors import supervisor as sup
from .actors.childspec import SupFlags
from .bus.client import Client
from .daemon.config import DaemonConfig
from .daemon.server import Daemon
from .daemon.toolstack import GuestSpec
from .examples import domains, guest, vif
from .runner import HostedTree, host_tree

GUEST = 5
STEP_TIMEOUT = 5.0

log = logs.get_logger("xsactor.demo")


def run(out: TextIO, level: str = "info") -> int:
    """Tell the whole story as logs on ``out``; the exit status."""
    logs.configure(level, out, console=True)
    with tempfile.TemporaryDirectory(prefix="xsactor-demo-") as rundir, \
            Daemon(DaemonConfig(socket_path=str(Path(rundir) / "socket"))) as daemon:
        guest_socket = daemon.add_guest(GuestSpec(GUEST, name="demo-guest"))
        log.info("xenstored up, guest built as xl does", domid=GUEST, dom0=daemon.socket_path,
                 guest=guest_socket)
        with Client(daemon.socket_path, name="dom0") as dom0, \
                Client(guest_socket, name="guest") as domu:
            try:
                return Toolstack(daemon, dom0, domu).play()
            finally:
                px.release_self()


class Toolstack:
    """The demo's main process: starts the trees, then plays xl."""

    def __init__(self, daemon: Daemon, dom0: Client, domu: Client) -> None:
        self.daemon = daemon
        self.dom0 = dom0
        self.domu = domu
        self.home = f"/local/domain/{GUEST}"
        self.me = px.self_pid()

    def step(self, text: str, **kw: Any) -> None:
        log.info(f"toolstack: {text}", **kw)

    def wait(self, what: str, fn: Callable[[], Any]) -> Any:
        """Until ``fn()`` (reading through dom0) is not None; as ``wait_for``."""
        return self.dom0.wait_for(fn, STEP_TIMEOUT)

    def play(self) -> int:
        me = self.me
        actions = {name: (lambda name=name: px.send(me, ("guest kernel", name)))
                   for name in ("poweroff", "halt", "reboot")}
        dom0_tree = host_tree(sup.supervisor_spec(
            "dom0", SupFlags(intensity=3, period=10),
            [domains.child(self.dom0), vif.backend_child(self.dom0, GUEST)], name="dom0"),
            self.dom0, STEP_TIMEOUT)
        guest_tree = host_tree(guest.agent(self.domu, actions, report=self.strict_report),
                               self.domu, STEP_TIMEOUT)
        self.connect_vif()
        self.memory_target()
        self.bad_value()
        self.detach_vif()
        self.shutdown(guest_tree)
        self.destroy()
        dom0_tree.stop(STEP_TIMEOUT)
        log.info("demo done")
        return 0

    def strict_report(self, target: int) -> None:
        px.send(self.me, ("strict", px.self_pid(), target))

    def states(self) -> tuple[int | None, int | None]:
        return (vif.read_state(self.dom0, vif.backend_path(GUEST)),
                vif.read_state(self.dom0, vif.frontend_path(GUEST)))

    def connect_vif(self) -> None:
        self.step("connect vif 0 (xl network-attach)")
        vif.add_vif(self.dom0, GUEST)
        self.wait("connected", lambda: self.states() == (vif.CONNECTED, vif.CONNECTED) or None)
        self.step("vif 0 connected on both sides")

    def memory_target(self) -> None:
        self.step("set the memory target (xl mem-set)", target_kib=131072)
        self.dom0.write(f"{self.home}/memory/target", 131072)
        self.wait("balloon", lambda: self.dom0.read_str(
            f"{self.home}/data/balloon", default=None) == "131072" or None)
        self.step("the balloon reported the new target", report=f"{self.home}/data/balloon")

    def bad_value(self) -> None:
        pid = self.latest_strict()
        self.step("write a bad memory target", value="lots")
        down = px.monitor(pid)
        self.dom0.write(f"{self.home}/memory/target", "lots")
        px.receive(("DOWN", down, "process", pid, px.ANY), STEP_TIMEOUT)
        self.step("the strict subscriber crashed; write a good value back", target_kib=196608)
        self.dom0.write(f"{self.home}/memory/target", 196608)
        while True:
            _, new, target = px.receive(("strict", px.ANY, px.ANY), STEP_TIMEOUT)
            if target == 196608:
                break
        self.step("a restarted instance read the good value", pid=repr(new), old=repr(pid))

    def latest_strict(self) -> px.Pid:
        """The live strict subscriber: the last one to report."""
        pid = None
        while True:
            try:
                pid = px.receive(("strict", px.ANY, px.ANY), 0 if pid else STEP_TIMEOUT)[1]
            except px.ReceiveTimeout:
                assert pid is not None
                return pid

    def detach_vif(self) -> None:
        self.step("detach vif 0 (xl network-detach)")
        vif.detach_vif(self.dom0, GUEST)
        self.wait("closed", lambda: self.states() == (vif.CLOSED, vif.CLOSED) or None)
        vif.remove_vif(self.dom0, GUEST)
        self.step("vif 0 closed on both sides and removed")

    def shutdown(self, guest_tree: HostedTree) -> None:
        self.step("ask the guest to power off (xl shutdown)")
        self.dom0.write(f"{self.home}/control/shutdown", "poweroff")
        request = px.receive(("guest kernel", px.ANY), STEP_TIMEOUT)[1]
        cleared = self.dom0.read_str(f"{self.home}/control/shutdown")
        self.step("the guest acknowledged and acts", request=request, control_shutdown=cleared)
        guest_tree.stop(STEP_TIMEOUT)  # the guest's kernel stops its agents...
        self.domu.close()
        self.daemon.set_domain_state(GUEST, "shutdown")  # ... and the hypervisor reports it
        self.step("the hypervisor reports the domain shut down", domid=GUEST)

    def destroy(self) -> None:
        self.step("destroy the domain (xl destroy: its nodes, then the domain)", domid=GUEST)
        for path in (self.home, f"/libxl/{GUEST}"):
            self.dom0.delete(path)
        self.daemon.set_domain_state(GUEST, "dying")
        deadline = gevent.Timeout(STEP_TIMEOUT)
        with deadline:
            while GUEST in gs.call("domains", "table"):
                gevent.sleep(0.01)
        self.step("domain cleaned up", domid=GUEST, left=self.dom0.exists(self.home))
