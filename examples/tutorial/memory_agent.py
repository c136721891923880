"""The tutorial's agent: it follows ``memory/target`` and acknowledges every value, under a
supervisor that restarts it (after a backoff) when it crashes.

Run it in a guest, or against an embedded daemon::

    xsactor serve --socket /tmp/xs/socket --guest 5 &
    XENSTORED_PATH=/tmp/xs/5 python examples/tutorial/memory_agent.py
"""

from __future__ import annotations

import xsactor
from xsactor import Client
from xsactor.actors import process as px
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.restarts import Backoff
from xsactor.actors.supervisor import supervisor_spec


def follow_memory(client: Client) -> None:
    """Acknowledge ``memory/target`` under ``data/``, re-reading it on every event."""
    token = client.watch("memory/target")
    while True:
        client.next_event(token)          # "something changed": re-read, never count events
        target = client.read_integer("memory/target", default=None)
        if target is not None:
            client.write("data/memory/target-ack", target)


def tree() -> ChildSpec:
    """The agent as a supervision tree: a value that is not an integer crashes
    ``follow_memory``; its supervisor restarts it, and gives up after 5 crashes in 10 s."""
    return supervisor_spec("memory-agent", SupFlags("one_for_one", intensity=5, period=10), [
        ChildSpec("follow_memory",
                  lambda: px.spawn_link(follow_memory, xsactor.default_client()),
                  backoff=Backoff(min=0.1, max=5.0)),
    ])


if __name__ == "__main__":
    raise SystemExit(xsactor.run_agent(tree))       # SIGTERM stops it; see xsactor run
