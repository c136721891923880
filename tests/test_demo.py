"""``xsactor demo`` (the README's first command) tells the whole story and ends by itself."""

from __future__ import annotations

import subprocess
import sys

STEPS = (
    "xenstored up, guest built as xl does",
    "child started",                                   # the trees
    "toolstack: connect vif 0",
    "backend mapped the ring",
    "toolstack: vif 0 connected on both sides",
    "balloon target",
    "toolstack: the balloon reported the new target",
    "process crashed",                                 # the bad value...
    "child terminated",
    "child restart delayed",                           # ... backoff ...
    "child restarted",                                 # ... and the restart
    "toolstack: a restarted instance read the good value",
    "toolstack: vif 0 closed on both sides and removed",
    "shutdown requested",
    "toolstack: the guest acknowledged and acts",
    "supervisor stopped",
    "toolstack: the hypervisor reports the domain shut down",
    "domain gone",
    "toolstack: domain cleaned up",
    "demo done",
)


def test_demo_command() -> None:
    result = subprocess.run([sys.executable, "-m", "xsactor", "demo"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    position = 0
    for step in STEPS:  # each one told, in this order
        found = out.find(step, position)
        assert found >= 0, f"{step!r} missing after {out[position - 200:position]!r}"
        position = found + len(step)
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert "left=False" in out.split("toolstack: domain cleaned up")[1].splitlines()[0]
