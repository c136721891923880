"""XenStore errors as typed exceptions, named as they travel on the wire.

``ENOENT`` on the wire becomes :class:`ENOENT` here (a :class:`XenStoreError` and, where
Python has one, the matching builtin such as :class:`FileNotFoundError`), so callers can
write either ``except xsactor.ENOENT`` or ``except FileNotFoundError``.
"""

from __future__ import annotations

import errno as _errno
import os as _os

ERROR_NAMES: tuple[str, ...] = (
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
)
"""The table of ``xsd_errors`` in 4.17, in order. Anything else travels as EINVAL."""

BY_NAME: dict[str, type[XenStoreError]] = {}
"""The class of each wire name (each registers itself below)."""


class XenStoreError(Exception):
    """An error answered by xenstored (or refused locally with the same meaning)."""

    name: str = "EINVAL"
    errno: int = _errno.EINVAL
    wire: bytes = name.encode() + b"\0"
    """The reply payload that carries this error: the name and a NUL."""

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        self.path = path
        text = message or _os.strerror(self.errno)
        if path is not None:
            text = f"{text}: {path!r}"
        super().__init__(text)

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A class named after an errno (``ENOENT``) travels as that name; the first one
        defined is the class of that name."""
        super().__init_subclass__(**kwargs)
        if cls.__name__ in ERROR_NAMES:
            cls.name = cls.__name__
            cls.errno = getattr(_errno, cls.__name__)
            BY_NAME.setdefault(cls.name, cls)
        cls.wire = cls.name.encode() + b"\0"


# The classes that are also OSErrors ignore mypy's objection: OSError types ``errno`` as
# ``int | None``, ours is always an int.


class EINVAL(XenStoreError, ValueError):
    """Invalid argument: a malformed request, path or permission."""


class EACCES(XenStoreError, PermissionError):  # type: ignore[misc]
    """Permission denied (or a node's existence hidden from the caller)."""


class EEXIST(XenStoreError, FileExistsError):  # type: ignore[misc]
    """Already exists (a duplicate watch)."""


class EISDIR(XenStoreError, IsADirectoryError):  # type: ignore[misc]
    """Is a directory (never sent by 4.17)."""


class ENOENT(XenStoreError, FileNotFoundError):  # type: ignore[misc]
    """No such node, transaction, watch or domain."""


class ENOMEM(XenStoreError, MemoryError):
    """Out of memory; also the commit of a transaction marked failed."""


class ENOSPC(XenStoreError):
    """A quota exceeded: nodes, node size, permissions, transactions."""


class EIO(XenStoreError):
    """Input/output error."""


class ENOTEMPTY(XenStoreError):
    """Directory not empty (never sent by 4.17)."""


class ENOSYS(XenStoreError, NotImplementedError):
    """Unknown message type."""


class EROFS(XenStoreError):
    """Read-only (never sent by 4.17)."""


class EBUSY(XenStoreError):
    """Busy: a transaction started inside a transaction."""


class EAGAIN(XenStoreError):
    """A transaction conflicted: run it again."""


class EISCONN(XenStoreError):
    """Already connected (never sent by 4.17)."""


class E2BIG(XenStoreError):
    """Too big: a reply over 4096 bytes, or the watch quota."""


class EPERM(XenStoreError, PermissionError):  # type: ignore[misc]
    """Not permitted: an unprivileged caller changing a node's owner."""


def error_class(name: str | bytes) -> type[XenStoreError]:
    """The exception class for an error name; unknown names map to EINVAL (as libxenstore)."""
    if isinstance(name, bytes):
        name = name.rstrip(b"\0").decode("ascii", "replace")
    return BY_NAME.get(name, EINVAL)


def error_from_payload(payload: bytes, *, path: str | None = None) -> XenStoreError:
    """The exception carried by an ERROR reply's payload (``b"ENOENT\\0"``)."""
    return error_class(payload)(path=path)


class ProtocolError(Exception):
    """The byte stream broke the framing rules (bad length, truncated or garbled message)."""


class ConnectionLost(ConnectionError):
    """The connection to xenstored closed while a request was pending."""
