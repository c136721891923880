"""4.17's access decision (``perm_for_conn``), as bits: READ, WRITE and OWNER.

1. Privileged callers, the owner and the SET_TARGET controller of the owner get everything.
2. Otherwise the first non-owner entry naming the caller (or its target) decides, skipping
   the entries 4.17 ignores (:func:`void_entries`).
3. Otherwise the owner entry's letter applies.

Which entries count is decided on every check, as 4.17's ``domain_adjust_node_perms`` does
on every node read: an entry counts unless it is flagged (``XS_PERM_IGNORE``, kept in the
node's ``ignored``), or the domain it names has no record, or a record newer than the node
(``chk_domain_generation``: record generation > node generation). A node written keeps the
flags of the check made as it was read (:func:`void_entries`), so an entry judged void then
stays void even once the domain has a record again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..protocol.perms import ACL

READ = 1
WRITE = 2
OWNER = 4
ALL = READ | WRITE | OWNER


class Identity(Protocol):
    """Who is asking: what a connection provides to the access decision."""

    @property
    def domid(self) -> int: ...
    @property
    def privileged(self) -> bool: ...
    @property
    def target(self) -> int | None: ...


class Record(Protocol):
    """A domain record, as far as the access decision reads it."""

    @property
    def generation(self) -> int: ...


Records = Mapping[int, Record]


def _void(domid: int, generation: int, records: Records) -> bool:
    """4.17's ``!chk_domain_generation``: no record for ``domid``, or one made after a node
    of ``generation`` was written."""
    record = records.get(domid & 0xFFFFFFFF)
    return record is None or record.generation > generation


def void_entries(perms: ACL, ignored: frozenset[int] | None, generation: int,
                 records: Records) -> frozenset[int] | None:
    """The indexes of the non-owner entries 4.17 ignores on a node of ``generation`` read
    now: the flags it carries and those a check adds (what a write of the node keeps)."""
    void = ignored
    get = records.get
    for index in range(1, len(perms)):  # most ACLs have one entry: no loop at all
        record = get(perms[index].domid & 0xFFFFFFFF)
        if (record is None or record.generation > generation) and not (void and index in void):
            void = frozenset((*(void or ()), index))
    return void


def perm_for(who: Identity, perms: ACL, ignored: frozenset[int] | None = None,
             generation: int = 0, records: Records | None = None) -> int:
    """The rights ``who`` has on a node with ACL ``perms`` (written at ``generation``;
    without ``records``, only the flags in ``ignored`` void an entry)."""
    if who.privileged:
        return ALL
    domid = who.domid
    target = who.target
    owner = perms[0].domid
    if owner == domid or (target is not None and owner == target):
        return ALL
    for index in range(1, len(perms)):
        entry = perms[index]
        if entry.domid == domid or (target is not None and entry.domid == target):
            if ignored and index in ignored:
                continue
            if records is not None and _void(entry.domid, generation, records):
                continue
            return int(entry.access)
    return int(perms[0].access)
