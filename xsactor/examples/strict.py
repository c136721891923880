"""A subscriber that crashes on a bad value, and the supervisor that restarts it.

The Erlang way to meet bad input: no defensive code. The ``strict`` child follows
``memory/target`` like the balloon agent but reads it with ``read_integer``: a value that is
not an integer (``EINVAL``) crashes it. Its supervisor restarts it after a backoff
(0.1 s, 0.2 s, 0.4 s ... with jitter), and each new instance gets its declared watch's first
event and re-reads the value: while the value stays bad, every instance crashes again. Past
the tree's intensity (``intensity`` restarts in ``period`` seconds) the supervisor gives up
and exits ``shutdown``: the runner then exits 1. Once the toolstack writes a good value back
within the budget, the next instance reports it and runs on.

    python -m xsactor.examples.strict
"""

from __future__ import annotations

from collections.abc import Callable

from .. import logs
from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.restarts import Backoff
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client

log = logs.get_logger(__name__)


Report = Callable[[int], object]


def log_target(target: int) -> None:
    log.info("memory target", target_kib=target)


def strict(client: Client | None, report: Report) -> None:
    xs = client or default_client()
    while True:
        px.receive(("watch_event", px.ANY, "strict"))
        report(xs.read_integer("memory/target"))  # "lots": EINVAL, and the process dies


def child(client: Client | None = None, backoff: Backoff | None = None,
          report: Report = log_target) -> ChildSpec:
    """The strict subscriber: ``report(target)`` for each good value (default: logged)."""
    return ChildSpec("strict", lambda: px.spawn_link(strict, client, report),
                     watches=(("memory/target", "strict"),),
                     backoff=backoff or Backoff(min=0.1, max=2.0))


def agent(client: Client | None = None, intensity: int = 5, period: float = 30.0,
          backoff: Backoff | None = None, report: Report = log_target) -> ChildSpec:
    """The tree ``xsactor run xsactor.examples.strict:agent`` runs."""
    return supervisor_spec("strict-agent", SupFlags("one_for_one", intensity, period),
                           [child(client, backoff, report)], name="strict-agent")


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent))
