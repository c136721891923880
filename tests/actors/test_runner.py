"""The agent runner as a subprocess (``xsactor run``) against the embedded daemon."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from xsactor.protocol.errors import XenStoreError
from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import LineReader, spawned, wait_for


class Agent:
    """``xsactor run TARGET --json`` and its log events, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines = LineReader(process.stderr)

    def expect(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next log event named ``event`` (those before it are skipped)."""
        line = self.lines.expect(lambda line: _event(line).get("event") == event, timeout,
                                 f"{event!r} event")
        return _event(line)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout)


def _event(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {"event": "unparsed", "line": line}
    return entry if isinstance(entry, dict) else {"event": "unparsed", "line": line}


@pytest.fixture
def run_agent(xenstored: DaemonUnderTest) -> Iterator[Any]:
    def start(target: str) -> Agent:
        argv = [sys.executable, "-m", "xsactor", "run", f"tests.actors.runner_agents:{target}",
                "--socket", xenstored.socket_path, "--json"]
        process = stack.enter_context(spawned(argv, stderr=subprocess.PIPE,
                                              stdout=subprocess.DEVNULL))
        return Agent(process)

    with contextlib.ExitStack() as stack:
        yield start


def test_sigterm_stops_the_tree_cleanly_with_status_0(run_agent: Any) -> None:
    agent = run_agent("tree")
    agent.expect("agent started")
    agent.signal(signal.SIGTERM)
    stopped = agent.expect("agent stopped")
    assert stopped["reason"] == "shutdown" and stopped["killed"] is False
    assert agent.wait() == 0


def test_sigusr1_logs_the_tree_with_watches_and_restart_counts(
        run_agent: Any, xenstored: DaemonUnderTest) -> None:
    agent = run_agent("tree")
    agent.expect("agent started")
    dom0 = xenstored.dom0()
    # the declared watch reaches the child: its first event copies the value
    dom0.write("/local/domain/0/data/runner", b"hello")

    def seen() -> bytes | None:
        try:
            return dom0.read("/local/domain/0/data/runner-seen")
        except XenStoreError:
            return None

    wait_for(lambda: seen() == b"hello", 10, "the echo child to see its watch")
    agent.signal(signal.SIGUSR1)
    tree = agent.expect("process tree")["tree"]
    assert (tree["id"], tree["name"], tree["type"], tree["strategy"]) == (
        "root", "root", "supervisor", "one_for_one")
    [child] = tree["children"]
    assert child["id"] == "echo" and child["restarts"] == 0
    assert child["watches"] == [["data/runner", "runner"]]
    assert child["mailbox"] == 0 and child["pid"].startswith("<0.")
    agent.signal(signal.SIGINT)
    agent.expect("agent stopped")
    assert agent.wait() == 0


def test_a_second_signal_kills_the_tree(run_agent: Any) -> None:
    agent = run_agent("stubborn")
    agent.expect("agent started")
    agent.signal(signal.SIGTERM)
    agent.expect("agent stopping")  # the root waits for a child that does not stop
    agent.signal(signal.SIGTERM)
    assert agent.expect("agent killed")["why"] == "SIGTERM"
    assert agent.expect("agent stopped")["killed"] is True
    assert agent.wait() == 1


def test_a_root_that_gives_up_exits_non_zero(run_agent: Any) -> None:
    agent = run_agent("giving_up")
    gave_up = agent.expect("supervisor gave up")
    assert gave_up["child_id"] == "crasher"
    ended = agent.expect("agent root exited")
    assert ended["reason"] == "shutdown"
    assert agent.wait() == 1


def test_a_bad_target_exits_2(run_agent: Any) -> None:
    agent = run_agent("no_such_factory")
    assert agent.expect("cannot load the agent")["target"].endswith(":no_such_factory")
    assert agent.wait() == 2


def test_no_daemon_exits_1(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xsactor", "run", "tests.actors.runner_agents:tree",
         "--socket", str(tmp_path / "none"), "--json"],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert json.loads(result.stderr.splitlines()[-1])["event"] == "cannot connect"
