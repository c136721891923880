"""What Xen's toolstack writes into XenStore, as data: dom0's boot entries and xl's guest layout.

Pure (no I/O). :func:`apply_steps` plays the steps through any dom0 connection: the
embedded daemon applies them to its own store, the reference harness sends them to the C
xenstored, so both daemons start from one tree. The layout is what xl (libxl 4.17) builds for
a PV guest, node by node and ACL by ACL, in libxl's order and in libxl's transactions:

1. ``libxl__domain_make``: one transaction that removes a previous domain's leftovers and
   makes the home (``n0 r<domid>``), ``/vm/<uuid>`` (``n0 r<domid>``), ``/libxl/<domid>``
   (``n0``), the guest-owned nodes (``n<domid>``) and the platform features;
2. ``store_libxl_entry``: ``/libxl/<domid>/dm-version``;
3. ``libxl__build_post``: one transaction with ``memory/*``, ``domid``, ``store/*``,
   ``cpu/N/availability`` and the ``/vm/<uuid>`` image entries, then ``INTRODUCE``;
4. after INTRODUCE, ``libxl__device_console_add`` (``libxl__device_generic_add``, one
   transaction): the primary console's frontend (``n0 r<domid>``, its ``backend-id``
   ``n<domid> r0``), backend and the ``/libxl`` copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..protocol.errors import EAGAIN, ENOENT
from ..protocol.ops import DOMID_FIRST_RESERVED
from ..protocol.paths import home_path
from ..protocol.perms import ACL, Access, Perm


@dataclass(frozen=True, slots=True)
class Entry:
    """One toolstack request on ``path``: RM (``remove``; a missing path is fine), or create
    it (WRITE ``value``, MKDIR when value is None) and then, when ``acl`` is given, SET_PERMS."""

    path: str
    value: bytes | None = None
    acl: ACL | None = None
    remove: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """Entries the toolstack sends together: in one transaction (retried on EAGAIN, as libxl
    does) unless ``transaction`` is false."""

    entries: tuple[Entry, ...]
    transaction: bool = True


@dataclass(frozen=True, slots=True)
class GuestSpec:
    """What xl would be told about a new guest (a PV guest, xenconsoled on dom0)."""

    domid: int
    name: str = ""
    uuid: str = ""
    memory_kb: int = 262144
    vcpus: int = 1
    store_port: int = 1
    store_gfn: int = 0
    console_port: int = 2
    console_gfn: int = 0
    kernel: str = "/boot/vmlinuz"
    cmdline: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.domid < DOMID_FIRST_RESERVED:
            raise ValueError(f"guest domid must be in 1..{DOMID_FIRST_RESERVED - 1}, "
                             f"not {self.domid}")
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


def console_backend_path(domid: int) -> str:
    """The primary console's backend directory (xenconsoled in dom0)."""
    return f"/local/domain/0/backend/console/{domid}/0"


def replaced_paths(spec: GuestSpec) -> list[str]:
    """What xl removes of a domain when it destroys it, and again before building a new one
    with that domid: the daemon deletes only the nodes a dead domain owned, and the dom0-owned
    rest keeps ACL entries naming the dead domid, which 4.17 ignores for good.

    ``libxl__domain_make`` removes the first three, ``libxl__device_generic_add`` the console's
    backend directory, which ``libxl__device_destroy`` cleans up with its emptied parent.
    """
    return [home_path(spec.domid), f"/vm/{spec.uuid}", f"/libxl/{spec.domid}",
            console_backend_path(spec.domid).rsplit("/", 1)[0]]


def _acls(domid: int) -> tuple[ACL, ACL, ACL]:
    """libxl's ``roperm`` (dom0's, readable by the guest), ``rwperm`` (the guest's) and
    ``noperm`` (dom0 only)."""
    return ((Perm(Access.NONE, 0), Perm(Access.READ, domid)), (Perm(Access.NONE, domid),),
            (Perm(Access.NONE, 0),))


def _write(path: str, value: str, acl: ACL | None = None) -> Entry:
    return Entry(path, value.encode(), acl)


def domain_make(spec: GuestSpec) -> Step:
    """``libxl__domain_make``'s transaction."""
    domid = spec.domid
    home = home_path(domid)
    vm = f"/vm/{spec.uuid}"
    libxl = f"/libxl/{domid}"
    roperm, rwperm, noperm = _acls(domid)
    entries = [
        Entry(home, remove=True), Entry(home, None, roperm),
        Entry(vm, remove=True), Entry(vm, None, roperm),
        Entry(libxl, remove=True), Entry(libxl, None, noperm),
        Entry(f"{libxl}/device", None, noperm),
        _write(f"{home}/vm", vm),
        # libxl__domain_rename
        _write(f"{home}/name", spec.name),
        _write(f"{vm}/name", spec.name),
    ]
    entries += [Entry(f"{home}/{sub}", None, roperm)
                for sub in ("cpu", "memory", "device", "control")]
    entries += [Entry(f"{home}/{sub}", None, rwperm)
                for sub in ("control/shutdown", "control/feature-poweroff",
                            "control/feature-reboot", "control/feature-suspend",
                            "control/sysrq", "device/suspend/event-channel", "data", "drivers",
                            "feature", "attr", "error")]
    entries += [
        _write(f"{vm}/uuid", spec.uuid),
        _write(f"{vm}/name", spec.name),
        _write(f"{home}/control/platform-feature-multiprocessor-suspend", "1"),
        _write(f"{home}/control/platform-feature-xs_reset_watches", "1"),
        _write(f"{libxl}/type", "pv"),
    ]
    return Step(tuple(entries))


