"""XenStore message types and wire constants (``xen/io/xs_wire.h``, Xen 4.17)."""

from __future__ import annotations

import enum
import struct

HEADER = struct.Struct("<IIII")
"""type, req_id, tx_id, len: four little-endian u32."""

HEADER_SIZE = HEADER.size
PAYLOAD_MAX = 4096
"""XENSTORE_PAYLOAD_MAX: the largest payload of a request or a reply."""

XENBUS_PAYLOAD_MAX = 4096 - HEADER_SIZE
"""The Linux xenbus device buffers header and payload in one page."""

ABS_PATH_MAX = 3072
REL_PATH_MAX = 2048
"""XENSTORE_REL_PATH_MAX; also 4.17's effective limit for the part after a domain prefix."""

DOMID_FIRST_RESERVED = 0x7FF0
"""Xen's first reserved domain id: no domain has this id or a larger one."""
DOMID_SELF = DOMID_FIRST_RESERVED


class Op(enum.IntEnum):
    """Message types of Xen 4.17 (``enum xsd_sockmsg_type``)."""

    CONTROL = 0
    DIRECTORY = 1
    READ = 2
    GET_PERMS = 3
    WATCH = 4
    UNWATCH = 5
    TRANSACTION_START = 6
    TRANSACTION_END = 7
    INTRODUCE = 8
    RELEASE = 9
    GET_DOMAIN_PATH = 10
    WRITE = 11
    MKDIR = 12
    RM = 13
    SET_PERMS = 14
    WATCH_EVENT = 15
    ERROR = 16
    IS_DOMAIN_INTRODUCED = 17
    RESUME = 18
    SET_TARGET = 19
    RESTRICT = 20
    RESET_WATCHES = 21
    DIRECTORY_PART = 22


def op_name(op: int) -> str:
    """The name of a message type, or ``"OP<n>"`` for a number 4.17 does not know."""
    try:
        return Op(op).name
    except ValueError:
        return f"OP{op}"


PRIVILEGED_OPS = frozenset(
    {
        Op.CONTROL,
        Op.INTRODUCE,
        Op.RELEASE,
        Op.IS_DOMAIN_INTRODUCED,
        Op.RESUME,
        Op.SET_TARGET,
    }
)
"""Types a guest domain may not send (4.17 answers EACCES)."""
