"""Play the toolstack over the wire: what xl does to a daemon, through a dom0 connection.

Used by the daemon drivers of the tests for both the embedded and the C xenstored, so a guest
domain is built the same way on each. The steps, :func:`apply_steps` and its ``TreeWriter``
live in :mod:`xsactor.daemon.toolstack`, which the embedded daemon uses too.
"""

from __future__ import annotations

from ..daemon.toolstack import (
    GuestSpec,
    TreeWriter,
    apply_entries,
    apply_steps,
    device_steps,
    dom0_entries,
    guest_steps,
)
from .wire import WireClient

__all__ = ["TreeWriter", "apply_entries", "apply_steps", "boot_dom0", "create_guest"]


def boot_dom0(dom0: WireClient) -> None:
    """What xen-init-dom0 writes (the C daemon starts without it)."""
    apply_entries(dom0, dom0_entries())


def create_guest(dom0: WireClient, spec: GuestSpec) -> None:
    """Build the guest's tree as xl does (a previous domain's leftovers removed), INTRODUCE
    it, then add its console."""
    apply_steps(dom0, guest_steps(spec))
    dom0.introduce(spec.domid, spec.store_gfn, spec.store_port)
    apply_steps(dom0, device_steps(spec))
