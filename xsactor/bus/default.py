"""The default connection and module-level API: ``xsactor.read(...)``, ``xsactor.watch(...)``.

The first call connects as libxenstore does (see :func:`xsactor.bus.transports.choose_endpoints`)
unless :func:`connect` was called first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .client import Client

__all__ = [
    "close",
    "commit",
    "connect",
    "default_client",
    "delete",
    "domid",
    "exists",
    "get_domain_path",
    "get_perms",
    "mkdir",
    "next_event",
    "read",
    "read_integer",
    "read_str",
    "rollback",
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

_default: Client | None = None


def connect(path: str | None = None, *, default: bool = True, **options: Any) -> Client:
    """Open a :class:`Client` (see its options) and, unless ``default=False``, make it the
    one the module-level functions use (closing the previous default)."""
    client = Client(path, **options)
    if default:
        set_default(client)
    return client


def set_default(client: Client | None) -> None:
    """Make ``client`` the default connection (closing the previous one)."""
    global _default
    previous, _default = _default, client
    if previous is not None and previous is not client:
        previous.close()


def default_client() -> Client:
    """The default connection, connecting on first use (or after it was closed)."""
    global _default
    if _default is None or _default.conn.closed:
        _default = Client()
    return _default


def close() -> None:
    """Close the default connection (the next call opens a new one)."""
    set_default(None)


def _delegate(name: str) -> Callable[..., Any]:
    method = getattr(Client, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(default_client(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"{method.__doc__}\n\n(On the default connection: see Client.{name}.)"
    call.__module__ = __name__
    return call


read = _delegate("read")
read_str = _delegate("read_str")
read_integer = _delegate("read_integer")
exists = _delegate("exists")
list = _delegate("list")  # xsactor.list; not in __all__ (it would shadow the builtin)
get_perms = _delegate("get_perms")
write = _delegate("write")
mkdir = _delegate("mkdir")
delete = _delegate("delete")
set_perms = _delegate("set_perms")
domid = _delegate("domid")
get_domain_path = _delegate("get_domain_path")
watch = _delegate("watch")
unwatch = _delegate("unwatch")
watch_introduce_domain = _delegate("watch_introduce_domain")
watch_release_domain = _delegate("watch_release_domain")
next_event = _delegate("next_event")
transaction = _delegate("transaction")
commit = _delegate("commit")
rollback = _delegate("rollback")
transact = _delegate("transact")
wait_for = _delegate("wait_for")
