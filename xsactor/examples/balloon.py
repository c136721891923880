"""The balloon agent: follows ``memory/target`` as Linux's balloon driver does, and reports
what it would apply.

The toolstack (``xl mem-set``) writes the target in KiB. The watch is a level-triggered
signal: on every event the agent re-reads the current value, whatever the event says, so a
missed or coalesced event loses nothing. Like Linux's ``watch_target`` it ignores a value
that is not a number (logged; the previous target stays). What it would do, a real driver
would: inflate or deflate the balloon by the difference, in 4 KiB pages. It reports the
target it applied under ``data/balloon`` (for the toolstack) and in its log.

It is a server (gen_server): ``gs.call("balloon", "status")`` gives the applied target.

    python -m xsactor.examples.balloon
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

PAGE_KIB = 4
NAME = "balloon"


class Balloon(gs.Server):
    """State: the target applied last (None before the first valid one)."""

    def init(self, client: Client | None) -> None:
        self.xs = client or default_client()
        self.target_kib: int | None = None

    def handle_info(self, message: Any) -> None:
        match message:
            case ("watch_event", _path, "target"):
                self.follow()
            case _:
                super().handle_info(message)

    def handle_call(self, request: Any, caller: gs.Caller) -> Any:
        if request == "status":
            return self.target_kib
        return super().handle_call(request, caller)

    def follow(self) -> None:
        raw = self.xs.read_str("memory/target", default=None)
        if raw is None:
            return
        if not (raw.isascii() and raw.isdigit()):  # xenbus_scanf("%llu") != 1: ignored
            log.warning("memory target ignored: not a number", value=raw)
            return
        target = int(raw)
        if target == self.target_kib:
            return
        previous, self.target_kib = self.target_kib, target
        change = "set" if previous is None else ("deflate" if target > previous else "inflate")
        log.info("balloon target", target_kib=target, previous_kib=previous, would=change,
                 pages=abs(target - (previous or 0)) // PAGE_KIB)
        self.xs.write("data/balloon", target)


def child(client: Client | None = None) -> ChildSpec:
    """The balloon server as a child, registered as ``balloon``; its watch is declared."""
    return ChildSpec(NAME, lambda: gs.start_link(Balloon, client, name=NAME),
                     watches=(("memory/target", "target"),))


def agent(client: Client | None = None) -> ChildSpec:
    """The tree ``xsactor run xsactor.examples.balloon:agent`` runs."""
    return supervisor_spec("balloon-agent", SupFlags(intensity=3, period=10), [child(client)])


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent))
