"""A whole guest agent: every guest-side example under one supervision tree.

::

    guest (one_for_one)
    ├── shutdown       control/shutdown, as manage.c
    ├── balloon        memory/target, level-triggered
    ├── strict-agent   (a supervisor) the subscriber that crashes on a bad value
    ├── metrics        data/ as xe-guest-utilities
    └── vif-0          the frontend of vif 0

The strict subscriber has a supervisor of its own: when it gives up, only that subtree is
restarted by the root, once, and the other agents run on.

    python -m xsactor.examples.guest
"""

from __future__ import annotations

from collections.abc import Mapping

from ..actors.childspec import ChildSpec, SupFlags
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from . import balloon, metrics, shutdown, strict, vif


def agent(client: Client | None = None, actions: Mapping[str, shutdown.Action] | None = None,
          metrics_period: float = 60.0, report: strict.Report = strict.log_target
          ) -> ChildSpec:
    """The guest's tree (``xsactor run xsactor.examples.guest:agent``)."""
    return supervisor_spec("guest", SupFlags("one_for_one", intensity=5, period=30), [
        shutdown.child(client, actions),
        balloon.child(client),
        strict.agent(client, report=report),
        metrics.child(client, metrics_period),
        vif.frontend_child(client),
    ], name="guest")


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent))
