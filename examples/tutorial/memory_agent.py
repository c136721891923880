"""The tutorial's agent: it follows ``memory/target`` and acknowledges every value.

Run it in a guest, or against an embedded daemon::

    xsactor serve --socket /tmp/xs/socket --guest 5 &
    XENSTORED_PATH=/tmp/xs/5 python examples/tutorial/memory_agent.py
"""

from __future__ import annotations

import xsactor
from xsactor import Client


def follow_memory(client: Client) -> None:
    """Acknowledge ``memory/target`` under ``data/``, re-reading it on every event."""
    token = client.watch("memory/target")
    while True:
        client.next_event(token)          # "something changed": re-read, never count events
        target = client.read_integer("memory/target", default=None)
        if target is not None:
            client.write("data/memory/target-ack", target)


if __name__ == "__main__":
    follow_memory(xsactor.default_client())
