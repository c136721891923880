"""Actors: mailboxes now; processes and supervisors are built on the same mailboxes."""

from .mailbox import Mailbox, ReceiveTimeout, bind_mailbox, mailbox_of

__all__ = ["Mailbox", "ReceiveTimeout", "bind_mailbox", "mailbox_of"]
