"""Agents for the runner tests (run as ``xsactor run tests.actors.runner_agents:<factory>``)."""

from __future__ import annotations

import xsactor
from xsactor.actors import process as proc
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.supervisor import supervisor_spec


def echo() -> None:
    """Copy ``data/runner`` to ``data/runner-seen`` on every event of its declared watch."""
    while True:
        message = proc.receive()
        if message[0] == "watch_event":
            xsactor.write("data/runner-seen", xsactor.read("data/runner", default=b"-"))


def crasher() -> None:
    raise RuntimeError("boom")


def stuck() -> None:
    """Ignores its shutdown: only a kill ends it."""
    proc.trap_exit(True)
    while True:
        proc.receive()


def tree() -> ChildSpec:
    return supervisor_spec("root", SupFlags(intensity=3, period=60), [
        ChildSpec("echo", lambda: proc.spawn_link(echo),
                  watches=[("data/runner", "runner")]),
    ], name="root")


def giving_up() -> ChildSpec:
    return supervisor_spec("root", SupFlags(intensity=2, period=60), [
        ChildSpec("crasher", lambda: proc.spawn_link(crasher)),
    ])


def stubborn() -> ChildSpec:
    return supervisor_spec("root", SupFlags(), [
        ChildSpec("stuck", lambda: proc.spawn_link(stuck), shutdown="infinity"),
    ])
