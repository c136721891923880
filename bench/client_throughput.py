"""Client throughput against the C xenstored 4.17, all peers in one run.

Peers, all doing READ of small keys:
- xsactor's client with 1, 8, 64 and 256 concurrent greenlets (one connection, pipelined);
- pyxs (PyPI), sequential;
- libxenstore through its Python binding ``xen.lowlevel.xs``, sequential (in a subprocess,
  since it needs the reference install's libraries);
- a raw pipelined socket client: the wire ceiling.

    python bench/client_throughput.py [--ops 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gevent
from _common import KEYS, PLACEMENTS, placement, raw_pipelined, reference_daemon, table, write_keys

from xsactor import Client
from xsactor.protocol import Op, Packet
from xsactor.testing.reference import ReferenceInstall, ensure_install

CONCURRENCY = (1, 8, 64, 256)
RAW_WINDOWS = (64, 256, 1024)
RAW = "raw pipelined (ceiling)"
LIBXS = "libxenstore (xen.lowlevel.xs), sequential"
PYXS = "pyxs, sequential"

XS_BINDING = """
import sys, time
import xen.lowlevel.xs as xs
handle = xs.xs()
keys = sys.argv[2:]
ops = int(sys.argv[1])
start = time.perf_counter()
for i in range(ops):
    handle.read("", keys[i % len(keys)])
print(time.perf_counter() - start)
"""


def xsactor_rate(path: str, ops: int, greenlets: int) -> float:
    client = Client(path)
    client.read(KEYS[0])  # connected and warm
    per = ops // greenlets

    def worker(offset: int) -> None:
        read = client.read
        for i in range(per):
            read(KEYS[(offset + i) % len(KEYS)])

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(worker, g) for g in range(greenlets)], raise_error=True)
    elapsed = time.perf_counter() - start
    client.close()
    return per * greenlets / elapsed


def pyxs_rate(path: str, ops: int) -> float:
    from pyxs import Client as PyxsClient

    keys = [k.encode() for k in KEYS]
    with PyxsClient(unix_socket_path=path) as client:
        start = time.perf_counter()
        for i in range(ops):
            client.read(keys[i % len(keys)])
        return ops / (time.perf_counter() - start)


def libxenstore_rate(install: ReferenceInstall, path: str, ops: int) -> float:
    out = subprocess.run([sys.executable, "-c", XS_BINDING, str(ops), *KEYS],
                         env=install.client_env(path), check=True, capture_output=True,
                         text=True).stdout
    return ops / float(out.split()[-1])


def raw_rate(path: str, ops: int) -> float:
    """The best of a few pipeline depths: the most this daemon answers on one connection."""
    packets = [Packet.request(Op.READ, KEYS[i % len(KEYS)], req_id=i) for i in range(ops)]
    return max(ops / raw_pipelined(path, packets, window) for window in RAW_WINDOWS)


def measure(runs: int, ops: int) -> dict[str, float]:
    """Every peer against one C daemon, round-robin, best of ``runs`` each."""
    install = ensure_install()
    with reference_daemon() as daemon:
        path = daemon.socket_path
        write_keys(path)
        peers = {
            RAW: lambda: raw_rate(path, ops),
            LIBXS: lambda: libxenstore_rate(install, path, ops),
            PYXS: lambda: pyxs_rate(path, ops),
        }
        for n in CONCURRENCY:
            peers[f"xsactor, {n} greenlet{'s' if n > 1 else ''}"] = (
                lambda n=n: xsactor_rate(path, ops, n))
        # Round-robin: a burst of load on the machine hits every peer alike.
        rates = {name: 0.0 for name in peers}
        for _ in range(runs):
            for name, run in peers.items():
                rates[name] = max(rates[name], run())
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for where, cpus in PLACEMENTS.items():
        with placement(cpus):
            rates = measure(args.runs, args.ops)
        rows = [(name, f"{rate:,.0f}", f"{rate / rates[LIBXS]:.2f}x",
                 f"{rate / rates[PYXS]:.2f}x", f"{rate / rates[RAW]:.2f}x")
                for name, rate in rates.items()]
        print(f"\nREAD against C xenstored 4.17 (dom0 socket), {where}, "
              f"{args.ops} ops, best of {args.runs}")
        print(table(rows, ("client", "ops/s", "/ libxenstore", "/ pyxs", "/ raw ceiling")))


if __name__ == "__main__":
    main()
