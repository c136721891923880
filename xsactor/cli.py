"""The ``xsactor`` command line.

``xsactor serve`` runs the embedded xenstored, ``xsactor run`` an agent's supervision tree,
``xsactor demo`` the demo. ``read``, ``write``, ``ls``, ``list``, ``rm``, ``exists``, ``chmod``
and ``watch`` are xenstore-utils' tools byte for byte (:mod:`xsactor.xstools`); ``mkdir``,
``getperms``, ``domid`` and ``control`` are xsactor's. Each subcommand is registered in
:data:`COMMANDS` with the parser builder that declares its options (``raw=True``: the command
parses its own argv). A client command is a ``run_*(client, args)`` function returning what
to print, wrapped by :func:`_with_client` (which opens the :class:`~xsactor.bus.client.Client`
and turns errors into one line and exit status 1), its options declared by
:func:`_client_command`::

    def run_domid(client, args) -> int: ...
    COMMANDS["domid"] = Command(_with_client(run_domid), _client_command(), "print the domid")

Ctrl-C ends any command quietly with status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__
from .logs import LEVELS as LOG_LEVELS
from .logs import configure as configure_logging
from .logs import get_logger

if TYPE_CHECKING:
    from .bus.client import Client


@dataclass(frozen=True)
class Command:
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    help: str
    raw: bool = False
    """The command parses its own argv (``args.argv``), as xenstore-utils' getopt does."""


# -- serve -------------------------------------------------------------------------------------
def _guest_arg(text: str) -> tuple[int, str | None]:
    from .daemon.toolstack import GuestSpec

    domid, sep, path = text.partition("=")
    try:
        number = int(domid)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--guest wants N or N=PATH, not {text!r}") from None
    try:
        GuestSpec(number)  # the domid range a guest may have
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
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
    limits = parser.add_argument_group("limits (see docs/daemon.md)")
    limits.add_argument("--max-guest-connections", type=_positive, metavar="N",
                        help="connections one guest domain may have open (default 128)")
    limits.add_argument("--output-limit", type=_positive, metavar="BYTES",
                        help="unsent output past which a connection is not read (65536)")
    limits.add_argument("--output-max", type=_positive, metavar="BYTES",
                        help="unsent output past which a guest connection is closed (4 MiB)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")


def cmd_serve(args: argparse.Namespace) -> int:
    import gevent

    from .daemon.config import DaemonConfig
    from .daemon.quota import Quotas
    from .daemon.server import Daemon
    from .protocol.errors import XenStoreError

    log = get_logger(__name__)
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
    if args.max_guest_connections is not None:
        config.max_guest_connections = args.max_guest_connections
    if args.output_limit is not None:
        config.output_limit = args.output_limit
    if args.output_max is not None:
        config.output_max = args.output_max
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


