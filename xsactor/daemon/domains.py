"""Domains as 4.17 tracks them, and the simulated hypervisor's view of them.

A :class:`Domain` exists for dom0 (from the start), for every introduced guest, and, as in
4.17, for any domid that an ACL or a node's ownership refers to (4.17 allocates a domain
record for accounting). Its ``generation`` is the store's generation when the record was
made: an ACL entry naming the domain counts only on nodes last written at or after that
generation (4.17's ``chk_domain_generation``, judged on every check: see ``access.py``), so
entries naming a domain whose record vanished (release, death) grant nothing, and regain
nothing on older nodes when the domid comes back.

The hypervisor is simulated: :attr:`Domains.states` holds what ``xc_domain_getinfo`` would
answer (``running``, ``shutdown``, ``crashed``, ``dying`` or ``gone``; running if unset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.ops import DOMID_FIRST_RESERVED, DOMID_SELF

HYPERVISOR_STATES = ("running", "shutdown", "crashed", "dying", "gone")


@dataclass(eq=False)
class Domain:
    domid: int
    generation: int = 0
    introduced: bool = False
    shutdown: bool = False
    port: int = 0
    target: int | None = None
    # SET_TARGET makes the controller's connection hold a reference on the target's (4.17
    # talloc_reference): one entry per SET_TARGET, most recent last. While any is held,
    # RELEASE only drops the most recent one, and death leaves the domain detached.
    held_by: list[int] = field(default_factory=list)
    detached: bool = False
    # A protocol error on its "ring" (4.17 sets the ring's error and ignores the domain for
    # good): no connection of it is served again, until the domain is gone.
    broken: bool = False
    watch_count: int = 0
    transaction_count: int = 0


class Domains:
    """The domain records, keyed by domid."""

    def __init__(self) -> None:
        self.table: dict[int, Domain] = {0: Domain(0, introduced=True)}
        self.states: dict[int, str] = {}

    def get(self, domid: int) -> Domain | None:
        return self.table.get(domid)

    def ensure(self, domid: int, generation: int) -> Domain:
        """The record for ``domid``, made now if it does not exist yet."""
        domain = self.table.get(domid)
        if domain is None:
            domain = self.table[domid] = Domain(domid, generation=generation)
        return domain

    def introduced(self, domid: int) -> Domain | None:
        domain = self.table.get(domid)
        return domain if domain is not None and domain.introduced else None

    def is_introduced(self, domid: int) -> bool:
        return domid == DOMID_SELF or self.introduced(domid) is not None

    def remove(self, domid: int) -> Domain | None:
        return self.table.pop(domid, None)

    def exists(self, domid: int) -> bool:
        """Whether the (simulated) hypervisor knows the domain: any domid below Xen's
        reserved ones that was not destroyed (as the reference harness's stub answers). The
        reserved bound also bounds the domain records requests can make."""
        return domid < DOMID_FIRST_RESERVED and self.states.get(domid) != "gone"
