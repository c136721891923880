"""A supervised subscriber: a bad value crashes it, its supervisor restarts it with backoff,
and it handles every later change (run by xsactor's agent runner).

Run it against the embedded daemon::

    xsactor serve --socket /tmp/xs/socket --guest 5=/tmp/xs/guest5 &
    XENSTORED_PATH=/tmp/xs/guest5 python examples/supervised_balloon.py
    # or, from examples/: XENSTORED_PATH=/tmp/xs/guest5 xsactor run supervised_balloon:tree

The ``balloon`` child declares its watch on ``memory/target`` in its child spec: each new
instance gets it in its own mailbox, starting with the registration event, and re-reads the
value (level-triggered). ``read_integer`` of ``"abc"`` raises: the child dies, the supervisor
logs it and restarts it after 0.1, 0.2, 0.4 ... s. SIGTERM stops the tree; SIGUSR1 logs it.
"""

from __future__ import annotations

import xsactor
from xsactor.actors import process as px
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.restarts import Backoff
from xsactor.actors.supervisor import supervisor_spec


def balloon() -> None:
    while True:
        px.receive(("watch_event", px.ANY, "target"))
        target = xsactor.read_integer("memory/target")  # "abc": EINVAL, a crash
        xsactor.write("data/balloon", str(target))


def tree(backoff: Backoff | None = None, intensity: int = 10) -> ChildSpec:
    return supervisor_spec("agent", SupFlags("one_for_one", intensity=intensity, period=60), [
        ChildSpec("balloon", lambda: px.spawn_link(balloon),
                  watches=[("memory/target", "target")],
                  backoff=backoff or Backoff(min=0.1, max=2.0)),
    ], name="agent")


if __name__ == "__main__":
    raise SystemExit(xsactor.run_agent(tree))
