"""The embedded xenstored: a XenStore daemon in pure Python on gevent that answers as Xen
4.17's C xenstored does.

- :class:`Daemon` (``server``): sockets and greenlets; ``Daemon(DaemonConfig(...)).start()``.
- :class:`XenStore` (``core``): the request engine (tree, domains, watches, transactions).
- ``toolstack``: what xl / xen-init-dom0 write (pure data, also used by the test harness).

Exports are loaded lazily so that importing :mod:`xsactor.daemon.toolstack` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import DaemonConfig
    from .core import XenStore
    from .quota import Quotas
    from .server import Daemon

__all__ = ["Daemon", "DaemonConfig", "Quotas", "XenStore"]

_EXPORTS = {"Daemon": "server", "DaemonConfig": "config", "Quotas": "quota",
            "XenStore": "core"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
