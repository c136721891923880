"""Client-side errors that are not XenStore replies (those are ``xsactor.protocol.errors``)."""

from __future__ import annotations

from ..protocol.errors import ConnectionLost

__all__ = ["BusClosed", "ConnectionLost", "DomainGone", "RequestTimeout", "WaitTimeout"]


class RequestTimeout(TimeoutError):
    """No reply arrived within the request's timeout (the request is forgotten)."""


class WaitTimeout(TimeoutError):
    """``wait_for`` gave up: the condition did not hold within its timeout."""


class BusClosed(ConnectionLost):
    """The connection was closed by its owner (``close()``); no reconnect will follow."""


class DomainGone(ConnectionLost):
    """The connection's domain was destroyed (its socket is gone): no reconnect will follow."""
