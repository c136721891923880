"""The embedded daemon at host scale and under attack, beside the C xenstored 4.17.

Rows (each measured on both daemons in the same run, ratio embedded / C):

- READ (and WRITE) round trips/s with 1, 10, 100 dom0 connections, each with one request in
  flight (how libxenstore, the kernel and every guest talk), both daemons measured in turn;
- pipelined WRITEs/s with no watches, with 1,000 and with 10,000 watches registered by
  another connection on unrelated paths;
- RSS growth of the daemon process for 100,000 nodes with distinct 32-byte values;
- attacks: the worst latency of dom0's READ round trips while a guest floods cheap requests
  (and reads its replies), and the daemon's RSS growth while a guest pipelines READs of a
  4 KB value and never reads the replies.

Every row runs for a bounded time (``--seconds``); rates are the best of ``--runs``. The
rates are measured with the client and the daemon on one core, on two cores left to the
scheduler, and on two cores with the daemon pinned apart from the client (``--placement``).

    python bench/daemon_scale.py [--seconds 1] [--runs 3] [--placement all|one|two|apart]
        [--only rtt,writes,rss,attacks]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    KEYS,
    PLACEMENTS,
    VALUE,
    daemon_pid,
    embedded_daemon,
    placement,
    reference_daemon,
    table,
    write_keys,
)

from xsactor.protocol import HEADER_SIZE, Op, Packet
from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.flood import flooding
from xsactor.testing.util import rss_kb
from xsactor.testing.wire import WireClient, connect_unix

CONNECTIONS = (1, 10, 100)
WATCHES = (0, 1000, 10000)
NODES = 100_000
GUEST = 5
PROBE_TIMEOUT = 5.0
"""A dom0 request unanswered this long ends the starvation row (reported as at least this)."""

Daemons = dict[str, Callable[[], object]]


# -- helpers ----------------------------------------------------------------------------------
def _replies_in(buffer: bytearray) -> int:
    """Whole frames at the start of ``buffer`` (removed); how many."""
    count = 0
    pos = 0
    size = len(buffer)
    while size - pos >= HEADER_SIZE:
        length = int.from_bytes(buffer[pos + 12:pos + 16], "little")
        if size - pos < HEADER_SIZE + length:
            break
        if int.from_bytes(buffer[pos:pos + 4], "little") == Op.ERROR:
            raise RuntimeError(f"error reply in benchmark: {bytes(buffer[pos:pos + 32])!r}")
        pos += HEADER_SIZE + length
        count += 1
    del buffer[:pos]
    return count


# -- round trips --------------------------------------------------------------------------------
ROUND_TRIPS = {"READ": Packet.request(Op.READ, KEYS[0]).encode(),
               "WRITE": Packet.write(KEYS[0], VALUE).encode()}
"""The requests of the round-trip rows (a WRITE fires no watch: none is registered)."""


def round_trips(path: str, connections: int, seconds: float, op: str = "READ") -> float:
    """Round trips/s of ``op`` over ``connections`` sockets, one request in flight on each."""
    socks = [connect_unix(path) for _ in range(connections)]
    request = ROUND_TRIPS[op]
    fds = [s.fileno() for s in socks]
    buffers = {fd: bytearray() for fd in fds}
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for fd in fds:
        os.write(fd, request)
    while True:
        for fd, _ in poller.poll():
            buffer = buffers[fd]
            buffer += os.read(fd, 65536)
            got = _replies_in(buffer)
            if got:
                done += got
                os.write(fd, request)
        if time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    poller.close()
    for s in socks:
        s.close()
    return done / elapsed


# -- pipelined writes -------------------------------------------------------------------------
def pipelined_rate(path: str, packets: list[Packet], window: int, seconds: float) -> float:
    """Requests/s: windows of ``window`` requests (one write each) until ``seconds`` passed."""
    sock = connect_unix(path)
    sock.settimeout(None)
    chunks = [b"".join(p.encode() for p in packets[i:i + window])
              for i in range(0, len(packets), window)]
    buffer = bytearray()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    index = 0
    while True:
        sock.sendall(chunks[index % len(chunks)])
        index += 1
        got = 0
        while got < window:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("the daemon closed the connection in benchmark")
            buffer += data
            got += _replies_in(buffer)
        done += got
        if time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    sock.close()
    return done / elapsed


def register_watches(path: str, count: int) -> WireClient:
    """A dom0 connection holding ``count`` watches on paths no benchmark writes."""
    watcher = WireClient(path, timeout=60)
    batch = 500
    for first in range(0, count, batch):
        packets = [Packet.request(Op.WATCH, f"/elsewhere/w{i}", f"t{i}", req_id=i)
                   for i in range(first, min(count, first + batch))]
        watcher.send(*packets)
        for packet in packets:
            watcher.reply_to(packet.req_id)
    watcher.events.clear()
    return watcher


def write_rates(path: str, args: argparse.Namespace) -> dict[int, float]:
    packets = [Packet.write(KEYS[i % len(KEYS)], VALUE, req_id=i) for i in range(args.window)]
    out = {}
    watcher = None
    registered = 0
    for count in WATCHES:
        if count > registered:
            if watcher is not None:
                watcher.close()
            watcher = register_watches(path, count)
            registered = count
        pipelined_rate(path, packets, args.window, 0.05)  # warm up
        out[count] = max(pipelined_rate(path, packets, args.window, args.seconds)
                         for _ in range(args.runs))
    if watcher is not None:
        watcher.close()
    return out


# -- memory -------------------------------------------------------------------------------------
def node_rss_growth(daemon: DaemonUnderTest) -> float:
    """MB of RSS the daemon grows by for NODES nodes with 32-byte values (distinct per node:
    the same value everywhere would let a daemon share one object)."""
    pid = daemon_pid(daemon)
    with WireClient(daemon.socket_path, timeout=120) as dom0:
        dom0.write("/rss", b"")
        before = rss_kb(pid)
        batch = 1000
        for first in range(0, NODES, batch):
            packets = [Packet.write(f"/rss/{i // 1000}/{i % 1000}", b"%032d" % i, req_id=i)
                       for i in range(first, first + batch)]
            dom0.send(*packets)
            for packet in packets:
                if dom0.reply_to(packet.req_id).is_error:
                    raise RuntimeError("write failed in benchmark")
        after = rss_kb(pid)
    return (after - before) / 1024


# -- attacks ------------------------------------------------------------------------------------
def guest_with_value(daemon: DaemonUnderTest, size: int) -> tuple[str, Packet]:
    """Add the guest; a node under its home it may read; the READ request for it."""
    path = daemon.add_guest(GUEST)
    node = f"/local/domain/{GUEST}/data"
    with WireClient(daemon.socket_path) as dom0:
        dom0.write(node, b"d" * size)
    return path, Packet.request(Op.READ, node, req_id=1)


def starvation_ms(daemon: DaemonUnderTest, seconds: float) -> tuple[float, float]:
    """dom0's worst and 99th-percentile READ round trips (ms) while a guest floods cheap
    requests (reading its replies)."""
    guest_path, request = guest_with_value(daemon, 32)
    write_keys(daemon.socket_path)
    latencies = []
    with WireClient(daemon.socket_path, timeout=PROBE_TIMEOUT) as dom0, \
            flooding(guest_path, request, read_replies=True):
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                dom0.read(KEYS[0])
            except (TimeoutError, OSError):
                latencies.append(PROBE_TIMEOUT)
                break
            latencies.append(time.perf_counter() - start)
    latencies.sort()
    return latencies[-1] * 1000, latencies[int(len(latencies) * 0.99)] * 1000


def unread_growth_mb(daemon: DaemonUnderTest, seconds: float) -> float:
    """RSS growth (MB) of the daemon while a guest pipelines 4 KB READs, never reading."""
    guest_path, request = guest_with_value(daemon, 4000)
    pid = daemon_pid(daemon)
    before = rss_kb(pid)
    with flooding(guest_path, request, read_replies=False):
        time.sleep(seconds)  # the measurement's duration, not synchronisation
        after = rss_kb(pid)
    return (after - before) / 1024


# -- the run ------------------------------------------------------------------------------------
def ratio(embedded: float, c: float) -> str:
    return f"{embedded / c:.2f}x" if c else "-"


def pin(daemon: DaemonUnderTest, cpus: set[int] | None) -> None:
    """Keep ``daemon`` on ``cpus`` (None: where the placement put it)."""
    if cpus is not None:
        os.sched_setaffinity(daemon_pid(daemon), cpus)


def rtt_rows(args: argparse.Namespace, cpus: set[int] | None) -> list[tuple[str, ...]]:
    """Round trips, both daemons up at once (on ``cpus``) and measured in turn (C, embedded,
    C, ...), so that a change in the machine's speed meets both alike; the best of each, and
    the median and range of the per-turn ratios."""
    rows: list[tuple[str, ...]] = []
    with reference_daemon() as c, embedded_daemon() as embedded:
        pin(c, cpus)
        pin(embedded, cpus)
        paths = {"C": c.socket_path, "embedded": embedded.socket_path}
        for path in paths.values():
            write_keys(path)
        for op in ROUND_TRIPS:
            for n in CONNECTIONS:
                rows.append(_rtt_row(args, paths, op, n))
    return rows


def _rtt_row(args: argparse.Namespace, paths: dict[str, str], op: str, n: int
             ) -> tuple[str, ...]:
    best = dict.fromkeys(paths, 0.0)
    ratios = []
    for path in paths.values():
        round_trips(path, n, 0.05, op)  # warm up
    for _ in range(args.runs):
        turn = {name: round_trips(path, n, args.seconds, op) for name, path in paths.items()}
        ratios.append(turn["embedded"] / turn["C"])
        best = {name: max(best[name], turn[name]) for name in paths}
    return (f"{op} round trips/s, {n} connection(s), 1 in flight each",
            f"{best['embedded']:,.0f}", f"{best['C']:,.0f}", ratio(best["embedded"], best["C"]),
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")


def write_rows(args: argparse.Namespace, cpus: set[int] | None) -> list[tuple[str, ...]]:
    rates: dict[str, dict[int, float]] = {}
    for name, start in (("C", reference_daemon), ("embedded", embedded_daemon)):
        with start() as daemon:
            pin(daemon, cpus)
            rates[name] = write_rates(daemon.socket_path, args)
    return [(f"pipelined WRITEs/s, {count:,} watches elsewhere",
             f"{rates['embedded'][count]:,.0f}", f"{rates['C'][count]:,.0f}",
             ratio(rates["embedded"][count], rates["C"][count]), "")
            for count in WATCHES]


def placements(cpus: list[int]) -> dict[str, tuple[set[int] | None, set[int] | None]]:
    """Where the client runs, and where the daemons run (None: with the client), on the
    first two of ``cpus``. Apart, every round trip costs a cross-CPU wakeup and the scheduler
    cannot move either side; on two cores left free, it sometimes puts both on one core for a
    while, which shows as noise between turns."""
    out: dict[str, tuple[set[int] | None, set[int] | None]] = {
        "one core": (PLACEMENTS["one core"], None)}
    if len(cpus) >= 2:
        out["two cores"] = (PLACEMENTS["two cores"], None)
        out["two cores, apart"] = ({cpus[0]}, {cpus[1]})
    return out


def memory_rows(args: argparse.Namespace) -> list[tuple[str, ...]]:
    figures: dict[str, dict[str, float]] = {}
    for name, start in (("C", reference_daemon), ("embedded", embedded_daemon)):
        out = figures[name] = {}
        if "rss" in args.only:
            with start() as daemon:
                out["rss"] = node_rss_growth(daemon)
        if "attacks" in args.only:
            with start() as daemon:
                out["starve"], out["starve99"] = starvation_ms(daemon, args.attack_seconds)
            with start() as daemon:
                out["unread"] = unread_growth_mb(daemon, args.attack_seconds)
    labels = {"rss": ("RSS growth for 100,000 nodes (32-byte values), MB", "{:.1f}"),
              "starve": ("attack: worst dom0 READ latency, guest flooding, ms", "{:.1f}"),
              "starve99": ("attack: 99th percentile of the same, ms", "{:.2f}"),
              "unread": ("attack: RSS growth, guest never reading replies, MB", "{:.1f}")}
    rows: list[tuple[str, ...]] = []
    for key, (label, fmt) in labels.items():
        if key in figures["C"]:
            rows.append((label, fmt.format(figures["embedded"][key]),
                         fmt.format(figures["C"][key]),
                         ratio(figures["embedded"][key], figures["C"][key])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each rate")
    parser.add_argument("--attack-seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--placement", choices=("all", "one", "two", "apart"), default="all")
    parser.add_argument("--only", default="rtt,writes,rss,attacks")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    header = ("workload", "embedded", "C xenstored", "embedded / C")
    where_to = placements(sorted(os.sched_getaffinity(0)))
    wanted = {"all": tuple(where_to), "one": ("one core",), "two": ("two cores",),
              "apart": ("two cores, apart",)}
    for where in wanted[args.placement]:
        if where not in where_to:
            print(f"\n{where}: skipped, this process may use one CPU only")
            continue
        if args.only & {"rtt", "writes"}:
            client, daemons = where_to[where]
            with placement(client):
                rows = rtt_rows(args, daemons) if "rtt" in args.only else []
                rows += write_rows(args, daemons) if "writes" in args.only else []
            print(f"\nrates, {where}, best of {args.runs} runs of {args.seconds:g} s "
                  "(round trips: the daemons in turn; turns: median and range of their ratios)")
            print(table(rows, (*header, "turns")), flush=True)
    if args.only & {"rss", "attacks"}:
        with placement(PLACEMENTS["two cores"]):
            rows = memory_rows(args)
        print(f"\nmemory and attacks, two cores, attacks for {args.attack_seconds:g} s")
        print(table(rows, header), flush=True)


if __name__ == "__main__":
    main()
