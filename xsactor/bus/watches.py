"""A bus connection's watch records, and the mailbox match for their events."""

from __future__ import annotations

from typing import Any

from ..actors.mailbox import Mailbox, Match

__all__ = ["Watch", "events_of"]


def events_of(token: Any = None) -> Match:
    """A mailbox match for the ``("watch_event", path, token)`` messages of ``token`` (of any
    token when None: a watch token is never None)."""
    def match(message: Any) -> bool:
        return (type(message) is tuple and len(message) == 3 and message[0] == "watch_event"
                and (token is None or message[2] == token))
    return match


class Watch:
    """A registered watch: its path and token as given, and the mailbox its events go to."""

    __slots__ = ("generation", "holder", "key", "mailbox", "path", "token", "wire_token")

    def __init__(self, path: str, token: Any, wire_token: bytes, key: tuple[str, bytes],
                 mailbox: Mailbox) -> None:
        self.path = path
        self.token = token
        self.wire_token = wire_token
        self.key = key
        self.mailbox = mailbox
        self.generation = 0
        self.holder: Any = None  # the subscriber process (its pid) or greenlet

    def __repr__(self) -> str:
        return f"<Watch {self.path!r} token={self.token!r}>"
