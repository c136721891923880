"""What Xen's toolstack writes into XenStore, as data: dom0's boot entries and xl's guest layout.

Pure (no I/O). :func:`apply_entries` plays the entries through any dom0 connection: the
embedded daemon applies them to its own store, the reference harness sends them to the C
xenstored, so both daemons start from one tree. The layout follows xen-init-dom0 and libxl
(``libxl__domain_make`` and ``libxl__build_post``) for a PV guest with one vcpu.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..protocol.paths import home_path
from ..protocol.perms import ACL, Access, Perm


@dataclass(frozen=True, slots=True)
class Entry:
    """Create ``path``: written with ``value`` (or made with MKDIR when value is None), then,
    when ``acl`` is given, given that ACL with SET_PERMS."""

    path: str
    value: bytes | None = None
    acl: ACL | None = None


@dataclass(frozen=True, slots=True)
class GuestSpec:
    """What xl would be told about a new guest."""

    domid: int
    name: str = ""
    uuid: str = ""
    memory_kb: int = 262144
    vcpus: int = 1
    store_port: int = 1
    store_gfn: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.domid < 0x7FF0:
            raise ValueError(f"guest domid must be in 1..32751, not {self.domid}")
        if not self.name:
            object.__setattr__(self, "name", f"guest{self.domid}")
        if not self.uuid:
            object.__setattr__(self, "uuid", f"00000000-0000-4000-8000-{self.domid:012x}")


def dom0_entries() -> list[Entry]:
    """What xen-init-dom0 writes at boot."""
    return [
        Entry("/local/domain/0/domid", b"0"),
        Entry("/local/domain/0/name", b"Domain-0"),
        Entry("/local/pool/0/name", b"Pool-0"),
    ]


def replaced_paths(spec: GuestSpec) -> list[str]:
    """What xl removes before building a guest: a previous domain's leftovers.

    After a domain dies the daemon deletes only the nodes it owned; the dom0-owned rest keeps
    ACL entries naming the dead domid, which 4.17 ignores for good, so a new domain reusing the
    domid could not read them (``libxl__domain_make`` removes these first).
    """
    return [home_path(spec.domid), f"/vm/{spec.uuid}", f"/libxl/{spec.domid}"]


def guest_entries(spec: GuestSpec) -> list[Entry]:
    """The tree xl builds for a new PV guest before INTRODUCE.

    The home and ``cpu``, ``memory``, ``device``, ``control`` are dom0's and readable by the
    guest; the guest owns 11 nodes (``control/shutdown`` … ``error``) before writing anything.
    """
    domid = spec.domid
    home = home_path(domid)
    vm = f"/vm/{spec.uuid}"
    read_only: ACL = (Perm(Access.NONE, 0), Perm(Access.READ, domid))
    guest_owned: ACL = (Perm(Access.NONE, domid),)
    dom0_only: ACL = (Perm(Access.NONE, 0),)

    def mknod(path: str, acl: ACL) -> Entry:
        return Entry(path, None, acl)

    def write(path: str, value: str) -> Entry:
        return Entry(path, value.encode())

    entries = [
        mknod(home, read_only),
        mknod(vm, dom0_only),
        mknod(f"/libxl/{domid}", dom0_only),
        mknod(f"/libxl/{domid}/device", dom0_only),
        write(f"{home}/vm", vm),
        write(f"{home}/name", spec.name),
    ]
    entries += [mknod(f"{home}/{sub}", read_only) for sub in ("cpu", "memory", "device", "control")]
    entries += [
        mknod(f"{home}/{sub}", guest_owned)
        for sub in (
            "control/shutdown",
            "control/feature-poweroff",
            "control/feature-reboot",
            "control/feature-suspend",
            "control/sysrq",
            "data",
            "drivers",
            "feature",
            "device/suspend/event-channel",
            "attr",
            "error",
        )
    ]
    entries += [
        write(f"{vm}/uuid", spec.uuid),
        write(f"{vm}/name", spec.name),
        write(f"{home}/control/platform-feature-multiprocessor-suspend", "1"),
        write(f"{home}/control/platform-feature-xs_reset_watches", "1"),
        # libxl__build_post
        write(f"{home}/memory/static-max", str(spec.memory_kb)),
        write(f"{home}/memory/target", str(spec.memory_kb)),
        write(f"{home}/memory/videoram", "-1"),
        write(f"{home}/domid", str(domid)),
        write(f"{home}/store/port", str(spec.store_port)),
        write(f"{home}/store/ring-ref", str(spec.store_gfn)),
    ]
    entries += [write(f"{home}/cpu/{i}/availability", "online") for i in range(spec.vcpus)]
    entries.append(write(f"{vm}/start_time", "0.00"))
    return entries


GUEST_OWNED_NODES = 11
"""Nodes a fresh guest owns (they count against its node quota)."""


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
