"""A guest's metrics publisher, as xe-guest-utilities publishes under ``data/``.

At start it removes the keys it publishes (stale ones of a previous run); then, every
``period`` seconds, it reads the OS name and ``/proc/meminfo`` and, only when they changed,
writes them with a timestamp in one transaction (run again on EAGAIN). After a daemon restart
its process dies with the connection, the supervisor restarts it once the bus is back (such a
death does not count toward the intensity), and the new instance cleans up and republishes.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable

import gevent

import xsactor
from xsactor.actors import process as px
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.supervisor import supervisor_spec
from xsactor.logs import get_logger

log = get_logger("metrics_publisher")

Metrics = dict[str, str]
KEYS = ("data/os_name", "data/meminfo_total", "data/meminfo_free", "data/updated")


def read_metrics() -> Metrics:
    """The OS name and memory in KiB (``/proc/meminfo``)."""
    meminfo: dict[str, str] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                meminfo[name] = rest.split()[0] if rest.split() else "0"
    except OSError:
        pass
    return {"data/os_name": f"{platform.system()} {platform.release()}",
            "data/meminfo_total": meminfo.get("MemTotal", "0"),
            "data/meminfo_free": meminfo.get("MemAvailable", meminfo.get("MemFree", "0"))}


def publisher(read: Callable[[], Metrics], period: float) -> None:
    for key in KEYS:                                   # stale keys of a previous life
        with contextlib.suppress(xsactor.ENOENT):
            xsactor.delete(key)
    published: Metrics | None = None
    while True:
        metrics = read()
        if metrics != published:
            def publish(tid: int, metrics: Metrics = metrics) -> None:
                for key, value in metrics.items():
                    xsactor.write(key, value, tid)
                xsactor.write("data/updated", f"{time.time():.0f}", tid)

            xsactor.transact(publish)
            published = metrics
            log.info("published", **{k.split("/")[-1]: v for k, v in metrics.items()})
        gevent.sleep(period)                           # the publishing period


def tree(read: Callable[[], Metrics] = read_metrics, period: float = 60.0) -> ChildSpec:
    return supervisor_spec("metrics", SupFlags("one_for_one", intensity=5, period=60), [
        ChildSpec("publisher", lambda: px.spawn_link(publisher, read, period)),
    ])


if __name__ == "__main__":
    raise SystemExit(xsactor.run_agent(tree))
