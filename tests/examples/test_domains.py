"""The domain monitor keeps the table of live domains from @introduceDomain/@releaseDomain."""

from __future__ import annotations

import gevent
from structlog.testing import capture_logs

from xsactor.actors import server as gs
from xsactor.bus.client import Client
from xsactor.examples import domains
from xsactor.testing.sandbox import Sandbox


def table(expected: dict[int, str]) -> None:
    """Wait until the monitor's table is ``expected`` (asking it, yielding in between)."""
    with gevent.Timeout(10, AssertionError(f"the table never became {expected}")):
        while gs.call("domains", "table") != expected:
            gevent.sleep(0.01)


def test_follows_domains_coming_and_going(xs: Sandbox, xs_dom0: Client) -> None:
    dom0 = xs_dom0
    with capture_logs() as logs:
        xs.start(domains.agent(dom0), client=dom0)
        table({0: "Domain-0"})
        xs.create_domain(9)
        table({0: "Domain-0", 9: "guest9"})
        xs.shutdown(9)  # @releaseDomain; the domain is still there
        xs.destroy(9)  # xl destroy
        table({0: "Domain-0"})
    changes = [(e["event"], e["domid"]) for e in logs  # the monitor's (the daemon logs too)
               if e["event"].startswith("domain ") and "watch" in e]
    assert changes == [("domain up", 0), ("domain up", 9), ("domain gone", 9)]
    gone = next(e for e in logs if e["event"] == "domain gone")
    assert gone["watch"] == "@releaseDomain"
