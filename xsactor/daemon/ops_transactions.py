"""Requests on transactions: TRANSACTION_START, TRANSACTION_END and the commit (§7 of
``xenstore-semantics.md``; the overlay itself is in ``transactions``)."""

from __future__ import annotations

from ..protocol.errors import EAGAIN, EBUSY, EINVAL, ENOENT, ENOMEM, ENOSPC
from ..protocol.ops import Op
from .connection import Connection
from .cparse import onearg
from .state import OK, State
from .transactions import Transaction


def op_transaction_start(xs: State, conn: Connection, req_id: int, tx_id: int,
                         payload: bytes, txn: Transaction | None) -> None:
    if txn is not None:
        raise EBUSY("transactions do not nest")
    domain = conn.domain
    if not conn.privileged and domain.transaction_count > xs.quotas.transactions:
        raise ENOSPC("too many transactions")
    new_id = conn.next_tx_id
    while new_id == 0 or new_id in conn.transactions:
        new_id = (new_id + 1) & 0xFFFFFFFF
    conn.next_tx_id = (new_id + 1) & 0xFFFFFFFF
    conn.transactions[new_id] = Transaction(new_id, xs.store, xs.quotas,
                                            limited=not conn.privileged)
    if not conn.privileged:
        domain.transaction_count += 1
    conn.reply(Op.TRANSACTION_START, req_id, tx_id, b"%d\0" % new_id)


def op_transaction_end(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                       txn: Transaction | None) -> None:
    arg = onearg(payload)
    if arg != b"T" and arg != b"F":
        raise EINVAL("TRANSACTION_END takes T or F")
    if txn is None:
        raise ENOENT("no transaction")
    del conn.transactions[txn.id]
    if not conn.privileged and conn.domain.transaction_count:
        conn.domain.transaction_count -= 1
    if arg == b"T":
        commit(xs, txn)
    conn.reply(Op.TRANSACTION_END, req_id, tx_id, OK)


def commit(xs: State, txn: Transaction) -> None:
    """ENOMEM if failed, ENOSPC over a node quota, EAGAIN on conflict; else apply (§7)."""
    if txn.failed:
        raise ENOMEM("transaction failed")
    store = xs.store
    domains = xs.domains
    # Only a guest's commit, and only if it tried to create a node (4.17's node_created),
    # checks the node quota: for every domain whose count it touched.
    check_quota = txn.limited and txn.node_created
    for domid, delta in txn.node_delta.items():
        if domains.get(domid) is None and not domains.exists(domid):
            # the counts cannot be moved to a domain gone for good (4.17's accounting fails)
            raise ENOMEM("a domain the transaction counted nodes for is gone")
        if check_quota and domid != 0 and store.owned_by(domid) + delta >= xs.quotas.nodes:
            raise ENOSPC("node quota exceeded at commit")
    if txn.conflicts():
        raise EAGAIN("transaction conflict")
    txn.apply(xs.hub)
