"""CONTROL commands (dom0 only), as 4.17's ``xenstored_control.c`` answers them.

- ``check``: checks the tree (problems are logged), ``OK``.
- ``log on|off``, ``logfile <file>``, ``print <string>``: ``OK`` (logged through structlog).
- ``memreport [<file>]``: without a file 4.17 has no trace file to write to and fails with
  EBADF, which travels as EINVAL; with a file, a short report is appended to it.
- ``quota``: the hard quota table; ``quota <domid>``: that domain's usage (ENOENT if the
  daemon knows no such domain); ``quota set <name> <val>``.
- ``quota-soft``: the soft quota table; ``quota-soft set memory <val>``.
- ``live-update ...``: refused the way 4.17 refuses it without a session.
- ``help``: 4.17's command list.
- Unknown command: EINVAL.

Extension of the embedded daemon (not in 4.17, not listed by ``help``):

- ``hypervisor <domid> <running|shutdown|crashed|dying|gone>``: simulate the hypervisor
  changing a domain's state, as the C daemon sees it through ``xc_domain_getinfo`` and the
  domain-exception VIRQ (after which every domain is checked again): ``shutdown``/``crashed``
  fire ``@releaseDomain`` once (RESUME re-arms it); ``dying``/``gone`` destroy the domain
  (its nodes are removed, ``@releaseDomain`` fires).
- ``hypervisor <domid> new``: the hypervisor created a domain with this domid (one that was
  gone exists again); no VIRQ, as creating a domain raises none.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..logs import get_logger
from ..protocol.errors import EINVAL, ENOENT
from ..protocol.ops import Op
from ..protocol.packets import split_args
from .connection import Connection
from .cparse import atoi, atou
from .ops_domains import new_domain, set_domain_state
from .state import OK, State
from .transactions import Transaction

log = get_logger(__name__)

Command = Callable[[State, Connection, list[bytes]], bytes]

HELP: tuple[tuple[str, str], ...] = (
    ("check", ""),
    ("log", "on|off"),
    ("live-update", "[-c <cmdline>] [-F] [-t <timeout>] <file>\n"
                    "    Default timeout is 60 seconds."),
    ("logfile", "<file>"),
    ("memreport", "[<file>]"),
    ("print", "<string>"),
    ("quota", "[set <name> <val>|<domid>]"),
    ("quota-soft", "[set <name> <val>]"),
    ("help", ""),
)


def _text(reply: str) -> bytes:
    return reply.encode() + b"\0"


def do_check(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if args:
        raise EINVAL("check takes no arguments")
    log.info("Checking store ...")
    for problem in xs.store.problems():
        log.error("check_store", problem=problem)
    log.info("Checking store complete.")
    return OK


def do_log(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if len(args) != 1 or args[0] not in (b"on", b"off"):
        raise EINVAL("log on|off")
    log.info("control: log", state=args[0].decode())
    return OK


def do_logfile(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if len(args) != 1:
        raise EINVAL("logfile <file>")
    log.info("control: logfile", file=args[0].decode("latin-1"))
    return OK


def do_memreport(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if len(args) != 1:
        raise EINVAL("no trace file to report into")
    try:
        with open(os.fsdecode(args[0]), "a") as out:
            out.write(f"xsactor embedded xenstored: {len(xs.store.nodes)} nodes, "
                      f"{len(xs.connections)} connections, generation {xs.store.generation}\n")
    except OSError as exc:
        raise EINVAL(f"cannot open {args[0]!r}") from exc
    return OK


def do_print(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if len(args) != 1:
        raise EINVAL("print <string>")
    log.info("control: print", text=args[0].decode("latin-1"))
    return OK


def _quota_set(xs: State, args: list[bytes], *, soft: bool) -> bytes:
    if len(args) != 2:
        raise EINVAL("set <name> <val>")
    xs.quotas.set(args[0].decode("latin-1"), atoi(args[1]), soft=soft)
    return OK


def domain_usage(xs: State, domid: int) -> str:
    """``quota <domid>``: nodes, watches, transactions, outstanding, memory."""
    domain = xs.domains.get(domid)
    if domain is None:
        raise ENOENT(f"no domain {domid}")
    memory = 0
    for path, node in xs.store.nodes.items():
        if node.owner & 0xFFFFFFFF == domid:
            memory += len(path) + node.size()
    for member in xs.members(domain):
        for watch in member.watches.values():
            memory += len(watch.path) + len(watch.token)
        if member.privileged:
            continue
        for txn in member.transactions.values():
            # 4.17 keeps a copy of every node a transaction holds, keyed "<generation>/<path>"
            prefix = len(str(txn.generation)) + 1
            for path, record in txn.accessed.items():
                if record.node is not None:
                    memory += prefix + len(path) + record.node.size()
    lines = [f"Domain {domid}:\n"]
    for name, value in (("nodes", xs.store.owned_by(domid)),
                        ("watches", domain.watch_count),
                        ("transactions", domain.transaction_count),
                        ("outstanding", 0),
                        ("memory", memory)):
        lines.append(f"{name:<16s}: {value:8d}\n")
    return "".join(lines)


def do_quota(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if not args:
        return _text(xs.quotas.listing())
    if args[0] == b"set":
        return _quota_set(xs, args[1:], soft=False)
    if len(args) != 1:
        raise EINVAL("quota <domid>")
    return _text(domain_usage(xs, atou(args[0])))


def do_quota_soft(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if not args:
        return _text(xs.quotas.listing(soft=True))
    if args[0] == b"set":
        return _quota_set(xs, args[1:], soft=True)
    raise EINVAL("quota-soft [set <name> <val>]")


def do_live_update(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    """4.17's live-update steps, without ever replacing the daemon: ``-f <binary>`` opens a
    session (owned by this connection), ``-c`` sets its command line, ``-a`` aborts it, and
    ``-s`` ends it the way a failed activation does."""
    args = args[:4]  # 4.17 keeps at most 5 strings, the command included
    if not args:
        raise EINVAL("live-update needs arguments")
    session = xs.live_update
    if session is not None and session.closed:
        session = xs.live_update = None
    flag = args[0]
    if flag == b"-a":
        if len(args) != 1:
            raise EINVAL("live-update -a")
        if session is None:
            return _text("No live-update session active.")
        xs.live_update = None
        return OK
    if flag == b"-c":
        if len(args) != 2:
            raise EINVAL("live-update -c <cmdline>")
        return OK if session is conn else _text("Not in live-update session.")
    if flag == b"-s":
        index = 1
        while index < len(args):
            if args[index] == b"-F":
                index += 1
            elif args[index] == b"-t" and index < len(args) - 1:
                index += 2
            else:
                raise EINVAL("live-update -s [-F] [-t <timeout>]")
        if session is not conn:
            return _text("Not in live-update session.")
        xs.live_update = None
        return _text("Error activating new binary.")
    if flag == b"-f" and len(args) == 2:
        target = os.fsdecode(args[1])
        if not os.path.exists(target):
            return _text("File not accessible.")
        if not os.access(target, os.X_OK):
            return _text("File not executable.")
        if session is not None:
            return _text("live-update session already active.")
        xs.live_update = conn
        return OK
    raise EINVAL("live-update")


def do_help(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    if args:
        raise EINVAL("help takes no arguments")
    return _text("".join(f"{name}\t{pars}\n" for name, pars in HELP))


def do_hypervisor(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    """Ours: ``hypervisor <domid> <state>`` (see the module docstring)."""
    if len(args) != 2:
        raise EINVAL("hypervisor <domid> <new|running|shutdown|crashed|dying|gone>")
    if args[1] == b"new":
        new_domain(xs, atou(args[0]))
    else:
        set_domain_state(xs, atou(args[0]), args[1].decode("latin-1"))
    return OK


COMMANDS: dict[bytes, Command] = {
    b"check": do_check,
    b"log": do_log,
    b"live-update": do_live_update,
    b"logfile": do_logfile,
    b"memreport": do_memreport,
    b"print": do_print,
    b"quota": do_quota,
    b"quota-soft": do_quota_soft,
    b"help": do_help,
    b"hypervisor": do_hypervisor,
}


def op_control(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
               txn: Transaction | None) -> None:
    if b"\0" not in payload:
        raise EINVAL("CONTROL needs a command")
    conn.reply(Op.CONTROL, req_id, tx_id, handle_control(xs, conn, split_args(payload)))


def handle_control(xs: State, conn: Connection, args: list[bytes]) -> bytes:
    """The reply payload of ``CONTROL <args>``; raises the typed error otherwise."""
    command = COMMANDS.get(args[0]) if args else None
    if command is None:
        raise EINVAL("unknown control command")
    return command(xs, conn, args[1:])
