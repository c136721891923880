"""Client throughput against the C xenstored 4.17, all peers in one run.

Peers, all doing READ of small keys:
- xsactor's client with 1, 8, 64 and 256 concurrent greenlets (one connection, pipelined);
- pyxs (PyPI), sequential;
- libxenstore through its Python binding ``xen.lowlevel.xs``, sequential (in a subprocess,
  since it needs the reference install's libraries);
- a raw pipelined socket client: the wire ceiling.

Then, in a guest: the embedded daemon (a subprocess) and the fake ``/dev/xen/xenbus`` of
``xsactor.testing.xenbus_device`` in front of the guest's socket, reading the guest's own keys:
- xsactor through the device, 1, 64 and 256 greenlets (WATCH/UNWATCH rules, writer thread);
- a client keeping one request in flight through the same device (libxenstore's discipline
  in ``xs.c``: write the request, read until its reply), in a thread;
- xsactor on the guest's socket, 1, 64 and 256 greenlets.
The device's rules must not cost reads their pipelining: compare the device's greenlet rows
with the one-in-flight row (both through the same fake kernel) and with the socket's.

    python bench/client_throughput.py [--ops 20000] [--runs 5] [--device-only]
"""

from __future__ import annotations

import argparse
import functools
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gevent
from _common import (
    KEYS,
    PLACEMENTS,
    VALUE,
    embedded_daemon,
    placement,
    raw_pipelined,
    reference_daemon,
    table,
    write_keys,
)

from xsactor import Client
from xsactor.protocol import Decoder, Op, Packet
from xsactor.testing.reference import ReferenceInstall, ensure_install
from xsactor.testing.xenbus_device import XenbusFile, XenbusKernel

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


def xsactor_rate(path: str | None, ops: int, greenlets: int, keys: list[str] = KEYS,
                 kernel: XenbusKernel | None = None) -> float:
    """READs of ``keys`` from ``greenlets`` greenlets on one client: on ``path``, or on a new
    file of ``kernel``'s device."""
    client = Client(path) if kernel is None else Client(connector=kernel.transport)
    client.read(keys[0])  # connected and warm
    per = ops // greenlets

    def worker(offset: int) -> None:
        read = client.read
        for i in range(per):
            read(keys[(offset + i) % len(keys)])

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


def one_in_flight_rate(kernel: XenbusKernel, ops: int, keys: list[str]) -> float:
    """libxenstore's discipline (xs.c's xs_talkv): one request, wait for its reply, next;
    blocking calls in a thread of their own, as a C program would."""
    file = kernel.open()
    packets = [Packet.request(Op.READ, keys[i % len(keys)], req_id=i).encode()
               for i in range(ops)]
    elapsed: list[float] = []

    def run(f: XenbusFile) -> None:
        decoder = Decoder()
        start = time.perf_counter()
        for message in packets:
            f.write(message)
            while not (replies := _read_some(f, decoder)):
                pass
            if replies[0].op != Op.READ:
                raise RuntimeError(f"{replies[0]!r} in benchmark")
        elapsed.append(time.perf_counter() - start)
    thread = threading.Thread(target=run, args=(file,))
    thread.start()
    thread.join()
    file.close()
    return ops / elapsed[0]


def _read_some(file: XenbusFile, decoder: Decoder) -> list[Packet]:
    select.select([file.fileno()], [], [])
    try:
        return decoder.feed(file.read(65536))
    except BlockingIOError:
        return []


DEVICE_GREENLETS = (1, 64, 256)
ONE_IN_FLIGHT = "one request in flight (xs.c), device"


def device_name(n: int, where: str) -> str:
    return f"xsactor, {n} greenlet{'s' if n > 1 else ''}, {where}"


def measure_device(runs: int, ops: int) -> dict[str, float]:
    """Through the fake device and on the guest's socket, one embedded daemon, best of
    ``runs`` each, round-robin."""
    with embedded_daemon() as daemon:
        guest = daemon.add_guest(5)
        keys = [f"data/k{i}" for i in range(len(KEYS))]
        with Client(guest) as setup:
            for key in keys:
                setup.write(key, VALUE)
        kernel = XenbusKernel(guest)
        try:
            peers = {ONE_IN_FLIGHT: lambda: one_in_flight_rate(kernel, ops, keys)}
            for n in DEVICE_GREENLETS:
                peers[device_name(n, "device")] = (
                    functools.partial(xsactor_rate, None, ops, n, keys, kernel))
            for n in DEVICE_GREENLETS:
                peers[device_name(n, "socket")] = functools.partial(xsactor_rate, guest, ops,
                                                                      n, keys)
            rates = {name: 0.0 for name in peers}
            for _ in range(runs):
                for name, run in peers.items():
                    rates[name] = max(rates[name], run())
            if kernel.violations:
                raise RuntimeError(f"the device's rules were broken: {kernel.violations}")
        finally:
            kernel.close()
    return rates


def print_device(rates: dict[str, float], where: str, ops: int, runs: int) -> None:
    rows = []
    for name, rate in rates.items():
        n = next((n for n in DEVICE_GREENLETS if name == device_name(n, "device")), None)
        on_socket = rates[device_name(n, "socket")] if n else None
        rows.append((name, f"{rate:,.0f}", f"{rate / rates[ONE_IN_FLIGHT]:.2f}x",
                     f"{rate / on_socket:.2f}x" if on_socket else ""))
    print(f"\nREAD in a guest: fake /dev/xen/xenbus vs the guest's socket (embedded daemon), "
          f"{where}, {ops} ops, best of {runs}")
    print(table(rows, ("client", "ops/s", "/ one in flight", "device / socket")))


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
                functools.partial(xsactor_rate, path, ops, n))
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
    parser.add_argument("--device-only", action="store_true",
                        help="only the guest's table (device and guest socket)")
    args = parser.parse_args()
    for where, cpus in PLACEMENTS.items():
        with placement(cpus):
            device = measure_device(args.runs, args.ops)
            rates = {} if args.device_only else measure(args.runs, args.ops)
        print_device(device, where, args.ops, args.runs)
        if args.device_only:
            continue
        rows = [(name, f"{rate:,.0f}", f"{rate / rates[LIBXS]:.2f}x",
                 f"{rate / rates[PYXS]:.2f}x", f"{rate / rates[RAW]:.2f}x")
                for name, rate in rates.items()]
        print(f"\nREAD against C xenstored 4.17 (dom0 socket), {where}, "
              f"{args.ops} ops, best of {args.runs}")
        print(table(rows, ("client", "ops/s", "/ libxenstore", "/ pyxs", "/ raw ceiling")))


if __name__ == "__main__":
    main()
