"""Per-connection state: who it speaks for, its transactions and watches, its output queue.

The output queue holds encoded replies and watch events, a frame an entry, in the order they
were produced. Events still waiting in it are remembered so that an identical one can be
dropped (4.17's duplicate-event suppression; ``@`` events are exempt). The transport (see
:mod:`.sockets`) takes the queue with :meth:`Connection.take_output`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..protocol.errors import E2BIG
from ..protocol.ops import HEADER, PAYLOAD_MAX, Op
from ..protocol.paths import home_path

if TYPE_CHECKING:
    from .domains import Domain
    from .transactions import Transaction
    from .watches import Watch

_pack = HEADER.pack
_E2BIG = E2BIG.wire
_ids = itertools.count(1)


class Connection:
    """One client of the daemon: the dom0 socket (privileged) or a guest domain's socket."""

    __slots__ = ("closed", "domain", "domid", "home", "id", "next_tx_id", "on_output", "out",
                 "pending_events", "privileged", "queued", "transactions", "watches")

    def __init__(self, domain: Domain, *, privileged: bool,
                 on_output: Callable[[Connection], None] | None = None) -> None:
        self.id = next(_ids)
        self.domain = domain
        self.domid = domain.domid
        self.privileged = privileged
        self.home = home_path(domain.domid)
        self.transactions: dict[int, Transaction] = {}
        self.next_tx_id = 1
        self.watches: dict[tuple[str, bytes], Watch] = {}
        self.out: list[bytes] = []
        self.queued = 0  # bytes in ``out``
        self.pending_events: set[bytes] = set()
        self.on_output = on_output
        self.closed = False

    @property
    def target(self) -> int | None:
        """The domain this one controls (SET_TARGET), if any."""
        return self.domain.target

    # -- output ----------------------------------------------------------------------------
    def reply(self, op: int, req_id: int, tx_id: int, payload: bytes) -> None:
        """Queue a reply (E2BIG instead when the payload is too large)."""
        size = len(payload)
        if size > PAYLOAD_MAX:
            op, payload, size = Op.ERROR, _E2BIG, len(_E2BIG)
        self.out.append(_pack(op, req_id, tx_id, size) + payload)
        self.queued += 16 + size

    def error(self, req_id: int, tx_id: int, wire: bytes) -> None:
        self.out.append(_pack(Op.ERROR, req_id, tx_id, len(wire)) + wire)
        self.queued += 16 + len(wire)

    def event(self, payload: bytes, *, special: bool = False) -> None:
        """Queue a watch event unless an identical one is still waiting to be sent."""
        if not special:
            if payload in self.pending_events:
                return
            self.pending_events.add(payload)
        self.out.append(_pack(Op.WATCH_EVENT, 0, 0, len(payload)) + payload)
        self.queued += 16 + len(payload)

    def take_output(self) -> bytes:
        """Everything queued, as one buffer; from now on those events count as sent."""
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.queued = 0
        if self.pending_events:
            self.pending_events.clear()
        return data

    def discard_output(self) -> None:
        self.out.clear()
        self.queued = 0
        self.pending_events.clear()

    def flush(self) -> None:
        """Hand the output to the transport (dropped if the connection has none)."""
        if self.out:
            if self.on_output is not None:
                self.on_output(self)
            else:
                self.discard_output()

    def __repr__(self) -> str:
        kind = "privileged" if self.privileged else "guest"
        return f"<Connection #{self.id} dom{self.domid} {kind}>"
