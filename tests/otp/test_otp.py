"""Each scenario runs as an escript on Erlang/OTP and as Python on xsactor: same trace.

Scenarios live in ``scenarios/``: ``<name>.escript`` and a ``@scenario`` function named
``<name>`` in one of the Python modules there (see ``xsactor/testing/otp.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

from xsactor.testing.otp import SCENARIOS, ScenarioError, require_escript, run_escripts, run_python

from . import scenarios

for _module in pkgutil.iter_modules(scenarios.__path__):
    importlib.import_module(f"{scenarios.__name__}.{_module.name}")

HERE = Path(scenarios.__path__[0])
ESCRIPTS = {path.stem: path for path in sorted(HERE.glob("*.escript"))}


@pytest.fixture(scope="session")
def erlang_traces() -> dict[str, list[str] | ScenarioError]:
    """Every escript's trace, run once per session (several at a time)."""
    return run_escripts(require_escript(), ESCRIPTS.values())


def test_every_scenario_has_both_halves() -> None:
    assert sorted(ESCRIPTS) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(ESCRIPTS))
def test_same_trace_as_otp(name: str, erlang_traces: dict[str, list[str] | ScenarioError]) -> None:
    erlang = erlang_traces[name]
    if isinstance(erlang, ScenarioError):
        raise erlang
    assert erlang, f"{name}.escript printed no trace"
    assert run_python(SCENARIOS[name]) == erlang
