"""``xsactor demo`` tells the whole story and succeeds."""

from __future__ import annotations

import io
import subprocess
import sys

from xsactor.demo import run


def test_demo_runs_every_step() -> None:
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    for step in ("guest 5 built as xl does", "memory/target is 131072 KiB",
                 "control/shutdown says 'poweroff'", "@releaseDomain fired",
                 "entries gone", "done"):
        assert step in text, step


def test_demo_command() -> None:
    result = subprocess.run([sys.executable, "-m", "xsactor", "demo"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("done")
