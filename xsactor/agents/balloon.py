"""A guest's balloon agent: follows ``memory/target`` (KiB), level-triggered.

Every event of its watch means "re-read": it reads the target again and reports what it would
apply (logs it and writes ``data/balloon/would-apply``); a value that is not a number of KiB is
reported and ignored (or, with ``strict``, crashes the worker, which its supervisor
restarts after a backoff). Run it: ``xsactor run xsactor.agents.balloon:tree``.
"""

from __future__ import annotations

from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.restarts import Backoff
from ..actors.supervisor import supervisor_spec
from ..bus import default as bus
from ..logs import get_logger

log = get_logger("balloon_agent")


def balloon(strict: bool = False) -> None:
    applied = None
    while True:
        px.receive(("watch_event", px.ANY, "target"))
        try:
            target = bus.read_integer("memory/target", default=None)
        except ValueError as exc:
            if strict:
                raise  # let it crash: the supervisor restarts it, with backoff
            log.warning("memory/target is not a size in KiB", error=str(exc))
            continue
        if target is None or target == applied:
            continue  # several events, one change: nothing new to apply
        applied = target
        log.info("would balloon to", target_kib=target)
        bus.write("data/balloon/would-apply", target)


def child(strict: bool = False) -> ChildSpec:
    """The balloon worker; ``strict``: a bad value crashes it (restarted after a backoff)."""
    return ChildSpec("balloon", lambda: px.spawn_link(balloon, strict),
                     watches=(("memory/target", "target"),),
                     backoff=Backoff(min=0.1, max=5.0))


def tree(strict: bool = False) -> ChildSpec:
    return supervisor_spec("balloon-agent", SupFlags("one_for_one", intensity=5, period=10),
                           [child(strict)])

