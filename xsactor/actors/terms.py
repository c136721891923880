"""The terms processes exchange: pids, references, exit reasons and receive patterns.

Exit reasons are OTP's: the strings ``"normal"``, ``"shutdown"``, ``"kill"``, ``"killed"``,
``"noproc"``; :class:`Shutdown` for ``{shutdown, Term}``; the exception for a crash; any other
term. :class:`Exit` ends the process that raises it (Erlang's ``exit/1``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from gevent import GreenletExit

__all__ = [
    "ANY", "KILL", "KILLED", "NOPROC", "NORMAL", "SHUTDOWN", "BadArg", "Exit", "ExitError",
    "NoProc", "Pid", "Ref", "Shutdown", "is_normal_reason", "is_reason", "matcher",
]

_ids = itertools.count(1)
"""Pids and references share one counter (both print their number)."""

NORMAL = "normal"
SHUTDOWN = "shutdown"
KILL = "kill"
KILLED = "killed"
NOPROC = "noproc"


# -- identifiers -----------------------------------------------------------------------------
class Pid:
    """A process identifier: hashable, compared by identity, printed like ``<0.42.0>``."""

    __slots__ = ("_proc", "id")

    def __init__(self, proc: Any) -> None:
        self._proc = proc  # the process record (xsactor.actors.process)
        self.id = next(_ids)

    def __repr__(self) -> str:
        return f"<0.{self.id}.0>"


class Ref:
    """A unique reference (monitors, calls), printed like ``#Ref<0.7>``."""

    __slots__ = ("id",)

    def __init__(self) -> None:
        self.id = next(_ids)

    def __repr__(self) -> str:
        return f"#Ref<0.{self.id}>"


class Shutdown:
    """The exit reason ``{shutdown, term}``: a stop that is not an error (transient children
    are not restarted)."""

    __slots__ = ("term",)

    def __init__(self, term: Any) -> None:
        self.term = term

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shutdown) and other.term == self.term

    def __hash__(self) -> int:
        return hash(("shutdown", self.term))

    def __repr__(self) -> str:
        return f"Shutdown({self.term!r})"


class Exit(GreenletExit):
    """Raised in a process to end it with ``reason`` (Erlang's ``exit(Reason)``); thrown into
    the greenlet of a process killed by an exit signal. A ``GreenletExit``, so ``except
    Exception`` does not swallow it and gevent does not print it."""

    def __init__(self, reason: Any = NORMAL) -> None:
        super().__init__(reason)
        self.reason = reason


class ExitError(Exception):
    """An error that carries an exit reason (``.reason``), like Erlang's ``exit`` exceptions
    raised to a caller."""

    def __init__(self, reason: Any, message: str | None = None) -> None:
        super().__init__(message if message is not None else reason)
        self.reason = reason


class NoProc(ExitError, LookupError):
    """The process does not exist (Erlang's ``noproc``)."""

    def __init__(self, what: Any = None) -> None:
        super().__init__(NOPROC, f"noproc: {what!r}")


class BadArg(ValueError):
    """A call Erlang answers with ``badarg`` (a taken name, an unknown name, ...)."""


class _Any:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""In a :func:`~.process.receive` pattern: matches any value."""


def is_reason(reason: Any, atom: str) -> bool:
    """Whether ``reason`` is the atom ``atom`` (a str; other terms never equal it)."""
    return type(reason) is str and reason == atom


def is_normal_reason(reason: Any) -> bool:
    """``normal``, ``shutdown`` or :class:`Shutdown`: an end that is not an error (not
    logged by servers; a transient child is not restarted)."""
    return (is_reason(reason, NORMAL) or is_reason(reason, SHUTDOWN)
            or isinstance(reason, Shutdown))


# -- patterns ------------------------------------------------------------------------------
def _matches(pattern: Any, value: Any) -> bool:
    if pattern is ANY:
        return True
    if isinstance(pattern, type):
        return isinstance(value, pattern)
    if type(pattern) is tuple:
        return (type(value) is tuple and len(value) == len(pattern)
                and all(_matches(p, v) for p, v in zip(pattern, value, strict=True)))
    return bool(pattern == value)


def matcher(pattern: Any) -> Callable[[Any], bool] | None:
    """A predicate for ``pattern``: None (any message), a predicate, a type (isinstance), or a
    value/tuple pattern in which :data:`ANY` matches anything and types match instances."""
    if pattern is None:
        return None
    if isinstance(pattern, type):
        return lambda message: isinstance(message, pattern)
    if callable(pattern):
        return pattern
    return lambda message: _matches(pattern, message)
