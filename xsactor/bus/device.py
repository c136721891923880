"""The bus's write order on the xenbus device, as Linux's ``xenbus_dev_frontend.c`` needs it.

The kernel handles WATCH and UNWATCH inside ``write()`` (``xenbus_write_watch``): it holds
the file's ``msgbuffer_mutex`` across a synchronous round trip to xenstored, and delivering a
reply to that file (``xenbus_dev_queue_reply``, in the single ``xenbus_thread``) needs the
same mutex. A WATCH written while an earlier request of the file is unanswered can deadlock
the guest's whole xenbus. So a WATCH or UNWATCH waits, with everything queued behind it, until
every earlier request of the connection is answered (or has timed out or failed); other
requests stay pipelined. Writes themselves happen in the transport's writer thread, never in
the hub.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..protocol import Op
from ..protocol.ops import HEADER
from .transports import DeviceTransport

__all__ = ["DeviceWrites"]

_EXCLUSIVE = frozenset({int(Op.WATCH), int(Op.UNWATCH)})


class DeviceWrites:
    """Hands the bus's messages to a :class:`DeviceTransport` in an order the kernel takes.

    ``pending`` is the bus's ``req_id → entry`` map, in request order: a message whose request
    is no longer pending (timed out or failed before it went out) is not written.
    """

    __slots__ = ("held", "pending", "transport")

    def __init__(self, transport: DeviceTransport, pending: dict[int, Any]) -> None:
        self.transport = transport
        self.pending = pending
        self.held: deque[bytes] = deque()
        """Messages from the first waiting WATCH/UNWATCH on, in order."""

    def submit(self, batch: list[bytes]) -> None:
        """Write ``batch`` (whole messages, in order) as soon as the rules allow."""
        if self.held:
            self.held.extend(batch)
            self.release()
            return
        put, unpack = self.transport.put, HEADER.unpack_from
        for index, message in enumerate(batch):
            if unpack(message)[0] in _EXCLUSIVE:
                self.held.extend(batch[index:])
                self.release()
                return
            put(message)

    def release(self) -> None:
        """Write what may go now; call again when a request is answered, fails or expires."""
        held, pending, put = self.held, self.pending, self.transport.put
        while held and not self.transport.closed:
            op, req_id = HEADER.unpack_from(held[0])[:2]
            if req_id not in pending:
                held.popleft()
                continue
            if op in _EXCLUSIVE and next(iter(pending)) != req_id:
                return  # an earlier request is still in flight
            put(held.popleft())
