"""Requests on watches: WATCH, UNWATCH, RESET_WATCHES (the records and event delivery are in
``watches``)."""

from __future__ import annotations

from ..protocol.errors import E2BIG, EEXIST, EINVAL, ENOENT
from ..protocol.ops import REL_PATH_MAX, Op
from ..protocol.packets import split_args
from ..protocol.paths import canonicalize, is_special, validate
from .connection import Connection
from .state import OK, State
from .transactions import Transaction
from .watches import Watch


def op_watch(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
             txn: Transaction | None) -> None:
    args = split_args(payload)
    if len(args) != 2:
        raise EINVAL("WATCH takes a path and a token")
    raw_path, token = args
    text = raw_path.decode("latin-1")
    special = is_special(text)
    if special:
        if len(text) > REL_PATH_MAX:
            raise EINVAL("watch path too long")
        path, strip = text, 0
    else:
        path = validate(text, conn.home, path_max=xs.quotas.path_max)
        strip = 0 if text.startswith("/") else len(conn.home) + 1
    key = (path, token)
    if key in conn.watches:
        raise EEXIST(path=path)
    domain = conn.domain
    if not conn.privileged and domain.watch_count > xs.quotas.watches:
        raise E2BIG("too many watches")
    watch = Watch(path, token, strip)
    xs.hub.add(conn, watch)
    if not conn.privileged:
        domain.watch_count += 1
    conn.reply(Op.WATCH, req_id, tx_id, OK)
    conn.event(watch.payload(path), special=special)


def op_unwatch(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
               txn: Transaction | None) -> None:
    args = split_args(payload)
    if len(args) != 2:
        raise EINVAL("UNWATCH takes a path and a token")
    path = canonicalize(args[0].decode("latin-1"), conn.home)
    if xs.hub.remove(conn, (path, args[1])) is None:
        raise ENOENT(path=path)
    if not conn.privileged and conn.domain.watch_count:
        conn.domain.watch_count -= 1
    conn.reply(Op.UNWATCH, req_id, tx_id, OK)


def op_reset_watches(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                     txn: Transaction | None) -> None:
    xs.reset_connection(conn)
    conn.reply(Op.RESET_WATCHES, req_id, tx_id, OK)
