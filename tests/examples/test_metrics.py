"""The metrics publisher: transactions, only changed values, stale keys cleaned at start,
republished after the daemon restarts."""

from __future__ import annotations

from xsactor.actors import process as px
from xsactor.bus.client import Client
from xsactor.bus.connection import State
from xsactor.examples import metrics
from xsactor.testing.sandbox import Sandbox

HOME = "/local/domain/5"
VALUES = {"os_name": "Debian GNU/Linux 12 (bookworm)", "os_uname": "6.1.0",
          "meminfo_total": "262144", "meminfo_free": "131072"}


def value(dom0: Client, key: str, expected: str | None = None, timeout: float = 10.0) -> str:
    """Wait until ``data/<key>`` exists (and holds ``expected``, if given); its value."""
    def check() -> str | None:
        got = dom0.read_str(f"{HOME}/data/{key}", default=None)
        return got if got is not None and expected in (None, got) else None
    return dom0.wait_for(check, timeout)


def publish_now() -> list[str]:
    pid = px.whereis("metrics")
    assert pid is not None
    px.send(pid, ("publish", px.self_pid()))
    return px.receive(("published", pid, px.ANY), 10)[2]


def test_publishes_what_changed_and_cleans_stale_keys(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    for key, stale in (("os_oldkey", "x"), ("meminfo_swap", "1"), ("balloon", "keep")):
        guest.write(f"data/{key}", stale)
    values = dict(VALUES)
    xs.start(metrics.agent(guest, period=60, source=lambda: values), client=guest)
    value(dom0, "updated")
    assert {k: dom0.read_str(f"{HOME}/data/{k}") for k in VALUES} == VALUES
    assert sorted(dom0.list(f"{HOME}/data")) == sorted([*VALUES, "updated", "balloon"])

    token = dom0.watch(f"{HOME}/data", "data")
    dom0.next_event(token, timeout=10)  # the registration event
    assert publish_now() == []  # nothing changed: nothing written
    dom0.write(f"{HOME}/data/marker", "")  # after any write the publisher made
    assert dom0.next_event(token, timeout=10)[0] == f"{HOME}/data/marker"

    values["meminfo_free"] = "65536"
    assert publish_now() == ["meminfo_free"]
    assert dom0.read_str(f"{HOME}/data/meminfo_free") == "65536"
    dom0.unwatch(f"{HOME}/data", token)


def test_publishes_on_its_period(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    values = dict(VALUES)
    xs.start(metrics.agent(guest, period=0.05, source=lambda: values), client=guest)
    value(dom0, "meminfo_free", "131072")
    values["meminfo_free"] = "1024"
    value(dom0, "meminfo_free", "1024")


def test_republishes_after_the_daemon_restarts(xs: Sandbox, xs_dom0: Client) -> None:
    dom0, guest = xs_dom0, xs.guest(5)
    xs.start(metrics.agent(guest, period=60, source=lambda: VALUES), client=guest)
    value(dom0, "os_name")
    xs.stop_daemon()
    assert guest.conn.wait_state(State.RECONNECTING, timeout=10)
    xs.start_daemon()  # the new daemon knows nothing of the guest's keys
    assert value(dom0, "os_name", timeout=20) == VALUES["os_name"]  # not a period later
    assert value(dom0, "meminfo_total") == VALUES["meminfo_total"]


def test_gather_reads_this_machine() -> None:
    facts = metrics.gather()
    assert facts["os_uname"] and facts["os_name"]
    assert int(facts["meminfo_total"]) >= int(facts["meminfo_free"]) > 0
