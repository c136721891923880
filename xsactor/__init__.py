"""xsactor: XenStore for Python guest agents, in the actor style of Erlang.

The module-level functions work on a default connection, opened on first use as libxenstore
would (``$XENSTORED_PATH``, ``$XENSTORED_RUNDIR/socket``, then ``/dev/xen/xenbus``)::

    import xsactor
    xsactor.write("data/greeting", "hello")
    token = xsactor.watch("control/shutdown")
    path, token = xsactor.next_event(token)

``xsactor.connect(path)`` picks the endpoint explicitly; :class:`Client` gives independent
connections.
"""

__version__ = "0.1.0"

from .actors.mailbox import Mailbox, ReceiveTimeout, mailbox_of
from .bus import (
    BusClosed,
    Client,
    Connection,
    RequestTimeout,
    State,
    TransactionId,
    WaitTimeout,
)
from .bus.default import (
    close,
    commit,
    connect,
    default_client,
    delete,
    domid,
    exists,
    get_domain_path,
    get_perms,
    mkdir,
    next_event,
    read,
    read_integer,
    read_str,
    rollback,
    set_default,
    set_perms,
    transact,
    transaction,
    unwatch,
    wait_for,
    watch,
    watch_introduce_domain,
    watch_release_domain,
    write,
)
from .bus.default import list as list  # not star-exported: it would shadow the builtin
from .protocol.errors import (
    E2BIG,
    EACCES,
    EAGAIN,
    EBUSY,
    EEXIST,
    EINVAL,
    EIO,
    EISCONN,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    ENOSYS,
    ENOTEMPTY,
    EPERM,
    EROFS,
    ConnectionLost,
    ProtocolError,
    XenStoreError,
)
from .protocol.perms import Perm
from .runner import run_agent

__all__ = [
    "E2BIG",
    "EACCES",
    "EAGAIN",
    "EBUSY",
    "EEXIST",
    "EINVAL",
    "EIO",
    "EISCONN",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "ENOSYS",
    "ENOTEMPTY",
    "EPERM",
    "EROFS",
    "BusClosed",
    "Client",
    "Connection",
    "ConnectionLost",
    "Mailbox",
    "Perm",
    "ProtocolError",
    "ReceiveTimeout",
    "RequestTimeout",
    "State",
    "TransactionId",
    "WaitTimeout",
    "XenStoreError",
    "__version__",
    "close",
    "commit",
    "connect",
    "default_client",
    "delete",
    "domid",
    "exists",
    "get_domain_path",
    "get_perms",
    "mailbox_of",
    "mkdir",
    "next_event",
    "read",
    "read_integer",
    "read_str",
    "rollback",
    "run_agent",
    "set_default",
    "set_perms",
    "transact",
    "transaction",
    "unwatch",
    "wait_for",
    "watch",
    "watch_introduce_domain",
    "watch_release_domain",
    "write",
]
