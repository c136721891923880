"""``agents``: run an example's supervision tree under the test, as the runner would.

(Small and local: the plugin's own fixture for this is being written on another branch.)
``agents.connect(socket, declared=True)`` opens a Client and installs the runner's watch
registrar and restart gate for it (one such client per test: the registrar is global);
``agents.start(spec)`` starts a tree linked to the test (which traps exits); at the end every
tree is stopped as a runner stops it (``shutdown``, reverse order), no watch may be left on
any of the clients, and they close.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from xsactor.actors import process as px
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, child_spec
from xsactor.bus.client import Client
from xsactor.runner import ConnectionGate, watch_registrar

STOP_TIMEOUT = 10.0


class Agents:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.roots: list[px.Pid] = []
        self.restore: list[Any] = []

    def connect(self, socket: str, *, declared: bool = False,
                client_class: type[Client] = Client) -> Client:
        client = client_class(socket, backoff_initial=0.01, backoff_max=0.2)
        self.clients.append(client)
        if declared:
            assert not self.restore, "one client per test gets the declared watches"
            self.restore = [sup.set_watch_registrar(watch_registrar(client)),
                            sup.set_default_gate(ConnectionGate(client))]
        return client

    def start(self, spec: ChildSpec) -> px.Pid:
        px.trap_exit(True)
        root = child_spec(spec).start()
        assert isinstance(root, px.Pid)
        self.roots.append(root)
        return root

    def exited(self, root: px.Pid, timeout: float = STOP_TIMEOUT) -> Any:
        """Wait for ``root``'s EXIT (it ended by itself); its reason."""
        reason = px.receive(("EXIT", root, px.ANY), timeout)[2]
        self.roots.remove(root)
        return reason

    def stop(self, root: px.Pid) -> Any:
        px.exit(root, "shutdown")
        return self.exited(root)

    def close(self) -> None:
        try:
            for root in reversed(list(self.roots)):
                self.stop(root)
            left = [w for client in self.clients for w in client.conn.watches()]
            assert not left, f"watches left after the trees stopped: {left}"
        finally:
            if self.restore:
                sup.set_watch_registrar(self.restore[0])
                sup.set_default_gate(self.restore[1])
            for client in self.clients:
                client.close()


@pytest.fixture
def agents() -> Iterator[Agents]:
    runner = Agents()
    try:
        yield runner
    finally:
        runner.close()
