"""The OTP harness itself: rendering, escript failures, skip or fail without escript."""

from __future__ import annotations

from pathlib import Path

import pytest

from xsactor.actors.process import NoProc, Shutdown, spawn
from xsactor.testing import otp


def test_fmt_renders_terms_as_trace_hrl_does() -> None:
    assert otp.fmt(("EXIT", True, None, 3, ["a", ("b",)])) == "{EXIT,true,undefined,3,[a,{b}]}"
    assert otp.fmt(Shutdown("x")) == "{shutdown,x}"
    assert otp.fmt(RuntimeError("boom")) == "crash:boom"
    assert otp.fmt(KeyError()) == "crash:KeyError"
    assert otp.fmt(NoProc("x")) == "crash:noproc"
    pid = spawn(lambda: None)
    assert otp.fmt(pid) == "<pid>"
    with pytest.raises(TypeError):
        otp.fmt(1.5)


def test_without_escript_skip_or_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otp.shutil, "which", lambda name: None)
    monkeypatch.delenv("XSACTOR_REQUIRE_REFERENCE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="erlang-base"):
        otp.require_escript()
    monkeypatch.setenv("XSACTOR_REQUIRE_REFERENCE", "1")
    with pytest.raises(pytest.fail.Exception, match="XSACTOR_REQUIRE_REFERENCE=1"):
        otp.require_escript()


def test_a_failing_escript_is_an_error_and_only_trace_lines_count(tmp_path: Path) -> None:
    escript = otp.require_escript()
    good = tmp_path / "good.escript"
    good.write_text('#!/usr/bin/env escript\nmain(_) -> io:format("noise~nT a b~n").\n')
    bad = tmp_path / "bad.escript"
    bad.write_text("#!/usr/bin/env escript\nmain(_) -> halt(3).\n")
    results = otp.run_escripts(escript, [good, bad])
    assert results["good"] == ["a b"]
    assert isinstance(results["bad"], otp.ScenarioError) and "exit status 3" in str(results["bad"])


def test_a_scenario_name_is_registered_once() -> None:
    def harness_dummy(trace: otp.Trace) -> None:
        trace("x")

    try:
        otp.scenario(harness_dummy)
        assert otp.run_python(harness_dummy) == ["x"]
        with pytest.raises(ValueError, match="twice"):
            otp.scenario(harness_dummy)
    finally:
        otp.SCENARIOS.pop("harness_dummy", None)
