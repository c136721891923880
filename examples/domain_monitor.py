"""A dom0 domain monitor: follows ``@introduceDomain`` and ``@releaseDomain`` and keeps a table
of the live domains (domid -> name), as a server other processes can ask::

    server.call("domain_monitor", "table")         # {0: "Domain-0", 5: "web"}

Run it in dom0: ``XENSTORED_PATH=/tmp/xs/socket python examples/domain_monitor.py``.
"""

from __future__ import annotations

from typing import Any

import xsactor
from xsactor.actors import server
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.supervisor import supervisor_spec
from xsactor.logs import get_logger

log = get_logger("domain_monitor")


class DomainMonitor(server.Server):
    def init(self) -> None:
        self.table: dict[int, str] = {}

    def handle_call(self, request: Any, caller: server.Caller) -> Any:
        if request == "table":
            return dict(self.table)
        raise ValueError(f"unknown request {request!r}")

    def handle_info(self, message: Any) -> None:
        if type(message) is tuple and message[0] == "watch_event":
            self.refresh()                   # either event: re-read which domains live

    def refresh(self) -> None:
        live: dict[int, str] = {}
        for name in xsactor.list("/local/domain"):
            domid = int(name)
            live[domid] = xsactor.read_str(f"/local/domain/{domid}/name", default="")
        for domid in live.keys() - self.table.keys():
            log.info("domain introduced", domid=domid, name=live[domid])
        for domid in self.table.keys() - live.keys():
            log.info("domain gone", domid=domid, name=self.table[domid])
        self.table = live


def tree() -> ChildSpec:
    return supervisor_spec("monitor", SupFlags("one_for_one", intensity=5, period=10), [
        ChildSpec("domain_monitor",
                  lambda: server.start_link(DomainMonitor, name="domain_monitor"),
                  watches=[("@introduceDomain", "introduced"), ("@releaseDomain", "released")]),
    ])


if __name__ == "__main__":
    raise SystemExit(xsactor.run_agent(tree))
