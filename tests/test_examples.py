"""The examples run as documented, against the embedded daemon."""

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


def test_frontend_handshake() -> None:
    with example("frontend_handshake.py") as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "frontend: connected"


def test_guest_agent_obeys_the_toolstack(xenstored: DaemonUnderTest) -> None:
    with example("guest_agent.py", "--dry-run", "--interval", "60",
                 socket=xenstored.add_guest(5)) as agent, xenstored.dom0() as dom0:
        home = "/local/domain/5"
        wait_until(dom0, f"{home}/data/agent", b"running")
        assert dom0.read(f"{home}/control/feature-poweroff") == b"1"
        assert float(dom0.read(f"{home}/data/uptime")) > 0
        dom0.write(f"{home}/memory/target", b"65536")
        wait_until(dom0, f"{home}/data/memory/target-ack", b"65536")
        dom0.write(f"{home}/control/shutdown", b"poweroff")
        assert agent.wait(timeout=30) == 0, agent.communicate()[1]
        assert dom0.read(f"{home}/data/agent") == b"stopped: poweroff"
        assert dom0.read(f"{home}/control/shutdown") == b""


def test_domain_monitor_follows_domains(xenstored: DaemonUnderTest) -> None:
    with example("domain_monitor.py", "--events", "2", socket=xenstored.socket_path) as monitor:
        assert monitor.stdout is not None
        assert monitor.stdout.readline().split() == ["running", "0", "Domain-0"]
        xenstored.add_guest(9)
        assert monitor.stdout.readline().split() == ["new", "9", "guest9"]
        with xenstored.dom0() as dom0:
            dom0.rm("/local/domain/9")  # as xl does when it destroys a domain
            dom0.release(9)
        out, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 0, err
    assert out.split() == ["gone", "9", "guest9"]


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