# -- client commands ---------------------------------------------------------------------------
# read, write, ls, list, rm, exists, chmod and watch are xenstore-utils' tools, byte for byte
# (xsactor.xstools parses their argv as getopt does); the others use argparse.
def _add_socket(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--socket", action="store_true",
                        help="the socket only, never the xenbus device (as xenstore-utils' -s)")
    parser.add_argument("--path", dest="xs_path", metavar="PATH", default=None,
                        help="xenstored's socket or the xenbus device (default: as libxenstore "
                             "chooses: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, "
                             "/dev/xen/xenbus)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="warning")


def _client_command(*positionals: tuple[str, dict[str, Any]],
                    extra: Callable[[argparse.ArgumentParser], None] | None = None
                    ) -> Callable[[argparse.ArgumentParser], None]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        for name, options in positionals:
            parser.add_argument(name, **options)
        if extra is not None:
            extra(parser)
        _add_socket(parser)
    return add_arguments


def _with_client(run: Callable[[Client, argparse.Namespace], Any]
                 ) -> Callable[[argparse.Namespace], int]:
    """Open the client, run, print the result (as JSON with ``--json``); a XenStore error is
    one line naming it and exit status 1."""
    def wrapped(args: argparse.Namespace) -> int:
        from .protocol.errors import ConnectionLost, XenStoreError
        from .xstools import open_client, open_failure

        try:
            client = open_client(args.xs_path, args.socket)
        except OSError as exc:
            print(f"xsactor {args.command}: {open_failure(exc)}", file=sys.stderr)
            return 1
        try:
            with client:
                result = run(client, args)
        except (XenStoreError, ConnectionLost) as exc:
            print(f"xsactor {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(result))
        elif isinstance(result, list):
            print(" ".join(map(str, result)))
        elif result is not None:
            print(result)
        return 0
    return wrapped


def _xs_tool(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from .xstools import run_tool

        return run_tool(verb, args.argv)
    return run


def _tool(verb: str, help: str) -> Command:
    """xenstore-``verb``, parsing its own argv (:mod:`xsactor.xstools`)."""
    return Command(_xs_tool(verb), _tool_arguments(verb), help, raw=True)


def _tool_arguments(verb: str) -> Callable[[argparse.ArgumentParser], None]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from .xstools import JSON_TOOLS, USAGE

        parser.usage = f"xsactor {verb} {USAGE[verb]}"
        parser.add_argument("argv", nargs=argparse.REMAINDER,
                            help=f"as xenstore-{verb}; also --path PATH"
                                 + (", --json" if verb in JSON_TOOLS else ""))
    return add_arguments


def run_mkdir(client: Client, args: argparse.Namespace) -> None:
    for path in args.paths:
        client.mkdir(path)


def run_getperms(client: Client, args: argparse.Namespace) -> list[str]:
    return client.get_perms(args.path)


def run_domid(client: Client, args: argparse.Namespace) -> int:
    return client.domid()


def run_control(client: Client, args: argparse.Namespace) -> str:
    """CONTROL (dom0 only): the daemon's commands (``help`` lists them) and, on the embedded
    daemon, ``hypervisor DOMID running|shutdown|crashed|dying|gone``."""
    from .protocol import Op
    from .protocol.packets import join_args

    reply = client.conn.call(Op.CONTROL, join_args(args.control, *args.args))
    return reply.rstrip(b"\0").decode("utf-8", "backslashreplace")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(sys.stdout, args.log_level)


# -- run -------------------------------------------------------------------------------------
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODULE:FACTORY",
                        help="the agent: a child spec, or a function returning one")
    parser.add_argument("--path", "--socket", dest="socket", metavar="PATH",
                        help="xenstored's socket or the xenbus device (default: as "
                             "libxenstore chooses)")
    parser.add_argument("--json", action="store_true", help="log one JSON object per line")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import load_factory, run_agent

    configure_logging(args.log_level, json=args.json)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m`` would: the agent's own modules
    try:
        target = load_factory(args.target)
    except (ImportError, AttributeError, ValueError) as exc:
        get_logger(__name__).error("cannot load the agent", target=args.target, error=str(exc))
        return 2
    return run_agent(target, args.socket, args.json, level=args.log_level,
                     configure_logs=False)


PATHS = ("paths", {"nargs": "+", "metavar": "PATH"})
PATH = ("path", {"metavar": "PATH"})

COMMANDS: dict[str, Command] = {
    "serve": Command(cmd_serve, add_serve_arguments, "run the embedded xenstored"),
    "demo": Command(cmd_demo, add_demo_arguments,
                    "a guest agent and a toolstack around an embedded xenstored"),
    "run": Command(cmd_run, add_run_arguments, "run an agent's supervision tree"),
    "read": _tool("read", "print values"),
    "write": _tool("write", "write values"),
    "exists": _tool("exists", "exit 0 if every path exists, 1 otherwise"),
    "rm": _tool("rm", "remove nodes and subtrees"),
    "list": _tool("list", "print a node's children"),
    "ls": _tool("ls", "print a subtree as xenstore-ls does"),
    "chmod": _tool("chmod", "set a node's permissions (owner first: n0 r5 ...)"),
    "watch": _tool("watch", "print the paths of watch events"),
    "mkdir": Command(_with_client(run_mkdir), _client_command(PATHS), "create empty nodes"),
    "getperms": Command(_with_client(run_getperms), _client_command(PATH),
                        "print a node's permissions"),
    "domid": Command(_with_client(run_domid), _client_command(),
                     "print this connection's domain id"),
    "control": Command(_with_client(run_control), _client_command(
        ("control", {"metavar": "COMMAND"}), ("args", {"nargs": "*", "metavar": "ARG"})),
        "send a CONTROL command (help, check, quota, ...; on the embedded daemon also "
        "'hypervisor DOMID running|shutdown|crashed|dying|gone')"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xsactor", description="XenStore for Python guest agents: xenstore-utils' tools, "
        "the embedded xenstored, the agent runner and the demo.")
    parser.add_argument("--version", action="version", version=f"xsactor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help,
                                             add_help=not command.raw))
    return parser


def _quiet_interrupts() -> None:
    """Ctrl-C while the hub runs: gevent would print the KeyboardInterrupt before raising it
    in the main greenlet; it is not an error here."""
    import gevent

    hub = gevent.get_hub()
    if KeyboardInterrupt not in hub.NOT_ERROR:
        hub.NOT_ERROR = (*hub.NOT_ERROR, KeyboardInterrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; its exit status. Ctrl-C ends quietly with 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_interrupts()
    try:
        if argv and argv[0] in COMMANDS and COMMANDS[argv[0]].raw:
            # xenstore-utils' tools parse their argv as getopt does, options anywhere
            args = argparse.Namespace(command=argv[0], argv=argv[1:], log_level="warning")
        else:
            args = build_parser().parse_args(argv)
        configure_logging(getattr(args, "log_level", "info"))
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``| head``)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # unforeseen: one line (XSACTOR_DEBUG=1 shows the traceback)
        if os.environ.get("XSACTOR_DEBUG") == "1":
            raise
        print(f"xsactor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
