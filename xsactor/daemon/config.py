"""How an embedded xenstored is set up: its sockets, its guests, its quotas."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .pathcache import DEFAULT_BUDGET
from .quota import Quotas


@dataclass
class DaemonConfig:
    """Settings of :class:`~xsactor.daemon.server.Daemon` (the CLI's ``serve`` builds one).

    ``guest_dir``: where INTRODUCE of domain N opens its socket ``<guest_dir>/<N>``
    (default: the dom0 socket's directory). ``guests``: domains built (xl's layout) and
    introduced at startup, each with the socket to serve it on (None: the default place).
    """

    socket_path: str
    guest_dir: str | None = None
    guests: dict[int, str | None] = field(default_factory=dict)
    quotas: Quotas = field(default_factory=Quotas)
    keep_orphans: bool = False
    listen_backlog: int = 128
    max_guest_connections: int = 128
    """Connections one guest domain may have open at once (a real guest has one ring)."""
    fd_reserve: int = 64
    """Descriptors guests leave free, for dom0 and the daemon itself."""
    output_limit: int = 65536
    """Unsent output (bytes) past which a connection is no longer read (4.17: 20 replies)."""
    output_max: int = 4 << 20
    """Unsent output (bytes) past which a guest connection is closed (events it never reads)."""
    read_chunk: int = 16384
    """Bytes of requests read from one connection per turn of the loop (fairness)."""
    path_cache_bytes: int = DEFAULT_BUDGET
    """The path cache's budget in bytes."""

    def guest_socket(self, domid: int) -> str:
        directory = self.guest_dir or os.path.dirname(os.path.abspath(self.socket_path))
        return os.path.join(directory, str(domid))