def build_post(spec: GuestSpec) -> Step:
    """``libxl__build_post``'s transaction (with ``libxl__domain_build``'s PV ``/vm``
    entries); INTRODUCE follows it."""
    home = home_path(spec.domid)
    vm = f"/vm/{spec.uuid}"
    entries = [
        _write(f"{home}/memory/static-max", str(spec.memory_kb)),
        _write(f"{home}/memory/target", str(spec.memory_kb)),
        _write(f"{home}/memory/videoram", "0"),  # a PV guest's video_memkb defaults to 0
        _write(f"{home}/domid", str(spec.domid)),
        _write(f"{home}/store/port", str(spec.store_port)),
        _write(f"{home}/store/ring-ref", str(spec.store_gfn)),
    ]
    entries += [_write(f"{home}/cpu/{i}/availability", "online") for i in range(spec.vcpus)]
    entries += [
        _write(f"{vm}/image/ostype", "linux"),
        _write(f"{vm}/image/kernel", spec.kernel),
        _write(f"{vm}/start_time", "0.00"),
    ]
    if spec.cmdline:
        entries.append(_write(f"{vm}/image/cmdline", spec.cmdline))
    return Step(tuple(entries))


def console_add(spec: GuestSpec) -> Step:
    """``libxl__device_console_add`` of the primary PV console (``libxl__device_generic_add``'s
    transaction), done after INTRODUCE."""
    domid = spec.domid
    roperm = _acls(domid)[0]
    frontend_perms: ACL = (Perm(Access.NONE, domid), Perm(Access.READ, 0))
    frontend = f"{home_path(domid)}/console"
    backend = console_backend_path(domid)
    libxl = f"/libxl/{domid}/device/console/0"
    back = [("frontend-id", str(domid)), ("online", "1"), ("state", "1"),
            ("protocol", "vt100")]
    entries = [
        Entry(libxl, remove=True),
        _write(f"{libxl}/frontend", frontend),
        _write(f"{libxl}/backend", backend),
        Entry(frontend, remove=True), Entry(frontend, None, roperm),
        _write(f"{frontend}/backend", backend),
        _write(f"{frontend}/backend-id", "0", frontend_perms),
    ]
    entries += [_write(f"{frontend}/{key}", value, roperm)
                for key, value in (("limit", "1048576"), ("type", "xenconsoled"),
                                   ("output", "pty"), ("tty", ""),
                                   ("port", str(spec.console_port)),
                                   ("ring-ref", str(spec.console_gfn)))]
    entries += [Entry(backend, remove=True), Entry(backend, None, roperm),
                _write(f"{backend}/frontend", frontend)]
    entries += [_write(f"{backend}/{key}", value) for key, value in back]
    entries += [_write(f"{libxl}/{key}", value) for key, value in back]
    return Step(tuple(entries))


def guest_steps(spec: GuestSpec) -> list[Step]:
    """What xl sends before INTRODUCE."""
    dm_version = Step((_write(f"/libxl/{spec.domid}/dm-version", "qemu_xen"),),
                      transaction=False)
    return [domain_make(spec), dm_version, build_post(spec)]


def device_steps(spec: GuestSpec) -> list[Step]:
    """What xl sends after INTRODUCE (the console)."""
    return [console_add(spec)]


GUEST_OWNED_NODES = 12
"""Nodes a fresh guest owns (they count against its node quota): ``control/shutdown`` …
``error`` and ``console/backend-id``."""


class TreeWriter(Protocol):
    """A dom0 connection as :func:`apply_steps` uses it; a failed request raises."""

    def mkdir(self, path: str, /, tx_id: int = 0) -> object: ...

    def write(self, path: str, value: bytes, /, tx_id: int = 0) -> object: ...

    def set_perms(self, path: str, perms: Sequence[Perm], /, tx_id: int = 0) -> object: ...

    def rm(self, path: str, /, tx_id: int = 0) -> object: ...

    def start(self) -> int: ...

    def end(self, tx_id: int, /, commit: bool = True) -> object: ...


class GuestBuilder(TreeWriter, Protocol):
    """A dom0 connection that may also INTRODUCE (:func:`create_guest`)."""

    def introduce(self, domid: int, gfn: int, port: int, /) -> object: ...


def create_guest(dom0: GuestBuilder, spec: GuestSpec) -> None:
    """Build the guest's tree as xl does (a previous domain's leftovers removed), INTRODUCE
    it, then add its console."""
    apply_steps(dom0, guest_steps(spec))
    dom0.introduce(spec.domid, spec.store_gfn, spec.store_port)
    apply_steps(dom0, device_steps(spec))


def apply_entries(dom0: TreeWriter, entries: Iterable[Entry], tx_id: int = 0) -> None:
    """Send each entry (RM; or MKDIR/WRITE, then SET_PERMS if it has an ACL)."""
    for entry in entries:
        if entry.remove:
            with contextlib.suppress(ENOENT):
                dom0.rm(entry.path, tx_id=tx_id)
            continue
        if entry.value is None:
            dom0.mkdir(entry.path, tx_id=tx_id)
        else:
            dom0.write(entry.path, entry.value, tx_id=tx_id)
        if entry.acl is not None:
            dom0.set_perms(entry.path, entry.acl, tx_id=tx_id)


def apply_steps(dom0: TreeWriter, steps: Iterable[Step]) -> None:
    """Play each step, a transactional one in a transaction retried on EAGAIN."""
    for step in steps:
        if not step.transaction:
            apply_entries(dom0, step.entries)
            continue
        while True:
            tx_id = dom0.start()
            try:
                apply_entries(dom0, step.entries, tx_id)
            except BaseException:
                with contextlib.suppress(Exception):
                    dom0.end(tx_id, commit=False)
                raise
            try:
                dom0.end(tx_id)
            except EAGAIN:
                continue
            break
