"""The request engine: :class:`XenStore` answers every XenStore request type as 4.17's C
xenstored does, and :data:`HANDLERS` says which function answers which.

Each request type's handler lives in the module named after its group:

=============================  =====================================================
module                         request types
=============================  =====================================================
``ops_nodes``                  READ, DIRECTORY, DIRECTORY_PART, GET_PERMS, WRITE, MKDIR, RM,
                               SET_PERMS
``ops_watches``                WATCH, UNWATCH, RESET_WATCHES
``ops_transactions``           TRANSACTION_START, TRANSACTION_END
``ops_domains``                GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, INTRODUCE, RELEASE,
                               RESUME, SET_TARGET
``control``                    CONTROL
=============================  =====================================================

They all work on a :class:`~.state.State` (the tree, domains, watches, quotas,
connections), which :class:`XenStore` is. The transport feeds it whole requests
(:meth:`XenStore.process`) for a :class:`~.connection.Connection` and collects the
connection's output queue afterwards; it knows nothing about sockets beyond the
:class:`~.state.Transport` hooks it calls when domains come and go.

Order of checks for every request (:meth:`XenStore.process`): unknown type -> ENOSYS;
privileged type from a guest -> EACCES; unknown tx_id (except WATCH/UNWATCH) -> ENOENT; then
the handler. Section numbers in comments refer to ``xenstore-semantics.md``.
"""

from __future__ import annotations

from ..protocol.errors import EACCES, ENOENT, ENOSYS, XenStoreError
from ..protocol.ops import HEADER, PRIVILEGED_OPS, Op
from . import control, ops_domains, ops_nodes, ops_transactions, ops_watches
from .connection import Connection
from .ops_nodes import CACHED_OPS, cached_answer, cached_write
from .state import OK, Handler, NullTransport, State, Transport

__all__ = ["HANDLERS", "NullTransport", "Transport", "XenStore"]

HANDLERS: dict[Op, Handler] = {
    Op.CONTROL: control.op_control,
    Op.DIRECTORY: ops_nodes.op_directory,
    Op.READ: ops_nodes.op_read,
    Op.GET_PERMS: ops_nodes.op_get_perms,
    Op.WATCH: ops_watches.op_watch,
    Op.UNWATCH: ops_watches.op_unwatch,
    Op.TRANSACTION_START: ops_transactions.op_transaction_start,
    Op.TRANSACTION_END: ops_transactions.op_transaction_end,
    Op.INTRODUCE: ops_domains.op_introduce,
    Op.RELEASE: ops_domains.op_release,
    Op.GET_DOMAIN_PATH: ops_domains.op_get_domain_path,
    Op.WRITE: ops_nodes.op_write,
    Op.MKDIR: ops_nodes.op_mkdir,
    Op.RM: ops_nodes.op_rm,
    Op.SET_PERMS: ops_nodes.op_set_perms,
    Op.IS_DOMAIN_INTRODUCED: ops_domains.op_is_domain_introduced,
    Op.RESUME: ops_domains.op_resume,
    Op.SET_TARGET: ops_domains.op_set_target,
    Op.RESET_WATCHES: ops_watches.op_reset_watches,
    Op.DIRECTORY_PART: ops_nodes.op_directory_part,
}
"""Which function answers each request type (the others answer ENOSYS)."""

_TABLE: list[Handler | None] = [HANDLERS.get(Op(op)) for op in range(len(Op))]
_NOTID = (Op.WATCH, Op.UNWATCH)
_WRITE = int(Op.WRITE)
_pack = HEADER.pack


class XenStore(State):
    """The daemon's state and the entry points into its handlers."""

    def process(self, conn: Connection, op: int, req_id: int, tx_id: int,
                payload: bytes) -> None:
        """Answer one request (reply and any events go to the output queues)."""
        handler = _TABLE[op] if op < len(_TABLE) else None
        if handler is None:
            conn.error(req_id, tx_id, ENOSYS.wire)
            return
        if op in PRIVILEGED_OPS and not conn.privileged:
            conn.error(req_id, tx_id, EACCES.wire)
            return
        txn = None
        if tx_id and op not in _NOTID:
            txn = conn.transactions.get(tx_id)
            if txn is None:
                conn.error(req_id, tx_id, ENOENT.wire)
                return
        try:
            handler(self, conn, req_id, tx_id, payload, txn)
        except XenStoreError as exc:
            conn.error(req_id, tx_id, exc.wire)

    def answer_lone(self, conn: Connection, op: int, req_id: int, tx_id: int,
                    payload: bytes) -> bytes | None:
        """Answer a request with nothing queued for ``conn`` before it (a client with one
        request in flight). A READ, DIRECTORY or GET_PERMS the caches know
        (:func:`.ops_nodes.cached_answer`), or a WRITE to a node they know
        (:func:`.ops_nodes.cached_write`) that made no event, skips the dispatch and the output
        queue: its reply's frame is returned, for the transport to write at once. Anything else
        goes to :meth:`process`, and None is returned (the output is queued)."""
        if not tx_id:
            if op in CACHED_OPS:
                reply = cached_answer(self, conn, op, payload)
                if reply is not None:
                    return _pack(op, req_id, 0, len(reply)) + reply
            elif op == _WRITE:
                try:
                    written = cached_write(self, conn, payload)
                except XenStoreError as exc:
                    conn.error(req_id, 0, exc.wire)
                    return None
                if written:
                    if conn.out or self.hub.dirty:  # events: the reply goes after them
                        conn.reply(Op.WRITE, req_id, 0, OK)
                        return None
                    return _pack(_WRITE, req_id, 0, len(OK)) + OK
        self.process(conn, op, req_id, tx_id, payload)
        return None

    def set_domain_state(self, domid: int, state: str) -> None:
        """Simulate the hypervisor (see :func:`.ops_domains.set_domain_state`)."""
        ops_domains.set_domain_state(self, domid, state)

    def new_domain(self, domid: int) -> None:
        """Simulate the hypervisor creating a domain (see :func:`.ops_domains.new_domain`)."""
        ops_domains.new_domain(self, domid)

    def ignore_domain(self, domid: int) -> None:
        """The guest broke the protocol (see :func:`.ops_domains.ignore_domain`)."""
        ops_domains.ignore_domain(self, domid)
