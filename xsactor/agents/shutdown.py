"""A guest's shutdown agent, as Linux's ``drivers/xen/manage.c`` handles ``control/shutdown``.

It advertises ``control/feature-poweroff``, ``-reboot`` and ``-suspend``; on every event of its
watch it reads the request in a transaction, ignores an empty or unknown one, writes ``""``
only for a request it handles, commits (running again on EAGAIN) and acts only after the
commit. The actions are configurable (``tree(actions={...})``); by default they log.

Against the embedded daemon::

    xsactor serve --socket /tmp/xs/socket --guest 5 &
    XENSTORED_PATH=/tmp/xs/5 xsactor run xsactor.agents.shutdown:tree
    XENSTORED_PATH=/tmp/xs/socket xsactor write /local/domain/5/control/shutdown poweroff
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.supervisor import supervisor_spec
from ..bus import default as bus
from ..logs import get_logger

log = get_logger("shutdown_agent")

REQUESTS = ("poweroff", "halt", "reboot", "suspend")
FEATURES = ("poweroff", "reboot", "suspend")


def _log_action(request: str) -> Callable[[], None]:
    return lambda: log.info("would act on the shutdown request", request=request)


def take_request(tid: int, handled: Mapping[str, object]) -> str | None:
    """manage.c's transaction: the request if it is one we handle (then acknowledged)."""
    request = bus.read_str("control/shutdown", tid, default="")
    if request not in handled:
        return None  # empty or unknown: nothing written, so the toolstack sees it ignored
    bus.write("control/shutdown", "", tid)
    return request


def shutdown_watcher(actions: Mapping[str, Callable[[], None]]) -> None:
    for feature in FEATURES:
        if feature in actions:
            bus.write(f"control/feature-{feature}", "1")
    while True:
        px.receive(("watch_event", px.ANY, "shutdown"))   # level-triggered: re-read below
        request = bus.transact(lambda tid: take_request(tid, actions))
        if request is not None:
            log.info("shutdown request", request=request)
            actions[request]()                             # after the commit
        elif value := bus.read_str("control/shutdown", default=""):
            log.info("ignoring shutdown request", request=value)


def child(actions: Mapping[str, Callable[[], None]] | None = None) -> ChildSpec:
    """The shutdown worker (``actions``: request -> callable; default: log each request)."""
    chosen = dict(actions) if actions is not None else {r: _log_action(r) for r in REQUESTS}
    return ChildSpec("shutdown", lambda: px.spawn_link(shutdown_watcher, chosen),
                     watches=(("control/shutdown", "shutdown"),))


def tree(actions: Mapping[str, Callable[[], None]] | None = None) -> ChildSpec:
    return supervisor_spec("shutdown-agent", SupFlags("one_for_one", intensity=5, period=10),
                           [child(actions)])
