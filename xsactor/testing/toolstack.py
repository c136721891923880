"""Play the toolstack over the wire: what xl does to a daemon, through a dom0 connection.

Used by the daemon drivers of the tests for both the embedded and the C xenstored, so a guest
domain is built the same way on each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from ..daemon.toolstack import Entry, GuestSpec, dom0_entries, guest_entries, replaced_paths
from ..protocol.errors import ENOENT
from ..protocol.perms import Perm
from .wire import WireClient


class TreeWriter(Protocol):
    """A dom0 connection as :func:`apply_entries` uses it; a failed request raises."""

    def mkdir(self, path: str, /) -> object: ...

    def write(self, path: str, value: bytes, /) -> object: ...

    def set_perms(self, path: str, perms: Sequence[Perm], /) -> object: ...


def apply_entries(dom0: TreeWriter, entries: Iterable[Entry]) -> None:
    """Create each entry (MKDIR or WRITE), then set its ACL if it has one."""
    for entry in entries:
        if entry.value is None:
            dom0.mkdir(entry.path)
        else:
            dom0.write(entry.path, entry.value)
        if entry.acl is not None:
            dom0.set_perms(entry.path, entry.acl)


def boot_dom0(dom0: WireClient) -> None:
    """What xen-init-dom0 writes (the C daemon starts without it)."""
    apply_entries(dom0, dom0_entries())


def create_guest(dom0: WireClient, spec: GuestSpec, *, introduce: bool = True) -> None:
    """Build the guest's tree as xl does (removing a previous domain's leftovers first), then
    INTRODUCE it."""
    for path in replaced_paths(spec):
        with contextlib.suppress(ENOENT):
            dom0.rm(path)
    apply_entries(dom0, guest_entries(spec))
    if introduce:
        dom0.introduce(spec.domid, spec.store_gfn, spec.store_port)
