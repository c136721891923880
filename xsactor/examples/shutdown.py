"""The shutdown agent: ``control/shutdown`` handled as Linux's ``drivers/xen/manage.c`` does.

The toolstack (``xl shutdown``, ``xl reboot``, ``xl save``) writes a request into the guest's
``control/shutdown``. On every event of its watch the agent, like ``shutdown_handler``:

1. starts a transaction and reads the request; an empty value (or none) is ignored (the
   transaction is rolled back);
2. writes ``""`` back only for a request it handles (``poweroff``, ``halt``, ``reboot``,
   ``suspend``): an unknown one is left in place for whoever does know it;
3. commits, and on ``EAGAIN`` (the toolstack wrote meanwhile) starts again from the read;
4. acts only after the commit, and logs an unknown request as ignored.

At start it advertises ``control/feature-poweroff``, ``-reboot`` and ``-suspend`` = 1 (halt has
no feature flag, as in ``manage.c``). While an action that does not return runs (``poweroff``,
``halt``, ``reboot``: ``shutting_down`` in ``manage.c``) later requests are ignored;
``suspend`` returns, and requests are handled again. The actions are callables: the default
ones only log what a real guest would do.

Run it against an embedded daemon it starts itself (guest 5)::

    python -m xsactor.examples.shutdown
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from .. import logs
from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client
from ..protocol.errors import EAGAIN

log = logs.get_logger(__name__)

Action = Callable[[], object]

FEATURES = {"poweroff": True, "halt": False, "reboot": True, "suspend": True}
"""The requests manage.c handles, and whether each is advertised as ``control/feature-*``."""

RETURNING = frozenset({"suspend"})
"""Actions after which the guest runs on (the others end it: later requests are ignored)."""


def default_actions() -> dict[str, Action]:
    """Actions that only log what a real guest would run."""
    commands = {"poweroff": "systemctl poweroff", "halt": "systemctl halt",
                "reboot": "systemctl reboot", "suspend": "the kernel's xen_suspend"}
    def would_run(command: str) -> Action:
        return lambda: log.info("would run", command=command)
    return {name: would_run(command) for name, command in commands.items()}


def take_request(xs: Client, handled: Mapping[str, object]) -> str | None:
    """Read ``control/shutdown`` in a transaction, clear it if it is one of ``handled``;
    commit (again from the read on EAGAIN). The request, or None when there was none."""
    while True:
        tid = xs.transaction()
        try:
            request = xs.read_str("control/shutdown", tid, default="")
            if request and request in handled:  # acknowledge only what we will handle
                xs.write("control/shutdown", "", tid)
        except Exception:
            with contextlib.suppress(Exception):  # the connection may be gone with it
                xs.rollback(tid)
            raise
        if not request:  # XENBUS_IS_ERR_READ: an error or an empty read
            xs.rollback(tid)
            return None
        try:
            xs.commit(tid)
        except EAGAIN:
            log.info("shutdown transaction conflicted, again", request=request)
            continue
        return request


def shutdown_handler(xs: Client | None, actions: Mapping[str, Action]) -> None:
    """The agent's process: advertise, then take each request and act after the commit."""
    xs = xs or default_client()
    for name, advertised in FEATURES.items():
        if advertised and name in actions:
            xs.write(f"control/feature-{name}", "1")
    shutting_down = False
    while True:
        px.receive(("watch_event", px.ANY, "shutdown"))
        if shutting_down:
            continue
        request = take_request(xs, actions)
        if request is None:
            continue
        action = actions.get(request)
        if action is None:
            log.info("ignoring shutdown request", request=request)
            continue
        log.info("shutdown requested", request=request)
        shutting_down = request not in RETURNING
        action()


def child(client: Client | None = None,
          actions: Mapping[str, Action] | None = None) -> ChildSpec:
    """The shutdown handler as a child: its watch on ``control/shutdown`` is declared."""
    chosen = dict(default_actions() if actions is None else actions)
    return ChildSpec("shutdown", lambda: px.spawn_link(shutdown_handler, client, chosen),
                     watches=(("control/shutdown", "shutdown"),))


def agent(client: Client | None = None,
          actions: Mapping[str, Action] | None = None) -> ChildSpec:
    """The tree ``xsactor run xsactor.examples.shutdown:agent`` runs."""
    return supervisor_spec("shutdown-agent", SupFlags("one_for_one", intensity=3, period=10),
                           [child(client, actions)])


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent))
