"""The reference daemon: Xen 4.17's C xenstored, run as a user process without a hypervisor.

- :func:`ensure_install` fetches the Debian packages and builds the hypervisor stub;
- :class:`ReferenceDaemon` runs the daemon, boots dom0's tree, adds guests whose rings are
  served as unix sockets, and drives domain states (shutdown, crash, death).

``python -m xsactor.testing.reference fetch`` does the fetch from the command line.
"""

from .daemon import DOMAIN_STATES, ReferenceDaemon, ReferenceDaemonError
from .fetch import ReferenceInstall, ReferenceUnavailable, ensure_install

__all__ = [
    "DOMAIN_STATES",
    "ReferenceDaemon",
    "ReferenceDaemonError",
    "ReferenceInstall",
    "ReferenceUnavailable",
    "ensure_install",
]
