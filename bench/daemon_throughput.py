"""Pipelined READ and WRITE throughput: the embedded daemon beside the C xenstored 4.17.

One client sends requests in windows (one write per window) and counts replies; both daemons
are measured in the same run and the ratio embedded / C is printed.

    python bench/daemon_throughput.py [--ops 20000] [--window 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    KEYS,
    PLACEMENTS,
    VALUE,
    best_of,
    embedded_daemon,
    placement,
    raw_pipelined,
    reference_daemon,
    table,
    write_keys,
)

from xsactor.protocol import Op, Packet

WORKLOADS = ("READ", "WRITE")


def packets_for(workload: str, ops: int) -> list[Packet]:
    keys = [KEYS[i % len(KEYS)] for i in range(ops)]
    if workload == "READ":
        return [Packet.request(Op.READ, k, req_id=i) for i, k in enumerate(keys)]
    return [Packet.write(k, VALUE, req_id=i) for i, k in enumerate(keys)]


def measure(socket_path: str, args: argparse.Namespace) -> dict[str, float]:
    write_keys(socket_path)
    out = {}
    for workload in WORKLOADS:
        packets = packets_for(workload, args.ops)
        raw_pipelined(socket_path, packets[: args.window], args.window)  # warm up
        seconds = best_of(args.runs, functools.partial(raw_pipelined, socket_path, packets,
                                                       args.window))
        out[workload] = args.ops / seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for where, cpus in PLACEMENTS.items():
        with placement(cpus):
            with reference_daemon() as ref:
                c_rates = measure(ref.socket_path, args)
            with embedded_daemon() as emb:
                e_rates = measure(emb.socket_path, args)
        rows = [(w, f"{e_rates[w]:,.0f}", f"{c_rates[w]:,.0f}",
                 f"{e_rates[w] / c_rates[w]:.2f}x") for w in WORKLOADS]
        print(f"\npipelined, one client, {where}, {args.ops} ops, windows of {args.window}, "
              f"best of {args.runs}")
        print(table(rows, ("op", "embedded ops/s", "C xenstored ops/s", "embedded / C")))


if __name__ == "__main__":
    main()
