"""Child specifications and supervisor flags: what a supervisor supervises, as data.

A :class:`ChildSpec` is OTP's child spec map (``id``, ``start``, ``restart``, ``shutdown``,
``type``, ``significant``) plus two agent extensions: ``backoff`` (a delay before restarts,
opt-in) and ``watches`` (XenStore watches registered for every new instance). The actor layer
never imports the bus: watches are handed to the *watch registrar* the program installs
(:func:`xsactor.actors.supervisor.set_watch_registrar`; the runner installs the bus's).

:class:`SupFlags` holds the supervisor's flags (``strategy``, ``intensity``, ``period``,
``auto_shutdown``) plus the restart ``gate`` (see :class:`RestartGate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .restarts import Backoff

__all__ = [
    "AutoShutdown",
    "ChildSpec",
    "ChildType",
    "Restart",
    "RestartGate",
    "ShutdownSpec",
    "Strategy",
    "SupFlags",
    "child_spec",
]

Restart = Literal["permanent", "transient", "temporary"]
ChildType = Literal["worker", "supervisor"]
ShutdownSpec = float | Literal["brutal_kill", "infinity"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
AutoShutdown = Literal["never", "any_significant", "all_significant"]

RESTARTS = ("permanent", "transient", "temporary")
TYPES = ("worker", "supervisor")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
AUTO_SHUTDOWNS = ("never", "any_significant", "all_significant")

DEFAULT_WORKER_SHUTDOWN = 5.0
"""OTP's default shutdown for a worker (5000 ms); a supervisor's is ``"infinity"``."""


@dataclass(frozen=True)
class ChildSpec:
    """One child: how to start it, when to restart it, how to stop it.

    - ``start()`` runs in the supervisor; it creates the child *linked to the caller* (e.g.
      ``lambda: spawn_link(fn)`` or ``lambda: server.start_link(...)``) and returns its
      :class:`~xsactor.actors.process.Pid`, or ``"ignore"`` (no process, spec kept). Raising,
      or returning anything else, is a failed start.
    - ``restart``: ``permanent`` (always), ``transient`` (unless it ended ``normal``,
      ``shutdown`` or ``Shutdown(term)``), ``temporary`` (never; its spec is then deleted).
    - ``shutdown``: ``"brutal_kill"``, seconds, or ``"infinity"``; None picks OTP's default
      (5 s for a worker, infinity for a supervisor).
    - ``significant``: its own exit may shut the supervisor down (``auto_shutdown``); only for
      transient and temporary children.
    - ``backoff``: wait before restarting this child (None: restart at once, as OTP).
    - ``watches``: ``(path, token)`` pairs registered for each new instance, into its mailbox,
      before the supervisor goes on (needs a watch registrar); any sequence, kept as a tuple.
    """

    id: Hashable
    start: Callable[[], Any]
    restart: Restart = "permanent"
    shutdown: ShutdownSpec | None = None
    type: ChildType = "worker"
    significant: bool = False
    backoff: Backoff | None = None
    watches: Sequence[tuple[str, Any]] = ()  # kept as a tuple (see __post_init__)

    def __post_init__(self) -> None:
        if not callable(self.start):
            raise ValueError(f"child {self.id!r}: start must be callable, not {self.start!r}")
        if self.restart not in RESTARTS:
            raise ValueError(f"child {self.id!r}: restart must be one of {RESTARTS}")
        if self.type not in TYPES:
            raise ValueError(f"child {self.id!r}: type must be one of {TYPES}")
        if self.shutdown is None:
            default = DEFAULT_WORKER_SHUTDOWN if self.type == "worker" else "infinity"
            object.__setattr__(self, "shutdown", default)
        elif self.shutdown not in ("brutal_kill", "infinity") and (
                isinstance(self.shutdown, bool) or not isinstance(self.shutdown, int | float)
                or self.shutdown < 0):
            raise ValueError(f"child {self.id!r}: shutdown must be 'brutal_kill', "
                             f"'infinity' or seconds >= 0, not {self.shutdown!r}")
        if self.significant and self.restart == "permanent":
            raise ValueError(f"child {self.id!r}: a permanent child cannot be significant")
        watches = tuple((str(path), token) for path, token in self.watches)
        object.__setattr__(self, "watches", watches)

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds to wait after ``shutdown`` before killing; None for infinity or brutal_kill."""
        return self.shutdown if isinstance(self.shutdown, int | float) else None

    def describe(self) -> dict[str, Any]:
        """The spec as OTP's ``get_childspec`` map shows it (start as its repr)."""
        return {"id": self.id, "start": self.start, "restart": self.restart,
                "shutdown": self.shutdown, "type": self.type,
                "significant": self.significant}


def child_spec(spec: ChildSpec | Mapping[str, Any]) -> ChildSpec:
    """A :class:`ChildSpec` from itself or from an OTP-style map ``{"id": ..., "start": ...}``."""
    if isinstance(spec, ChildSpec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"a child spec is a ChildSpec or a mapping, not {spec!r}")
    missing = {"id", "start"} - set(spec)
    if missing:
        raise ValueError(f"child spec {dict(spec)!r} misses {sorted(missing)}")
    known = {f.name for f in dataclasses.fields(ChildSpec)}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"child spec {spec['id']!r}: unknown keys {sorted(unknown)}")
    return ChildSpec(**spec)


class RestartGate:
    """Decides, for agents, which deaths count toward intensity and when restarts may run.

    The default gate is OTP's behaviour: every death counts, restarts run at once. A program
    plugs in its own (the runner plugs one that follows the bus's connection state); the
    supervisor calls:

    - ``counts(child_id, reason)``: False when this death must not use up the intensity
      (e.g. the child died of a lost connection while the bus reconnects);
    - ``is_open()``: False while restarts must wait; the supervisor then holds them (the
      children show as ``"restarting"``, calls are answered) and calls
      ``when_open(callback)``; the gate calls ``callback()`` once, without blocking, when it
      opens (from any greenlet).
    """

    def counts(self, child_id: Hashable, reason: Any) -> bool:
        return True

    def is_open(self) -> bool:
        return True

    def when_open(self, callback: Callable[[], None]) -> None:
        callback()


@dataclass(frozen=True)
class SupFlags:
    """A supervisor's flags (OTP's sup_flags map), plus the agent-side restart ``gate`` (None:
    the default gate, see :func:`xsactor.actors.supervisor.set_default_gate`)."""

    strategy: Strategy = "one_for_one"
    intensity: int = 1
    period: float = 5.0
    auto_shutdown: AutoShutdown = "never"
    gate: RestartGate | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int) \
                or self.intensity < 0:
            raise ValueError(f"intensity must be an integer >= 0, not {self.intensity!r}")
        if not isinstance(self.period, int | float) or self.period <= 0:
            raise ValueError(f"period must be > 0 seconds, not {self.period!r}")
        if self.auto_shutdown not in AUTO_SHUTDOWNS:
            raise ValueError(f"auto_shutdown must be one of {AUTO_SHUTDOWNS}")

    def check_children(self, specs: Iterable[ChildSpec]) -> None:
        """OTP refuses significant children when auto_shutdown is ``never``."""
        if self.auto_shutdown == "never":
            for spec in specs:
                if spec.significant:
                    raise ValueError(f"child {spec.id!r}: significant children need "
                                     "auto_shutdown any_significant or all_significant")
