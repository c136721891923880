"""Actors: mailboxes, processes (links, monitors, exit signals, names) and servers."""

from .mailbox import Mailbox, ReceiveTimeout, bind_mailbox, mailbox_of
from .process import (
    ANY,
    BadArg,
    Exit,
    ExitError,
    NoProc,
    Pid,
    Ref,
    Shutdown,
    add_exit_hook,
    demonitor,
    exit,
    is_alive,
    link,
    monitor,
    process_info,
    receive,
    register,
    remove_exit_hook,
    self_pid,
    send,
    spawn,
    spawn_link,
    spawn_monitor,
    trap_exit,
    unlink,
    unregister,
    whereis,
)

__all__ = [
    "ANY", "BadArg", "Exit", "ExitError", "Mailbox", "NoProc", "Pid", "ReceiveTimeout", "Ref",
    "Shutdown", "add_exit_hook", "bind_mailbox", "demonitor", "exit", "is_alive", "link",
    "mailbox_of", "monitor", "process_info", "receive", "register", "remove_exit_hook",
    "self_pid", "send", "spawn", "spawn_link", "spawn_monitor", "trap_exit", "unlink",
    "unregister", "whereis",
]
