"""Proving the actor layer against real Erlang/OTP: scenarios written twice, traces compared.

A scenario exists as ``<name>.escript`` (run by OTP's ``escript``) and as a Python function
registered with :func:`scenario` (run on xsactor's API). Each prints a trace with a ``trace``
helper that renders terms the same way in both languages (:func:`fmt`; the Erlang side is
``trace.hrl`` next to the escripts); the two traces must be identical line by line.

Erlang side: the escript includes ``trace.hrl``, which defines ``main/1`` (logger off, then
``scenario()``, then halt) and ``trace(Parts)`` printing ``T <parts joined by spaces>``.
Python side: ``@scenario def name(trace: Trace) -> None``.

Rendering (:func:`fmt`): atoms and str as text, integers, ``true``/``false``, None as
``undefined``, tuples ``{a,b}``, lists ``[a,b]``, :class:`Shutdown` ``{shutdown,T}``, a crash
(Erlang ``{Reason, Stack}``, a Python exception) as ``crash:Reason`` (Python: an
``ExitError``'s reason, else the exception's first argument, else its class name). Pids and
references print as ``<pid>`` / ``<ref>``: scenarios print names, not pids.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..actors.process import ExitError, Pid, Ref, Shutdown
from .util import reference_unavailable

__all__ = ["SCENARIOS", "ScenarioError", "Trace", "escript_path", "fmt", "require_escript",
           "run_escripts", "run_python", "scenario"]

PREFIX = "T "

SCENARIOS: dict[str, Callable[[Trace], None]] = {}
"""The Python halves of the scenarios, by name (the escript's file stem)."""


def scenario(fn: Callable[[Trace], None]) -> Callable[[Trace], None]:
    """Register ``fn`` as the Python half of the scenario named ``fn.__name__``."""
    if fn.__name__ in SCENARIOS:
        raise ValueError(f"scenario {fn.__name__!r} defined twice")
    SCENARIOS[fn.__name__] = fn
    return fn


def fmt(term: Any) -> str:
    """A term rendered as the Erlang ``trace.hrl`` renders its counterpart."""
    if isinstance(term, bool):
        return "true" if term else "false"
    if term is None:
        return "undefined"
    if isinstance(term, (str, int)):
        return str(term)
    if isinstance(term, tuple):
        return "{" + ",".join(fmt(item) for item in term) + "}"
    if isinstance(term, list):
        return "[" + ",".join(fmt(item) for item in term) + "]"
    if isinstance(term, Shutdown):
        return "{shutdown," + fmt(term.term) + "}"
    if isinstance(term, ExitError):  # Erlang's error(Reason) raised by a BIF
        return "crash:" + fmt(term.reason)
    if isinstance(term, BaseException):
        return "crash:" + (fmt(term.args[0]) if term.args else type(term).__name__)
    if isinstance(term, Pid):
        return "<pid>"
    if isinstance(term, Ref):
        return "<ref>"
    raise TypeError(f"no trace rendering for {term!r}")


@dataclass
class Trace:
    """The Python ``trace`` helper: ``trace("got", msg)`` adds the line ``got <msg>``."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, *parts: Any) -> None:
        self.lines.append(" ".join(fmt(part) for part in parts))


def run_python(fn: Callable[[Trace], None]) -> list[str]:
    """Run a Python scenario in the calling greenlet; its trace lines."""
    trace = Trace()
    fn(trace)
    return trace.lines


# -- the Erlang side -----------------------------------------------------------------------
class ScenarioError(RuntimeError):
    """An escript failed (non-zero exit or timeout)."""


def escript_path() -> tuple[str | None, str | None]:
    """``escript``'s path, or None and why not."""
    path = shutil.which("escript")
    if path is None:
        return None, "escript not found (Debian: apt-get install erlang-base)"
    return path, None


def require_escript() -> str:
    """``escript``'s path; otherwise skip the test, or fail it when
    ``XSACTOR_REQUIRE_REFERENCE=1`` (CI must run the OTP cases)."""
    path, reason = escript_path()
    if path is not None:
        return path
    reference_unavailable(reason or "escript unavailable")


def _trace_lines(stdout: str) -> list[str]:
    return [line[len(PREFIX):] for line in stdout.splitlines() if line.startswith(PREFIX)]


def run_escripts(escript: str, scripts: Iterable[Path], *, jobs: int = 4,
                 timeout: float = 60.0) -> dict[str, list[str] | ScenarioError]:
    """Run ``scripts`` (at most ``jobs`` at once); each one's trace lines, or the error
    saying why it failed, by file stem."""
    results: dict[str, list[str] | ScenarioError] = {}
    pending = list(scripts)
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        running = [(path, subprocess.Popen([escript, str(path)], cwd=path.parent, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                   for path in batch]
        for path, proc in running:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                results[path.stem] = ScenarioError(f"{path.name}: timed out\n{out}{err}")
                continue
            if proc.returncode != 0:
                results[path.stem] = ScenarioError(
                    f"{path.name}: exit status {proc.returncode}\n{out}{err}")
            else:
                results[path.stem] = _trace_lines(out)
    return results
