"""The example agents and the ready-made ones of ``xsactor.agents``, each a supervision tree,
tested with xsactor's pytest plugin only (``xs.start(tree(), domid=...)`` runs a tree as
``xsactor run`` does)."""

from __future__ import annotations

import domain_monitor as domain_monitor_agent
import gevent
import metrics_publisher
import supervised_balloon
from gevent.event import Event

from xsactor.actors import server
from xsactor.actors import supervisor as sup
from xsactor.actors.restarts import Backoff
from xsactor.agents import balloon as balloon_agent
from xsactor.agents import shutdown as shutdown_agent
from xsactor.agents import vif as vif_handshake
from xsactor.testing.sandbox import Sandbox
from xsactor.testing.util import wait_for

HOME = "/local/domain/5"


def value(xs: Sandbox, path: str, expected: bytes) -> bool:
    """Wait until ``path`` holds ``expected`` (re-reading on every change)."""
    dom0 = xs.dom0()
    return bool(dom0.wait_for(lambda: dom0.read(path, default=None) == expected or None,
                              timeout=10))


def test_shutdown_agent_as_manage_c(xs: Sandbox) -> None:
    done: list[str] = []
    acted = Event()

    def action(request: str):
        return lambda: (done.append(request), acted.set())

    xs.start(shutdown_agent.tree({"poweroff": action("poweroff"), "reboot": action("reboot")}),
             domid=5)
    dom0 = xs.dom0()
    assert value(xs, f"{HOME}/control/feature-poweroff", b"1")
    assert dom0.read(f"{HOME}/control/feature-reboot") == b"1"
    assert dom0.read(f"{HOME}/control/feature-suspend") == b""  # no action: not advertised
    dom0.write(f"{HOME}/control/shutdown", "suspend")           # not handled: left alone
    dom0.write(f"{HOME}/control/shutdown", "reboot")
    assert acted.wait(timeout=10)
    assert done == ["reboot"]
    assert dom0.read(f"{HOME}/control/shutdown") == b""         # acknowledged, then acted


def test_shutdown_agent_ignores_unknown_requests(xs: Sandbox) -> None:
    xs.start(shutdown_agent.tree(), domid=5)
    dom0 = xs.dom0()
    assert value(xs, f"{HOME}/control/feature-suspend", b"1")
    dom0.write(f"{HOME}/control/shutdown", "explode")
    dom0.write(f"{HOME}/data/probe", "1")                       # a later change, seen after
    assert dom0.read(f"{HOME}/control/shutdown") == b"explode"  # unknown: not acknowledged


def test_balloon_follows_the_target_level_triggered(xs: Sandbox) -> None:
    xs.start(balloon_agent.tree(), domid=5)
    dom0 = xs.dom0()
    for target in (b"1024", b"bogus", b"4096"):
        dom0.write(f"{HOME}/memory/target", target)
    assert value(xs, f"{HOME}/data/balloon/would-apply", b"4096")


def test_metrics_published_when_changed_and_stale_keys_removed(xs: Sandbox) -> None:
    dom0 = xs.dom0()
    xs.guest(5).write("data/meminfo_free", "stale")     # left by a previous run
    metrics = {"data/os_name": "TestOS 1", "data/meminfo_total": "100",
               "data/meminfo_free": "50"}
    xs.start(metrics_publisher.tree(lambda: dict(metrics), period=0.01), domid=5)
    assert value(xs, f"{HOME}/data/meminfo_free", b"50")
    updated = dom0.read(f"{HOME}/data/updated")
    metrics["data/meminfo_free"] = "40"
    assert value(xs, f"{HOME}/data/meminfo_free", b"40")
    assert dom0.read(f"{HOME}/data/os_name") == b"TestOS 1"
    assert int(dom0.read(f"{HOME}/data/updated")) >= int(updated)


def test_metrics_republished_after_a_restart_of_their_process(xs: Sandbox) -> None:
    agent = xs.start(metrics_publisher.tree(lambda: {"data/os_name": "TestOS"}, period=0.01),
                     domid=5)
    dom0 = xs.dom0()
    assert value(xs, f"{HOME}/data/os_name", b"TestOS")
    [child] = sup.which_children(agent.handle)
    dom0.delete(f"{HOME}/data/os_name")                 # lost, e.g. with a daemon's restart
    sup.terminate_child(agent.handle, "publisher")
    sup.restart_child(agent.handle, "publisher")
    assert value(xs, f"{HOME}/data/os_name", b"TestOS")  # republished by the new instance
    assert sup.which_children(agent.handle)[0].pid != child.pid


def table_becomes(expected: dict[int, str]) -> None:
    wait_for(lambda: server.call("domain_monitor", "table") == expected, 10,
             f"the table to be {expected}", sleep=gevent.sleep)


def test_domain_monitor_keeps_the_table(xs: Sandbox) -> None:
    xs.start(domain_monitor_agent.tree())
    table_becomes({0: "Domain-0"})
    xs.create_domain(7)
    table_becomes({0: "Domain-0", 7: "guest7"})
    xs.destroy(7)
    table_becomes({0: "Domain-0"})


def test_crashing_subscriber_restarts_then_its_tree_gives_up(xs: Sandbox) -> None:
    agent = xs.start(supervised_balloon.tree(Backoff(min=0.01, max=0.05), intensity=3), domid=5)
    dom0 = xs.dom0()
    dom0.write(f"{HOME}/memory/target", "1024")
    assert value(xs, f"{HOME}/data/balloon", b"1024")
    [first] = sup.which_children(agent.handle)
    dom0.write(f"{HOME}/memory/target", "abc")          # the child crashes on it
    dom0.write(f"{HOME}/memory/target", "2048")
    assert value(xs, f"{HOME}/data/balloon", b"2048")   # restarted (after its backoff)
    assert sup.which_children(agent.handle)[0].pid != first.pid
    dom0.write(f"{HOME}/memory/target", "abc")          # now every instance crashes at once
    assert agent.wait(timeout=30) == "shutdown"         # past its intensity the tree gives up


def test_vif_handshake_with_crashes_on_both_sides(xs: Sandbox) -> None:
    dom0, guest = xs.dom0(), xs.guest(5)
    vif_handshake.add_vif(dom0, 5)
    back, front = vif_handshake.backend_path(5), vif_handshake.frontend_path(5)
    backend = xs.start(vif_handshake.backend_tree(xs.client()))
    assert value(xs, f"{back}/state", b"2")              # InitWait, before any frontend
    sup.terminate_child(backend.handle, "backend")       # the backend crashes...
    frontend = xs.start(vif_handshake.frontend_tree(xs.client(5)))
    assert value(xs, f"{front}/state", b"3")             # ...the frontend goes on
    sup.restart_child(backend.handle, "backend")         # restarted: it reads the states
    assert value(xs, f"{back}/state", b"4")
    assert value(xs, f"{front}/state", b"4")
    assert guest.read(f"{front}/ring-ref") == b"8"
    sup.terminate_child(frontend.handle, "frontend")     # the frontend crashes
    sup.restart_child(frontend.handle, "frontend")
    dom0.write(f"{back}/online", "0")                    # the toolstack unplugs the vif
    assert value(xs, f"{front}/state", b"6")
    assert value(xs, f"{back}/state", b"6")
