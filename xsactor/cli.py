"""The ``xsactor`` command line.

``xsactor serve`` runs the embedded xenstored, ``xsactor demo`` the demo; the client commands
(``read``, ``write``, ``ls``, ``watch`` ...) work in the spirit of xenstore-utils. Each
subcommand is registered in :data:`COMMANDS` with the parser builder that declares its
options. A client command is a ``run_*(client, args)`` function wrapped by
:func:`_with_client` (which opens the :class:`~xsactor.bus.client.Client` and turns errors
into exit status 1), its options declared by :func:`_client_command`::

    def run_read(client, args) -> int: ...
    COMMANDS["read"] = Command(_with_client(run_read), _client_command(PATHS), "print values")
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


# -- client commands (in the spirit of xenstore-utils) ------------------------------------------
def _add_socket(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--socket", metavar="PATH",
                        help="xenstored's socket or the xenbus device (default: as libxenstore "
                             "chooses: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket, /dev/xen/xenbus)")
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


def _with_client(run: Callable[[Client, argparse.Namespace], int]
                 ) -> Callable[[argparse.Namespace], int]:
    """Open the client, run, turn XenStore errors into a message and exit status 1."""
    def wrapped(args: argparse.Namespace) -> int:
        from .bus.client import Client
        from .protocol.errors import ConnectionLost, XenStoreError

        try:
            with Client(args.socket, reconnect=False) as client:
                return run(client, args)
        except BrokenPipeError:  # the reader went away (``| head``)
            return 0
        except (XenStoreError, ConnectionLost, OSError) as exc:
            print(f"xsactor {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return wrapped


def _shown(value: bytes) -> str:
    """A value as xenstore-ls shows it: printable ASCII as is, the rest escaped."""
    return "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else
                   {34: '\\"', 92: "\\\\"}.get(b, f"\\x{b:02x}") for b in value)


def run_read(client: Client, args: argparse.Namespace) -> int:
    for path in args.paths:
        sys.stdout.buffer.write(client.read(path) + b"\n")
    return 0


def run_write(client: Client, args: argparse.Namespace) -> int:
    pairs = args.pairs
    if len(pairs) % 2:
        print("xsactor write: wants PATH VALUE pairs", file=sys.stderr)
        return 2
    for path, value in zip(pairs[::2], pairs[1::2], strict=True):
        client.write(path, value)
    return 0


def run_exists(client: Client, args: argparse.Namespace) -> int:
    return 0 if all(client.exists(path) for path in args.paths) else 1


def run_rm(client: Client, args: argparse.Namespace) -> int:
    for path in args.paths:
        client.delete(path)
    return 0


def run_mkdir(client: Client, args: argparse.Namespace) -> int:
    for path in args.paths:
        client.mkdir(path)
    return 0


def run_list(client: Client, args: argparse.Namespace) -> int:
    for name in client.list(args.path):
        print(name)
    return 0


def run_ls(client: Client, args: argparse.Namespace) -> int:
    from .protocol.paths import canonicalize, join

    top = canonicalize(args.path, client.home)

    def show(path: str, depth: int) -> None:
        for name in client.list(path):
            child = join(path, name)
            label = child if args.full else " " * depth + name
            line = f'{label} = "{_shown(client.read(child, default=b""))}"'
            if args.perms:
                line += f"  ({', '.join(client.get_perms(child))})"
            print(line)
            show(child, depth + 1)

    show(top, 0)
    return 0


def add_ls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--full", action="store_true", help="full paths")
    parser.add_argument("-p", "--perms", action="store_true", help="show permissions")


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--number", type=int, metavar="N",
                        help="exit after N events (the first is the registration event)")


def run_chmod(client: Client, args: argparse.Namespace) -> int:
    client.set_perms(args.path, args.perms)
    return 0


def run_getperms(client: Client, args: argparse.Namespace) -> int:
    print(" ".join(client.get_perms(args.path)))
    return 0


def run_domid(client: Client, args: argparse.Namespace) -> int:
    print(client.domid())
    return 0


def run_watch(client: Client, args: argparse.Namespace) -> int:
    token = client.watch(args.path)
    seen = 0
    while args.number is None or seen < args.number:
        path, _token = client.next_event(token)
        print(path, flush=True)
        seen += 1
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="warning")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(sys.stdout)


PATHS = ("paths", {"nargs": "+", "metavar": "PATH"})
PATH = ("path", {"metavar": "PATH"})

COMMANDS: dict[str, Command] = {
    "serve": Command(cmd_serve, add_serve_arguments, "run the embedded xenstored"),
    "demo": Command(cmd_demo, add_demo_arguments,
                    "a guest agent and a toolstack around an embedded xenstored"),
    "read": Command(_with_client(run_read), _client_command(PATHS), "print values"),
    "write": Command(_with_client(run_write), _client_command(
        ("pairs", {"nargs": "+", "metavar": "PATH VALUE"})), "write values"),
    "exists": Command(_with_client(run_exists), _client_command(PATHS),
                      "exit 0 if every path exists, 1 otherwise"),
    "rm": Command(_with_client(run_rm), _client_command(PATHS), "remove nodes and subtrees"),
    "mkdir": Command(_with_client(run_mkdir), _client_command(PATHS), "create empty nodes"),
    "list": Command(_with_client(run_list), _client_command(PATH), "print a node's children"),
    "ls": Command(_with_client(run_ls), _client_command(
        ("path", {"nargs": "?", "default": "/", "metavar": "PATH"}),
        extra=add_ls_options),
        "print a subtree as xenstore-ls does"),
    "chmod": Command(_with_client(run_chmod), _client_command(
        PATH, ("perms", {"nargs": "+", "metavar": "PERM"})),
        "set a node's permissions (owner first: n0 r5 ...)"),
    "getperms": Command(_with_client(run_getperms), _client_command(PATH),
                        "print a node's permissions"),
    "domid": Command(_with_client(run_domid), _client_command(),
                     "print this connection's domain id"),
    "watch": Command(_with_client(run_watch), _client_command(
        PATH, extra=add_watch_options),
        "print the paths of watch events"),
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
