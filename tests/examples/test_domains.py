"""The domain monitor keeps the table of live domains from @introduceDomain/@releaseDomain."""

from __future__ import annotations

import gevent
from structlog.testing import capture_logs

from xsactor.actors import server as gs
from xsactor.examples import domains
from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import wait_for

from .conftest import Agents


def table(expected: dict[int, str]) -> None:
    """Wait until the monitor's table is ``expected`` (asking it, yielding in between)."""
    wait_for(lambda: gs.call("domains", "table") == expected, 10, f"the table {expected}",
             sleep=gevent.sleep)


def test_follows_domains_coming_and_going(xenstored: DaemonUnderTest, agents: Agents) -> None:
    dom0 = agents.connect(xenstored.socket_path)
    with capture_logs() as logs:
        agents.start(domains.agent(dom0))
        table({0: "Domain-0"})
        xenstored.add_guest(9)
        table({0: "Domain-0", 9: "guest9"})
        xenstored.set_domain_state(9, "shutdown")  # @releaseDomain; the domain is still there
        dom0.delete("/local/domain/9")  # xl destroy: the nodes first, then the domain
        xenstored.set_domain_state(9, "dying")
        table({0: "Domain-0"})
    changes = [(e["event"], e["domid"]) for e in logs if e["event"].startswith("domain ")]
    assert changes == [("domain up", 0), ("domain up", 9), ("domain gone", 9)]
    gone = next(e for e in logs if e["event"] == "domain gone")
    assert gone["watch"] == "@releaseDomain"
