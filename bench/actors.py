"""The actor layer: watch fan-out into process mailboxes, spawn and exit, call round trips.

Printed side by side in one run:

- watch fan-out on the embedded daemon and on the C xenstored 4.17 (dom0 socket: a guest's
  watch quota is far below 10,000), with 1, 100, 1,000 and 10,000 subscriber processes, each
  watching its own key ("own key") or all watching one key ("one key"), and one writer (a
  second connection; in "own key" it keeps up to 64 writes in flight): events delivered per
  second, p50 and p99 latency from the write's reply (as the writer sees it) to the delivery
  (the subscriber's ``receive`` returning; a delivery that runs before the writer sees its
  reply counts as 0), and memory per idle subscriber (process, mailbox and watch: the growth
  of this process's RSS, divided by the subscribers; shown from 1,000 subscribers on). Each
  case shows its best rate and the percentiles of its least disturbed run (lowest p99);
- spawn plus exit of a process, against a bare gevent greenlet;
- a ``call`` round trip to a server, against a raw ``AsyncResult`` handoff between two
  greenlets.

    python bench/actors.py [--sizes 1,100,1000,10000] [--events 20000] [--ops 20000] [--runs 3]

The longest mode is bounded: each fan-out case delivers about ``--events`` events (at least one
write), whatever the number of subscribers.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gevent
import gevent.pool
from _common import best_of, embedded_daemon, reference_daemon, table
from gevent.event import AsyncResult, Event
from gevent.queue import Queue

from xsactor import Client
from xsactor.actors import process
from xsactor.testing.util import rss_kb

SIZES = (1, 100, 1000, 10_000)
MODES = ("own key", "one key")
WINDOW = 64


def rss() -> int:
    """This process's resident memory in bytes."""
    return rss_kb(os.getpid()) * 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class FanOut:
    """``n`` subscriber processes on one connection, and a writer on another."""

    def __init__(self, path: str, n: int, mode: str) -> None:
        self.n = n
        self.mode = mode
        self.keys = [f"/bench/fan/k{i}" for i in range(n)] if mode == "own key" else [
            "/bench/fan/one"]
        self.writer = Client(path)
        for key in self.keys:
            self.writer.write(key, "0")
        self.bus = Client(path)
        self.delivered: list[tuple[str, float]] = []
        self.expected = 0
        self.done = Event()
        self.ready = 0
        self.all_ready = Event()
        gc.collect()
        before = rss()
        self.pids = [process.spawn(self._subscriber, self.keys[i % len(self.keys)], f"s{i}")
                     for i in range(n)]
        self.all_ready.wait()
        gc.collect()
        self.bytes_per_subscriber = (rss() - before) / n

    def _subscriber(self, key: str, token: str) -> None:
        self.bus.watch(key, token)
        process.receive()  # the first event, right after registration
        self.ready += 1
        if self.ready == self.n:
            self.all_ready.set()
        clock = time.perf_counter
        while True:
            message = process.receive()
            if message == "stop":
                return
            delivered = self.delivered
            delivered.append((message[1], clock()))
            if len(delivered) == self.expected:
                self.done.set()

    def run(self, events: int) -> tuple[float, list[float]]:
        """Deliver about ``events`` events; returns (events/s, latencies in seconds)."""
        replied: dict[str, float] = {}
        latencies: list[float] = []
        rounds = max(1, events // self.n)
        start = time.perf_counter()
        for _ in range(rounds):
            self.delivered = []
            self.expected = self.n
            self.done.clear()
            if self.mode == "one key":
                self.writer.write(self.keys[0], "1")
                replied[self.keys[0]] = time.perf_counter()
            else:
                self._write_all(replied)
            if not self.done.wait(60):
                raise RuntimeError(f"{len(self.delivered)} of {self.n} events delivered")
            latencies += [max(0.0, at - replied[key]) for key, at in self.delivered]
        elapsed = time.perf_counter() - start
        return rounds * self.n / elapsed, latencies

    def _write_all(self, replied: dict[str, float]) -> None:
        def write(key: str) -> None:
            self.writer.write(key, "1")
            replied[key] = time.perf_counter()
        pool = gevent.pool.Pool(WINDOW)
        for key in self.keys:
            pool.spawn(write, key)
        pool.join(raise_error=True)

    def close(self) -> None:
        for pid in self.pids:
            process.send(pid, "stop")
        while process.processes():
            gevent.sleep(0.001)
        self.bus.close()
        self.writer.close()


def fan_out(path: str, sizes: tuple[int, ...], events: int,
            runs: int) -> dict[tuple[str, int], Any]:
    """Per case: the best rate, and the percentiles of the least disturbed run (lowest p99),
    of up to ``runs`` runs sharing the ``events`` budget."""
    results = {}
    for mode in MODES:
        for n in sizes:
            case = FanOut(path, n, mode)
            tries = max(1, min(runs, events // n))
            try:
                measured = [case.run(events // tries) for _ in range(tries)]
            finally:
                case.close()
            rate = max(r for r, _ in measured)
            p99, p50 = min((percentile(lat, 0.99), percentile(lat, 0.5)) for _, lat in measured)
            # RSS moves by pages and by what the allocator returns: meaningful from 1,000 on.
            memory = case.bytes_per_subscriber if n >= 1000 else None
            results[(mode, n)] = (rate, p50, p99, memory)
    return results


# -- spawn and exit ----------------------------------------------------------------------------
def _noop() -> None:
    pass


def spawn_exit_process(ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        process.spawn(_noop)
    while process.processes():
        gevent.sleep(0)
    return (time.perf_counter() - start) / ops


def spawn_exit_greenlet(ops: int) -> float:
    start = time.perf_counter()
    greenlets = [gevent.spawn(_noop) for _ in range(ops)]
    gevent.joinall(greenlets)
    return (time.perf_counter() - start) / ops


# -- call round trip ---------------------------------------------------------------------------
def call_round_trip(ops: int) -> float:
    from xsactor.actors import server

    class Echo(server.Server):
        def handle_call(self, request: Any, caller: Any) -> Any:
            return request

    pid = server.start(Echo)
    assert pid is not None
    start = time.perf_counter()
    for i in range(ops):
        server.call(pid, i)
    elapsed = time.perf_counter() - start
    server.stop(pid)
    process.release_self()  # the bench's main greenlet was adopted by call()
    return elapsed / ops


def raw_handoff(ops: int) -> float:
    requests: Queue[tuple[int, AsyncResult] | None] = Queue()

    def echo() -> None:
        while (item := requests.get()) is not None:
            item[1].set(item[0])

    g = gevent.spawn(echo)
    start = time.perf_counter()
    for i in range(ops):
        result: AsyncResult = AsyncResult()
        requests.put((i, result))
        result.get()
    elapsed = time.perf_counter() - start
    requests.put(None)
    g.join()
    return elapsed / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))

    with embedded_daemon() as daemon:
        embedded = fan_out(daemon.socket_path, sizes, args.events, args.runs)
    with reference_daemon() as daemon:
        reference = fan_out(daemon.socket_path, sizes, args.events, args.runs)
    rows = []
    for (mode, n), (rate, p50, p99, mem) in embedded.items():
        c_rate, c_p50, c_p99, c_mem = reference[(mode, n)]
        rows.append((mode, f"{n:,}", f"{rate:,.0f}", f"{c_rate:,.0f}", f"{rate / c_rate:.2f}x",
                     f"{p50 * 1e3:.2f} / {c_p50 * 1e3:.2f}", f"{p99 * 1e3:.2f} / {c_p99 * 1e3:.2f}",
                     "-" if mem is None else f"{mem / 1024:.1f} / {c_mem / 1024:.1f}"))
    print(f"\nWatch fan-out into process mailboxes, one writer, ~{args.events:,} events a case")
    print(table(rows, ("watching", "subscribers", "events/s embedded", "events/s C",
                       "embedded / C", "p50 ms (emb / C)", "p99 ms (emb / C)",
                       "KiB per idle subscriber (emb / C)")))

    proc = best_of(args.runs, lambda: spawn_exit_process(args.ops))
    bare = best_of(args.runs, lambda: spawn_exit_greenlet(args.ops))
    call = best_of(args.runs, lambda: call_round_trip(args.ops))
    raw = best_of(args.runs, lambda: raw_handoff(args.ops))
    print(f"\nProcesses, best of {args.runs}, {args.ops:,} each")
    print(table([("spawn + exit", f"{proc * 1e6:.2f}", f"{bare * 1e6:.2f}", f"{proc / bare:.2f}x"),
                 ("call round trip", f"{call * 1e6:.2f}", f"{raw * 1e6:.2f}",
                  f"{call / raw:.2f}x")],
                ("what", "xsactor µs", "peer µs", "ratio"))
          + "\n(peers: a bare gevent greenlet; a raw AsyncResult handoff between greenlets)")


if __name__ == "__main__":
    main()
