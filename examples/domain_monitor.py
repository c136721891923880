"""A dom0 tool: follows domains as they come and go, from ``@introduceDomain`` and
``@releaseDomain`` (what xenconsoled and xl's reaper listen to).

    xsactor serve --socket /tmp/xs/socket &
    XENSTORED_PATH=/tmp/xs/socket python examples/domain_monitor.py --events 4

The special watches carry no domid: on each event the monitor re-reads ``/local/domain`` and
prints what changed.
"""

from __future__ import annotations

import argparse

import xsactor
from xsactor.logs import configure


def domains() -> dict[int, str]:
    out = {}
    for name in xsactor.list("/local/domain"):
        out[int(name)] = xsactor.read_str(f"/local/domain/{name}/name", default="?")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None,
                        help="stop after this many events (beyond the registration ones)")
    args = parser.parse_args()
    configure("warning")
    introduced = xsactor.watch_introduce_domain()
    released = xsactor.watch_release_domain()
    for token in (introduced, released):
        xsactor.next_event(token)  # the registration event
    known = domains()
    for domid, name in sorted(known.items()):
        print(f"running   {domid:5} {name}", flush=True)
    seen = 0
    while args.events is None or seen < args.events:
        path, _token = xsactor.next_event()
        seen += 1
        now = domains()
        for domid in sorted(now.keys() - known.keys()):
            print(f"new       {domid:5} {now[domid]}", flush=True)
        for domid in sorted(known.keys() - now.keys()):
            print(f"gone      {domid:5} {known[domid]}", flush=True)
        if now.keys() == known.keys():
            print(f"{path}: no domain came or went (a shutdown?)", flush=True)
        known = now
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
