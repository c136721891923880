"""A guest agent for a Xen domU: answers the toolstack and publishes facts under ``data/``.

Run it in a guest (it finds ``/dev/xen/xenbus`` as libxenstore does), or against the embedded
daemon on any machine::

    xsactor serve --socket /tmp/xs/socket --guest 5=/tmp/xs/guest5 &
    XENSTORED_PATH=/tmp/xs/guest5 python examples/guest_agent.py --dry-run

What it does, all driven by watch events in its own mailbox:

- ``memory/target`` (KiB, set by ``xl mem-set``): acknowledges under ``data/memory``;
- ``control/shutdown`` (``poweroff``, ``reboot``, ``halt``, set by ``xl shutdown``): clears the
  request, as the Linux kernel does, and runs the matching command (``--dry-run``: only logs);
- every ``--interval`` seconds: publishes uptime and load average under ``data/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess

import structlog

import xsactor
from xsactor.logs import configure

log = structlog.get_logger("guest_agent")

ACTIONS = {"poweroff": ["systemctl", "poweroff"], "halt": ["systemctl", "halt"],
           "reboot": ["systemctl", "reboot"]}


def publish_facts() -> None:
    with open("/proc/uptime") as uptime:
        seconds = uptime.read().split()[0]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def publish(tid: int) -> None:  # both or neither: readers never see a torn pair
        xsactor.write("data/uptime", seconds, tid)
        xsactor.write("data/loadavg", load, tid)

    xsactor.transact(publish)


def obey(request: str, dry_run: bool) -> bool:
    """Carry out a shutdown request; True when the agent should stop."""
    command = ACTIONS.get(request)
    if command is None:
        log.warning("unknown shutdown request ignored", request=request)
        return False
    log.info("shutdown requested", request=request, command=" ".join(command), dry_run=dry_run)
    if not dry_run:
        subprocess.run(command, check=False)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="log shutdowns, do not run them")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between facts")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    configure(args.log_level)

    log.info("agent starting", domid=xsactor.domid())
    xsactor.write("control/feature-poweroff", "1")
    xsactor.write("control/feature-reboot", "1")
    xsactor.watch("memory/target", "memory")
    xsactor.watch("control/shutdown", "shutdown")
    mailbox = xsactor.mailbox_of()
    publish_facts()
    xsactor.write("data/agent", "running")
    while True:
        try:
            message = mailbox.receive(timeout=args.interval)
        except xsactor.ReceiveTimeout:
            publish_facts()
            continue
        match message:
            case ("watch_event", _, "memory"):
                target = xsactor.read_integer("memory/target", default=None)
                if target is not None:
                    log.info("memory target", kib=target)
                    xsactor.write("data/memory/target-ack", target)
            case ("watch_event", _, "shutdown"):
                request = xsactor.read_str("control/shutdown", default="")
                if request:
                    xsactor.write("control/shutdown", "")
                    if obey(request, args.dry_run):
                        xsactor.write("data/agent", f"stopped: {request}")
                        return 0
            case ("bus_state", _, state):
                log.info("xenstore connection", state=state)


if __name__ == "__main__":
    raise SystemExit(main())
