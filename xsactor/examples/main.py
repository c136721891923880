"""One command per example: ``python -m xsactor.examples.<name> [--socket PATH]``.

Given a socket (or the device), the example's tree runs on it through the agent runner, as
``xsactor run xsactor.examples.<name>:agent --socket PATH`` would. Given none, an embedded
xenstored is started in this process first, with guest :data:`GUEST` built as xl does; a guest
agent then speaks as that guest, a dom0 agent as dom0. The daemon's sockets are logged, so
another terminal can play the toolstack (``xsactor write -s <dom0 socket> ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import logs
from ..daemon.config import DaemonConfig
from ..daemon.server import Daemon
from ..daemon.toolstack import GuestSpec
from ..runner import run_agent

GUEST = 5

log = logs.get_logger(__name__)


@contextlib.contextmanager
def embedded(level: str = "info") -> Iterator[tuple[Daemon, str]]:
    """An embedded xenstored in this process with guest :data:`GUEST`: (daemon, its socket)."""
    logs.configure(level)
    with tempfile.TemporaryDirectory(prefix="xsactor-") as rundir, \
            Daemon(DaemonConfig(socket_path=str(Path(rundir) / "socket"))) as daemon:
        guest = daemon.add_guest(GuestSpec(GUEST))
        log.info("embedded xenstored", dom0_socket=daemon.socket_path, guest=GUEST,
                 guest_socket=guest)
        yield daemon, guest


def main(factory: Callable[..., Any], *, dom0: bool = False,
         argv: list[str] | None = None) -> int:
    """Run ``factory``'s tree on ``--socket``, or on an embedded daemon (as dom0 when
    ``dom0``, else as guest :data:`GUEST`). The runner's exit status."""
    parser = argparse.ArgumentParser(description=(factory.__module__ or "").rsplit(".")[-1])
    parser.add_argument("-s", "--socket", help="xenstored's socket or the xenbus device "
                                               "(default: an embedded daemon of our own)")
    parser.add_argument("--log-level", default="info", choices=logs.LEVELS)
    args = parser.parse_args(argv)
    if args.socket is not None:
        return run_agent(factory, args.socket, level=args.log_level)
    with embedded(args.log_level) as (daemon, guest):
        return run_agent(factory, daemon.socket_path if dom0 else guest, configure_logs=False)
