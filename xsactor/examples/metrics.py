"""The metrics publisher: what xe-guest-utilities' ``xe-daemon`` tells the toolstack, under
``data/``.

Every ``period`` seconds it gathers the OS name, kernel release and meminfo and, in one
transaction, writes only the keys whose value differs from what the store holds, plus
``data/updated`` (the time of the change) when anything changed: the toolstack sees a whole
update or none, and an idle guest writes nothing. The store is the reference, not a cache of
what was sent, so the publisher is level-triggered:

- at start (every instance) it deletes stale keys: the ``data/`` keys of its naming scheme
  (``os_*``, ``meminfo_*``) that it does not publish now (a previous version's);
- its declared watch on ``data/updated`` fires when the bus re-registers it after a
  reconnect: a restarted daemon that lost the guest's keys gets them all again at once, not
  a period later (its own writes fire it too, and then find nothing to change).

``("publish", reply_to)`` asks for a publication now; the answer is ``("published", pid,
keys)`` with the keys written. The values come from ``source()`` (default: :func:`gather`).

    python -m xsactor.examples.metrics
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from .. import logs
from ..actors import process as px
from ..actors.childspec import ChildSpec, SupFlags
from ..actors.mailbox import ReceiveTimeout
from ..actors.supervisor import supervisor_spec
from ..bus.client import Client
from ..bus.default import default_client
from ..protocol.errors import ENOENT

log = logs.get_logger(__name__)

PREFIXES = ("os_", "meminfo_")
"""The keys under ``data/`` this publisher owns (with ``updated``)."""

Source = Callable[[], Mapping[str, str]]


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip('"')
    except OSError:
        pass
    return fields


def meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def gather() -> dict[str, str]:
    """What xe-daemon publishes about the OS and memory (KiB), as ``data/`` key -> value."""
    release = os_release()
    memory = meminfo()
    out = {"os_name": release.get("PRETTY_NAME", os.uname().sysname),
           "os_uname": os.uname().release,
           "os_distro": release.get("ID", "unknown")}
    if "MemTotal" in memory:
        out["meminfo_total"] = str(memory["MemTotal"])
        out["meminfo_free"] = str(memory.get("MemAvailable", memory.get("MemFree", 0)))
    return out


def owned(key: str) -> bool:
    return key.startswith(PREFIXES)


def clean_stale(xs: Client, keep: Mapping[str, str]) -> list[str]:
    """Delete the ``data/`` keys of our scheme not in ``keep``, in one transaction."""
    def clean(tid: int) -> list[str]:
        try:
            present = xs.list("data", tid)
        except ENOENT:
            return []
        stale = [k for k in present if owned(k) and k not in keep]
        for key in stale:
            xs.delete(f"data/{key}", tid)
        return stale
    return xs.transact(clean)


def publish(xs: Client, values: Mapping[str, str]) -> list[str]:
    """Write the values that differ from the store's, and ``data/updated`` if any did, in
    one transaction; the keys written."""
    def update(tid: int) -> list[str]:
        changed = [k for k, v in values.items()
                   if xs.read_str(f"data/{k}", tid, default=None) != v]
        for key in changed:
            xs.write(f"data/{key}", values[key], tid)
        if changed:
            xs.write("data/updated", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), tid)
        return changed
    return xs.transact(update)


def publisher(client: Client | None, period: float, source: Source) -> None:
    xs = client or default_client()
    stale = clean_stale(xs, source())
    if stale:
        log.info("stale keys removed", keys=stale)
    deadline = time.monotonic() + period
    while True:
        try:
            message = px.receive(timeout=max(0.0, deadline - time.monotonic()))
        except ReceiveTimeout:
            message = ("tick",)
        changed = publish(xs, source())
        if changed:
            log.info("metrics published", keys=changed)
        match message:
            case ("tick",):
                deadline = time.monotonic() + period
            case ("publish", reply_to):
                px.send(reply_to, ("published", px.self_pid(), changed))


def child(client: Client | None = None, period: float = 60.0,
          source: Source = gather) -> ChildSpec:
    """The publisher, registered as ``metrics``, its watch on ``data/updated`` declared."""
    def start() -> px.Pid:
        pid = px.spawn_link(publisher, client, period, source)
        px.register("metrics", pid)
        return pid
    return ChildSpec("metrics", start, watches=(("data/updated", "republish"),))


def agent(client: Client | None = None, period: float = 60.0,
          source: Source = gather) -> ChildSpec:
    """The tree ``xsactor run xsactor.examples.metrics:agent`` runs."""
    return supervisor_spec("metrics-agent", SupFlags(intensity=3, period=60),
                           [child(client, period, source)])


if __name__ == "__main__":
    from .main import main

    raise SystemExit(main(agent))
