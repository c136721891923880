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


class XenStoreError(Exception):
    """An error answered by xenstored (or refused locally with the same meaning)."""

    name: str = "EINVAL"
    errno: int = _errno.EINVAL

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        self.path = path
        text = message or _os.strerror(self.errno)
        if path is not None:
            text = f"{text}: {path!r}"
        super().__init__(text)

    @property
    def wire(self) -> bytes:
        """The reply payload that carries this error: the name and a NUL."""
        return self.name.encode() + b"\0"


def _define(name: str, *bases: type[BaseException]) -> type[XenStoreError]:
    doc = f"XenStore's {name} ({_errno.errorcode.get(getattr(_errno, name), name)})."
    cls = type(name, (XenStoreError, *bases), {"name": name, "errno": getattr(_errno, name),
                                                 "__doc__": doc, "__module__": __name__})
    return cls


EINVAL = _define("EINVAL", ValueError)
EACCES = _define("EACCES", PermissionError)
EEXIST = _define("EEXIST", FileExistsError)
EISDIR = _define("EISDIR", IsADirectoryError)
ENOENT = _define("ENOENT", FileNotFoundError)
ENOMEM = _define("ENOMEM", MemoryError)
ENOSPC = _define("ENOSPC")
EIO = _define("EIO")
ENOTEMPTY = _define("ENOTEMPTY")
ENOSYS = _define("ENOSYS", NotImplementedError)
EROFS = _define("EROFS")
EBUSY = _define("EBUSY")
EAGAIN = _define("EAGAIN")
EISCONN = _define("EISCONN")
E2BIG = _define("E2BIG")
EPERM = _define("EPERM", PermissionError)

BY_NAME: dict[str, type[XenStoreError]] = {
    cls.name: cls
    for cls in (EINVAL, EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY,
                ENOSYS, EROFS, EBUSY, EAGAIN, EISCONN, E2BIG, EPERM)
}


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
