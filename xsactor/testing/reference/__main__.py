"""``python -m xsactor.testing.reference``: fetch the reference daemon, or run one by hand.

- ``fetch [--cache-dir DIR] [--offline]``: download and unpack the Xen 4.17 packages, build
  the stub, print where everything is.
- ``serve --rundir DIR [--guest N]...``: run the C xenstored with dom0's tree and the given
  guests; print the sockets; stop on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ...daemon.toolstack import GuestSpec
from .daemon import ReferenceDaemon, ReferenceDaemonError
from .fetch import ReferenceUnavailable, ensure_install


def _fetch(args: argparse.Namespace) -> int:
    install = ensure_install(args.cache_dir, fetch=not args.offline)
    print(f"root:      {install.root}")
    print(f"xenstored: {install.xenstored}")
    print(f"clients:   {install.clients_dir}")
    print(f"python:    {install.python_dir}")
    print(f"libraries: {install.ld_library_path}")
    print(f"stub:      {install.stub}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    # Stop cleanly (daemon and bridge included) on SIGTERM, and on SIGINT even when started
    # in the background (which ignores it).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    install = ensure_install(args.cache_dir)
    with ReferenceDaemon(install, args.rundir, trace=args.trace) as daemon:
        print(f"dom0: {daemon.socket_path}")
        for domid in args.guest:
            print(f"dom{domid}: {daemon.add_guest(GuestSpec(domid))}")
        print(f"log:  {daemon.log_path}", flush=True)
        try:
            status = daemon.wait()
        except KeyboardInterrupt:
            return 0
        print(f"xenstored exited with status {status}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xsactor.testing.reference",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help="default: $XSACTOR_REFERENCE_DIR or "
                        "~/.cache/xsactor/xen-4.17")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download the packages and build the stub")
    fetch.add_argument("--offline", action="store_true", help="do not download anything")
    fetch.set_defaults(run=_fetch)
    serve = sub.add_parser("serve", help="run the daemon until Ctrl-C")
    serve.add_argument("--rundir", required=True)
    serve.add_argument("--guest", type=int, action="append", default=[], metavar="DOMID")
    serve.add_argument("--trace", action="store_true", help="xenstored -T rundir/trace.log")
    serve.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ReferenceUnavailable as exc:
        print(f"reference daemon unavailable: {exc.reason}", file=sys.stderr)
        return 2
    except ReferenceDaemonError as exc:
        print(f"reference daemon failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
