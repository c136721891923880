"""The XenStore wire protocol, pure: message types, packets, errors, paths, permissions.

Shared by the client (``xsactor.bus``) and the embedded daemon (``xsactor.daemon``).
Nothing in this package does I/O.
"""

from . import errors, paths, perms
from .errors import ConnectionLost, ProtocolError, XenStoreError, error_class
from .ops import HEADER_SIZE, PAYLOAD_MAX, XENBUS_PAYLOAD_MAX, Op, op_name
from .packets import Decoder, Packet, join_args, split_args
from .perms import Access, Perm, format_acl, parse_acl

__all__ = [
    "HEADER_SIZE",
    "PAYLOAD_MAX",
    "XENBUS_PAYLOAD_MAX",
    "Access",
    "ConnectionLost",
    "Decoder",
    "Op",
    "Packet",
    "Perm",
    "ProtocolError",
    "XenStoreError",
    "error_class",
    "errors",
    "format_acl",
    "join_args",
    "op_name",
    "parse_acl",
    "paths",
    "perms",
    "split_args",
]
