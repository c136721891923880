"""4.17's access decision (``perm_for_conn``), as bits: READ, WRITE and OWNER.

1. Privileged callers, the owner and the SET_TARGET controller of the owner get everything.
2. Otherwise the first non-owner entry naming the caller (or its target) decides, skipping
   entries that name a vanished domain.
3. Otherwise the owner entry's letter applies.
"""

from __future__ import annotations

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


def perm_for(who: Identity, perms: ACL, ignored: frozenset[int] | None = None) -> int:
    """The rights ``who`` has on a node with ACL ``perms``."""
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
            return int(entry.access)
    return int(perms[0].access)
