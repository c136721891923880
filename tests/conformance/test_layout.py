"""The guest layout is what xl (libxl 4.17) builds for a PV guest: node by node, values and
ACLs, children in libxl's order (``libxl__domain_make``, ``libxl__build_post``,
``libxl__device_console_add``). The table below is written from libxl's sources, apart from
:mod:`xsactor.daemon.toolstack`, so it checks that module; and the tree ``xsactor serve
--guest N`` builds is compared with the one the reference harness builds on the C daemon."""

from __future__ import annotations

from typing import Any

import pytest

from xsactor.daemon.toolstack import GuestSpec
from xsactor.testing.daemons import require_reference, running
from xsactor.testing.wire import WireClient

from .conftest import Harness
from .util import dump_tree, generation


def libxl_layout(domid: int, uuid: str, name: str) -> list[tuple[str, str, str]]:
    """(path, value, ACL) of every node xl makes for a PV guest with 256 MiB and one vcpu."""
    ro, rw, no = f"n0 r{domid}", f"n{domid}", "n0"
    home, vm, libxl = f"/local/domain/{domid}", f"/vm/{uuid}", f"/libxl/{domid}"
    backend = f"/local/domain/0/backend/console/{domid}/0"
    return [
        (home, "", ro),
        (f"{home}/vm", vm, ro),
        (f"{home}/name", name, ro),
        (f"{home}/cpu", "", ro),
        (f"{home}/cpu/0", "", ro),
        (f"{home}/cpu/0/availability", "online", ro),
        (f"{home}/memory", "", ro),
        (f"{home}/memory/static-max", "262144", ro),
        (f"{home}/memory/target", "262144", ro),
        (f"{home}/memory/videoram", "0", ro),
        (f"{home}/device", "", ro),
        (f"{home}/device/suspend", "", ro),
        (f"{home}/device/suspend/event-channel", "", rw),
        (f"{home}/control", "", ro),
        (f"{home}/control/shutdown", "", rw),
        (f"{home}/control/feature-poweroff", "", rw),
        (f"{home}/control/feature-reboot", "", rw),
        (f"{home}/control/feature-suspend", "", rw),
        (f"{home}/control/sysrq", "", rw),
        (f"{home}/control/platform-feature-multiprocessor-suspend", "1", ro),
        (f"{home}/control/platform-feature-xs_reset_watches", "1", ro),
        (f"{home}/data", "", rw),
        (f"{home}/drivers", "", rw),
        (f"{home}/feature", "", rw),
        (f"{home}/attr", "", rw),
        (f"{home}/error", "", rw),
        (f"{home}/domid", str(domid), ro),
        (f"{home}/store", "", ro),
        (f"{home}/store/port", "1", ro),
        (f"{home}/store/ring-ref", "0", ro),
        (f"{home}/console", "", ro),
        (f"{home}/console/backend", backend, ro),
        (f"{home}/console/backend-id", "0", f"n{domid} r0"),
        (f"{home}/console/limit", "1048576", ro),
        (f"{home}/console/type", "xenconsoled", ro),
        (f"{home}/console/output", "pty", ro),
        (f"{home}/console/tty", "", ro),
        (f"{home}/console/port", "2", ro),
        (f"{home}/console/ring-ref", "0", ro),
        (vm, "", ro),
        (f"{vm}/name", name, ro),
        (f"{vm}/uuid", uuid, ro),
        (f"{vm}/image", "", ro),
        (f"{vm}/image/ostype", "linux", ro),
        (f"{vm}/image/kernel", "/boot/vmlinuz", ro),
        (f"{vm}/start_time", "0.00", ro),
        (libxl, "", no),
        (f"{libxl}/device", "", no),
        (f"{libxl}/device/console", "", no),
        (f"{libxl}/device/console/0", "", no),
        (f"{libxl}/device/console/0/frontend", f"{home}/console", no),
        (f"{libxl}/device/console/0/backend", backend, no),
        (f"{libxl}/device/console/0/frontend-id", str(domid), no),
        (f"{libxl}/device/console/0/online", "1", no),
        (f"{libxl}/device/console/0/state", "1", no),
        (f"{libxl}/device/console/0/protocol", "vt100", no),
        (f"{libxl}/type", "pv", no),
        (f"{libxl}/dm-version", "qemu_xen", no),
        (backend, "", ro),
        (f"{backend}/frontend", f"{home}/console", ro),
        (f"{backend}/frontend-id", str(domid), ro),
        (f"{backend}/online", "1", ro),
        (f"{backend}/state", "1", ro),
        (f"{backend}/protocol", "vt100", ro),
    ]


def _subtrees(conn: WireClient, roots: list[str]) -> list[tuple[str, str, str]]:
    return [(path, value.decode(), " ".join(acl))
            for root in roots for path, value, acl in dump_tree(conn, root)]


def test_guest_layout_is_libxls_node_by_node(daemon: Harness) -> None:
    spec = daemon.spec(name="web-1")
    daemon.add_guest(spec)
    expected = libxl_layout(spec.domid, spec.uuid, "web-1")
    roots = [f"/local/domain/{spec.domid}", f"/vm/{spec.uuid}", f"/libxl/{spec.domid}",
             f"/local/domain/0/backend/console/{spec.domid}/0"]
    assert _subtrees(daemon.dom0(), roots) == expected


def test_serve_guest_builds_the_tree_the_reference_harness_builds() -> None:
    """The whole tree, from ``/``: ``serve --guest 3`` against the harness's guest 3 on 4.17."""
    require_reference()
    trees = []
    cases: list[tuple[str, dict[str, Any]]] = [("reference", {}), ("embedded", {"guests": (3,)})]
    for kind, options in cases:
        with running(kind, **options) as started:
            if kind == "reference":
                started.add_guest(GuestSpec(3))
            with started.dom0() as dom0:
                trees.append([(*node, generation(dom0, node[0])) for node in dump_tree(dom0)])
    reference, embedded = trees
    assert [node[0] for node in embedded] == [node[0] for node in reference]
    assert embedded == reference  # generation numbers included


@pytest.mark.parametrize("field", ["vm", "backend"])
def test_guest_reads_what_libxl_lets_it_read(daemon: Harness, field: str) -> None:
    g = daemon.guest()
    path = {"vm": g.read("vm").decode(),
            "backend": g.read("console/backend").decode()}[field]
    assert g.read(path) == b""
