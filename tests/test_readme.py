"""The README's quick start is two commands, and CI runs the second one verbatim."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import spawned

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the quick start has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands() -> None:
    demo, tests = quick_start_commands()
    assert "demo" in demo
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci.splitlines()
    assert "XSACTOR_REQUIRE_REFERENCE=1" in ci


def test_readme_agent_runs(xenstored: DaemonUnderTest) -> None:
    """The README's agent answers memory/target and stops on control/shutdown."""
    text = (ROOT / "README.md").read_text()
    agent = re.search(r"```python\n(.*?)```", text, re.S)
    assert agent is not None
    env = dict(os.environ, XENSTORED_PATH=xenstored.add_guest(5))
    with spawned([sys.executable, "-c", agent.group(1)], env=env,
                 stderr=subprocess.PIPE) as proc, xenstored.dom0() as dom0:
        dom0.watch("/local/domain/5/data/memory/target-ack", b"ack")
        dom0.next_event()  # registration
        dom0.write("/local/domain/5/memory/target", b"4096")
        ack = b""
        while ack != b"4096":  # the agent may first ack the target it found at start
            assert dom0.next_event(timeout=20)[1] == b"ack"
            ack = dom0.read("/local/domain/5/data/memory/target-ack")
        dom0.write("/local/domain/5/control/shutdown", b"poweroff")
        assert proc.wait(timeout=20) == 0, proc.communicate()[1]
