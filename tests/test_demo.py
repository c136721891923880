"""``xsactor demo`` tells the whole story, with its supervision trees, and succeeds."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

from xsactor.demo import run

STEPS = ("guest built as xl does and introduced", "child started", "backend connected",
         "vif 0 connected: both ends in state 4",
         "memory target 131072 KiB acknowledged", "process crashed", "child terminated",
         "child restarted", "the restarted balloon applied 262144 KiB", "shutdown request",
         "@releaseDomain fired", "domain destroyed and cleaned up", "done")


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_demo_runs_every_step_in_order() -> None:
    out = io.StringIO()
    assert run(out) == 0
    text = plain(out.getvalue())
    positions = [text.find(step) for step in STEPS]
    assert -1 not in positions, [s for s, p in zip(STEPS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert "tree_gone=True" in text and "processes_left=0" in text
    assert "warning" not in text


def test_demo_command_ends_by_itself_quickly() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "xsactor", "demo"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    last = plain(result.stdout).rstrip().splitlines()[-2:]  # "done", then the daemon stops
    assert any(" done " in line + " " for line in last), last
