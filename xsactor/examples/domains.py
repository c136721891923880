"""The domain monitor, in dom0: a table of the live domains, from ``@introduceDomain`` and
``@releaseDomain`` (what xenconsoled and xl's reaper listen to).

The two special watches carry no domid: on each event the monitor re-reads
``/local/domain`` and logs what changed (``domain up``, ``domain gone``; an event that changes
nothing is a domain shutting down or crashing: it is gone once the toolstack has removed its
nodes and destroyed it). It is a server: ``gs.call("domains", "table")`` gives
``{domid: name}``.

    python -m xsactor.examples.domains
"""

from __future__ import annotations

from typing import Any

from .. import logs
from ..actors import server as gs
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client

log = logs.get_logger(__name__)

NAME = "domains"


class DomainMonitor(gs.Server):
    def init(self, client: Client | None) -> None:
        self.xs = client or default_client()
        self.table: dict[int, str] = {}
        # the watches are this process's: the bus releases them when it dies
        self.xs.watch_introduce_domain("introduced")
        self.xs.watch_release_domain("released")

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        if request == "table":
            return dict(self.table)
        return super().handle_call(request, caller)

    def handle_info(self, message: Any) -> None:
        match message:
            case ("watch_event", path, "introduced" | "released"):
                self.rescan(path)
            case _:
                super().handle_info(message)

    def rescan(self, path: str) -> None:
        now = {}
        for name in self.xs.list("/local/domain"):
            if name.isascii() and name.isdigit():
                now[int(name)] = self.xs.read_str(f"/local/domain/{name}/name", default="?")
        for domid in sorted(now.keys() - self.table.keys()):
            log.info("domain up", domid=domid, name=now[domid], watch=path)
        for domid in sorted(self.table.keys() - now.keys()):
            log.info("domain gone", domid=domid, name=self.table[domid], watch=path)
        self.table = now


def child(client: Client | None = None) -> ChildSpec:
    return ChildSpec(NAME, lambda: gs.start_link(DomainMonitor, client, name=NAME))


def agent(client: Client | None = None) -> ChildSpec:
    """The tree ``xsactor run xsactor.examples.domains:agent`` runs (in dom0)."""
    return supervisor_spec("domain-monitor", SupFlags(intensity=3, period=10), [child(client)])


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent, dom0=True))
