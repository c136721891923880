"""Play the toolstack over the wire: what xl does to a daemon, through a dom0 connection.

Used by the daemon drivers of the tests for both the embedded and the C xenstored, so a guest
domain is built the same way on each. The steps, :func:`apply_steps`, :func:`create_guest`
and their ``TreeWriter`` live in :mod:`xsactor.daemon.toolstack`, which the embedded daemon
uses too.
"""

from __future__ import annotations

from ..daemon.toolstack import TreeWriter, apply_entries, apply_steps, create_guest, dom0_entries
from .wire import WireClient

__all__ = ["TreeWriter", "apply_entries", "apply_steps", "boot_dom0", "create_guest"]


def boot_dom0(dom0: WireClient) -> None:
    """What xen-init-dom0 writes (the C daemon starts without it)."""
    apply_entries(dom0, dom0_entries())
