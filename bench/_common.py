"""Shared pieces of the benchmarks: daemons to measure against, a raw pipelined client, a table.

Benchmarks print ratios between peers measured in the same run, never absolute targets.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence

from xsactor.logs import configure
from xsactor.protocol import Decoder, Op, Packet
from xsactor.testing.daemons import (
    DaemonUnderTest,
    EmbeddedDaemonProcess,
    ReferenceDaemonDriver,
    running,
)
from xsactor.testing.reference import ensure_install
from xsactor.testing.wire import WireClient

configure("warning")

KEYS = [f"/bench/k{i}" for i in range(100)]
"""The keys the benchmarks read and write."""
VALUE = b"v" * 16


PLACEMENTS = {
    "one core": {0},
    "two cores": None,
}
"""Where the client and the daemon run. On one core, a request's round trip costs two context
switches; across cores it costs a cross-CPU wakeup, which on small VMs is slower and varies
from run to run. Every peer of a table runs under the same placement."""


@contextlib.contextmanager
def placement(cpus: set[int] | None) -> Iterator[None]:
    """Pin this process, and the daemons and helpers it starts, to ``cpus`` (None: all)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus if cpus is not None else set(range(os.cpu_count() or 1)))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def embedded_daemon() -> Iterator[DaemonUnderTest]:
    with running("embedded", prefix="xsactor-bench-") as daemon:
        yield daemon


@contextlib.contextmanager
def reference_daemon() -> Iterator[DaemonUnderTest]:
    """The C xenstored 4.17, without tracing."""
    with running("reference", prefix="xsactor-bench-ref-", install=ensure_install()) as daemon:
        yield daemon


def daemon_pid(daemon: DaemonUnderTest) -> int:
    """The process id of a running daemon (embedded subprocess or the C reference)."""
    if isinstance(daemon, EmbeddedDaemonProcess):
        assert daemon.process is not None
        return daemon.process.pid
    assert isinstance(daemon, ReferenceDaemonDriver)
    pid = daemon.daemon.pid
    assert pid is not None
    return pid


def write_keys(path: str) -> None:
    """Give every key of :data:`KEYS` the value :data:`VALUE`."""
    with WireClient(path) as setup:
        for key in KEYS:
            setup.write(key, VALUE)


def raw_pipelined(path: str, packets: list[Packet], window: int) -> float:
    """Send ``packets`` in windows of ``window`` (one write each); seconds until all replied."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    decoder = Decoder()
    chunks = [b"".join(p.encode() for p in packets[i:i + window])
              for i in range(0, len(packets), window)]
    sizes = [min(window, len(packets) - i) for i in range(0, len(packets), window)]
    start = time.perf_counter()
    for chunk, expected in zip(chunks, sizes, strict=True):
        sock.sendall(chunk)
        got = 0
        while got < expected:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("the daemon closed the connection in benchmark")
            for reply in decoder.feed(data):
                if reply.op == Op.ERROR:
                    raise RuntimeError(f"{reply!r} in benchmark")
                got += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed


def best_of(runs: int, measure: Callable[[], float]) -> float:
    """The fastest of ``runs`` measurements (least disturbed by the machine)."""
    return min(measure() for _ in range(runs))


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)
