"""Memory with many guest domains: the embedded daemon beside the C xenstored 4.17.

Each guest is built in xl's layout (``xsactor.daemon.toolstack``), introduced, connected,
and registers 10 watches (as a PV guest's frontends and agents do). The daemon's RSS is
printed as domains are added (per-domain growth for each step: linear if it stays flat),
after all are destroyed (RELEASE, then xl's removal of their trees), and after a second
round of the same domains (what the first round left behind shows as growth).

    python bench/daemon_domains.py [--domains 1000] [--steps 4]

It takes minutes at 1,000 domains, mostly on the C side (its cost per domain added or
destroyed grows with the number of domains).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PLACEMENTS, daemon_pid, embedded_daemon, placement, reference_daemon, table

from xsactor.daemon.toolstack import GuestSpec, replaced_paths
from xsactor.protocol import Op, Packet
from xsactor.protocol.errors import ENOENT
from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import rss_kb
from xsactor.testing.wire import WireClient

FIRST_DOMID = 10
WATCHED = ("control/shutdown", "control/sysrq", "memory/target", "device", "device/vif",
           "device/vbd", "console", "data", "attr", "@releaseDomain")


def add_guests(daemon: DaemonUnderTest, domids: range, guests: dict[int, WireClient]) -> None:
    for domid in domids:
        daemon.add_guest(domid)
        guest = guests[domid] = daemon.guest(domid, timeout=60)
        packets = [Packet.request(Op.WATCH, path, f"t{n}", req_id=n)
                   for n, path in enumerate(WATCHED)]
        guest.send(*packets)
        for packet in packets:
            if guest.reply_to(packet.req_id).is_error:
                raise RuntimeError(f"WATCH failed for domain {domid}")
        guest.events.clear()


def destroy_guests(daemon: DaemonUnderTest, guests: dict[int, WireClient]) -> None:
    with daemon.dom0(timeout=60) as dom0:
        for domid, guest in list(guests.items()):
            dom0.release(domid)
            for path in replaced_paths(GuestSpec(domid)):  # xl's part of destroy
                with contextlib.suppress(ENOENT):
                    dom0.rm(path)
            guest.close()
            del guests[domid]
        dom0.read("/local/domain/0/name")  # a round trip: everything before it is done


def measure(start: Callable[[], AbstractContextManager[DaemonUnderTest]], count: int,
            steps: int) -> dict[str, float]:
    """RSS (MB) at each step of domains, after destroying them, after a second round."""
    out: dict[str, float] = {}
    guests: dict[int, WireClient] = {}
    with start() as daemon:
        pid = daemon_pid(daemon)
        # one domain first: xl's first guest makes /vm and /libxl, which stay
        add_guests(daemon, range(FIRST_DOMID, FIRST_DOMID + 1), guests)
        destroy_guests(daemon, guests)
        out["base"] = rss_kb(pid) / 1024
        done = 0
        for step in range(1, steps + 1):
            target = count * step // steps
            add_guests(daemon, range(FIRST_DOMID + done, FIRST_DOMID + target), guests)
            done = target
            out[f"n{target}"] = rss_kb(pid) / 1024
        destroy_guests(daemon, guests)
        out["destroyed"] = rss_kb(pid) / 1024
        add_guests(daemon, range(FIRST_DOMID, FIRST_DOMID + count), guests)
        out["again"] = rss_kb(pid) / 1024
        destroy_guests(daemon, guests)
        out["destroyed again"] = rss_kb(pid) / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    figures = {}
    with placement(PLACEMENTS["two cores"]):
        for name, start in (("C", reference_daemon), ("embedded", embedded_daemon)):
            figures[name] = measure(start, args.domains, args.steps)
    emb, ref = figures["embedded"], figures["C"]
    rows = []
    previous, previous_n = "base", 0
    for step in range(1, args.steps + 1):
        n = args.domains * step // args.steps
        key = f"n{n}"
        per_e = (emb[key] - emb[previous]) * 1024 / (n - previous_n)
        per_c = (ref[key] - ref[previous]) * 1024 / (n - previous_n)
        rows.append((f"{n:,} domains: RSS MB (KB per domain added)",
                     f"{emb[key]:.1f} ({per_e:.1f})", f"{ref[key]:.1f} ({per_c:.1f})",
                     f"{per_e / per_c:.2f}x" if per_c > 0 else "-"))
        previous, previous_n = key, n
    for key, label in (("destroyed", "all destroyed: RSS MB"),
                       ("again", f"{args.domains:,} domains again: RSS MB"),
                       ("destroyed again", "all destroyed again: RSS MB")):
        rows.append((label, f"{emb[key]:.1f}", f"{ref[key]:.1f}", f"{emb[key] / ref[key]:.2f}x"))
    print(f"\ndaemon memory, guests in xl's layout with {len(WATCHED)} watches each "
          f"(baseline after one guest: embedded {emb['base']:.1f} MB, C {ref['base']:.1f} MB)")
    print(table(rows, ("", "embedded", "C xenstored", "embedded / C")), flush=True)


if __name__ == "__main__":
    main()
