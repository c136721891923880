"""The ``xsactor`` command line.

``xsactor serve`` runs the embedded xenstored. Each subcommand is a function registered in
:data:`COMMANDS` with the parser builder that declares its options, so client subcommands
(``read``, ``write``, ``ls`` ...) can be added next to it::

    def add_read_arguments(parser): ...
    def cmd_read(args) -> int: ...
    COMMANDS["read"] = Command(cmd_read, add_read_arguments, "read a node")
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog


@dataclass(frozen=True)
class Command:
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    help: str


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def configure_logging(level: str) -> None:
    """structlog to stderr, key=value lines, filtered at ``level`` (cheap when filtered)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


# -- serve -------------------------------------------------------------------------------------
def _guest_arg(text: str) -> tuple[int, str | None]:
    domid, sep, path = text.partition("=")
    try:
        number = int(domid)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--guest wants N or N=PATH, not {text!r}") from None
    if not 0 < number < 0x7FF0:
        raise argparse.ArgumentTypeError(f"guest domid must be in 1..32751, not {number}")
    return number, (path or None) if sep else None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _assignment(text: str) -> tuple[str, int]:
    from .daemon.quota import parse_assignment

    try:
        return parse_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", required=True, metavar="PATH",
                        help="the dom0 socket (every connection is privileged dom0)")
    parser.add_argument("--guest", action="append", type=_guest_arg, default=[],
                        metavar="N[=PATH]",
                        help="build and introduce guest N at startup, serving it on PATH")
    parser.add_argument("--guest-dir", metavar="DIR",
                        help="where INTRODUCE of domain N listens (DIR/N); "
                             "default: the dom0 socket's directory")
    quota = parser.add_argument_group("quotas (xenstored's options; unprivileged domains only)")
    quota.add_argument("-E", "--quota-nodes", "--entry-nb", dest="nodes", type=_positive,
                       metavar="NB", help="nodes per domain (1000)")
    quota.add_argument("-W", "--quota-watches", "--watch-nb", dest="watches", type=_positive,
                       metavar="NB", help="watches per domain (128)")
    quota.add_argument("-t", "--quota-transactions", "--transaction", dest="transactions",
                       type=_positive, metavar="NB", help="transactions per domain (10)")
    quota.add_argument("-S", "--quota-node-size", "--entry-size", dest="node_size",
                       type=_positive, metavar="SIZE", help="max. size of a node (2048)")
    quota.add_argument("-A", "--quota-permissions", "--perm-nb", dest="permissions",
                       type=_positive, metavar="NB", help="permissions per node (5)")
    quota.add_argument("-M", "--quota-path-max", "--path-max", dest="path_max",
                       type=_positive, metavar="CHARS", help="max. node path length (2048)")
    quota.add_argument("-Q", "--quota", dest="quota", action="append", type=_assignment,
                       default=[], metavar="WHAT=NB",
                       help="set any hard quota: transaction-nodes, memory, outstanding, ...")
    quota.add_argument("-q", "--quota-soft", dest="quota_soft", action="append",
                       type=_assignment, default=[], metavar="WHAT=NB",
                       help="set a soft quota (memory)")
    parser.add_argument("-K", "--keep-orphans", action="store_true",
                        help="give a released domain's nodes to dom0 instead of deleting them")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")


def cmd_serve(args: argparse.Namespace) -> int:
    import gevent

    from .daemon.config import DaemonConfig
    from .daemon.quota import Quotas
    from .daemon.server import Daemon
    from .protocol.errors import XenStoreError

    log = structlog.get_logger("xsactor.cli")
    quotas = Quotas()
    try:
        for name in ("nodes", "watches", "transactions", "node_size", "permissions",
                     "path_max"):
            value = getattr(args, name)
            if value is not None:
                setattr(quotas, name, value)
        for name, value in args.quota:
            quotas.set(name, value)
        for name, value in args.quota_soft:
            quotas.set(name, value, soft=True)
    except XenStoreError as exc:
        log.error("bad quota", error=str(exc))
        return 2
    config = DaemonConfig(socket_path=args.socket, guest_dir=args.guest_dir,
                          guests=dict(args.guest), quotas=quotas,
                          keep_orphans=args.keep_orphans)
    daemon = Daemon(config)
    # Keep the watchers referenced: a collected one silently restores the default action.
    handlers = [gevent.signal_handler(signum, daemon.stop)
                for signum in (signal.SIGTERM, signal.SIGINT)]
    try:
        daemon.serve_forever()
    except OSError as exc:
        log.error("cannot serve", error=str(exc))
        daemon.stop()
        return 1
    finally:
        for handler in handlers:
            handler.cancel()
    return 0


COMMANDS: dict[str, Command] = {
    "serve": Command(cmd_serve, add_serve_arguments, "run the embedded xenstored"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xsactor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"))
    return COMMANDS[args.command].run(args)
