"""The client side: transports, the connection-owning bus, and the XenStore API.

- :mod:`.transports`: the daemon's unix socket and the xenbus device, chosen as libxenstore.
- :mod:`.connection`: :class:`Connection`, one owner greenlet per connection (pipelined
  requests, watch routing into mailboxes, reconnect).
- :mod:`.device`: the write order Linux's xenbus device needs (WATCH/UNWATCH alone).
- :mod:`.client`: :class:`Client`, the API (read, write, watch, transact, wait_for, ...).
- :mod:`.default`: the default connection behind ``xsactor.read(...)`` and friends.
"""

from .client import Client, TransactionId
from .connection import Connection, State, Watch
from .errors import BusClosed, DomainGone, RequestTimeout, WaitTimeout
from .transports import (
    DeviceTransport,
    Endpoint,
    SocketTransport,
    Transport,
    choose_endpoints,
    open_transport,
)

__all__ = [
    "BusClosed",
    "Client",
    "Connection",
    "DeviceTransport",
    "DomainGone",
    "Endpoint",
    "RequestTimeout",
    "SocketTransport",
    "State",
    "TransactionId",
    "Transport",
    "WaitTimeout",
    "Watch",
    "choose_endpoints",
    "open_transport",
]
