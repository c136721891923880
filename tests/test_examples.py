"""The examples run as documented (one command each), against the embedded daemon; their
behaviour is tested in-process in ``examples/test_agents.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from xsactor.testing.daemons import DaemonUnderTest
from xsactor.testing.util import spawned
from xsactor.testing.wire import WireClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str, *args: str, socket: str | None = None
            ) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """``examples/<name>`` running (on ``socket``, when given), killed on exit if still running."""
    env = dict(os.environ)
    if socket is not None:
        env["XENSTORED_PATH"] = socket
    return spawned([sys.executable, str(EXAMPLES / name), *args], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(dom0: WireClient, path: str, expected: bytes) -> None:
    """Watch ``path`` until it holds ``expected`` (each event: re-read)."""
    dom0.watch(path, b"until")
    try:
        while True:
            dom0.next_event(timeout=20)
            try:
                if dom0.read(path) == expected:
                    return
            except FileNotFoundError:
                pass
    finally:
        dom0.unwatch(path, b"until")


def test_metrics_publisher_runs_with_one_command(xenstored: DaemonUnderTest) -> None:
    """``XENSTORED_PATH=<guest socket> python examples/metrics_publisher.py``: it publishes
    this machine's metrics as the guest, and SIGTERM stops its tree cleanly."""
    with example("metrics_publisher.py", socket=xenstored.add_guest(7)) as agent, \
            xenstored.dom0() as dom0:
        wait_until(dom0, "/local/domain/7/data/os_name", platform_name())
        assert int(dom0.read("/local/domain/7/data/meminfo_total")) > 0
        agent.send_signal(signal.SIGTERM)
        _out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert "agent stopped" in err


def platform_name() -> bytes:
    import platform

    return f"{platform.system()} {platform.release()}".encode()


def test_supervised_balloon_survives_a_bad_value(xenstored: DaemonUnderTest) -> None:
    with example("supervised_balloon.py", socket=xenstored.add_guest(6)) as agent, \
            xenstored.dom0() as dom0:
        home = "/local/domain/6"
        dom0.write(f"{home}/memory/target", b"1024")
        wait_until(dom0, f"{home}/data/balloon", b"1024")
        dom0.write(f"{home}/memory/target", b"abc")  # the child crashes on it, restarts
        assert agent.stderr is not None
        while "child terminated" not in (line := agent.stderr.readline()):
            assert line, "the agent ended"
        assert "not an integer" in line and "child_id='balloon'" in line
        dom0.write(f"{home}/memory/target", b"4096")
        wait_until(dom0, f"{home}/data/balloon", b"4096")
        agent.send_signal(signal.SIGTERM)
        _out, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, err
        assert "agent stopped" in err
