"""The examples' commands, as a user runs them: ``python -m xsactor.examples.<name>`` (its
own embedded daemon) and ``xsactor run xsactor.examples.<name>:agent --socket``."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from typing import IO

import pytest

from xsactor.bus.client import Client
from xsactor.testing import util
from xsactor.testing.sandbox import Sandbox


def spawned(argv: list[str]) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """The command, its stderr piped; killed on exit if still running."""
    return util.spawned(argv, stderr=subprocess.PIPE)


class Lines:
    """A subprocess's stderr, line by line, as it comes."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.reader = util.LineReader(stream)

    def expect(self, text: str, timeout: float = 20.0) -> str:
        return self.reader.expect(lambda line: text in line, timeout, repr(text))


def test_an_example_with_its_own_daemon() -> None:
    argv = [sys.executable, "-m", "xsactor.examples.shutdown"]
    with spawned(argv) as proc:
        out = Lines(proc.stderr)
        line = out.expect("embedded xenstored")
        match = re.search(r"dom0_socket=(\S+)", line)
        assert match is not None, line
        out.expect("agent started")
        with Client(match.group(1).strip("'\"")) as dom0:
            dom0.write("/local/domain/5/control/shutdown", b"poweroff")
            out.expect("shutdown requested")
            assert dom0.read("/local/domain/5/control/shutdown") == b""
        proc.send_signal(signal.SIGTERM)
        out.expect("agent stopped")
        assert proc.wait(20) == 0


@pytest.mark.xsactor_daemons("embedded")  # this process blocks on the agent's output
def test_an_example_under_the_runner(xs: Sandbox, xs_dom0: Client) -> None:
    argv = [sys.executable, "-m", "xsactor", "run", "xsactor.examples.guest:agent",
            "--socket", xs.guest_socket(5)]
    with spawned(argv) as proc:
        dom0 = xs_dom0
        out = Lines(proc.stderr)
        out.expect("agent started")
        dom0.write("/local/domain/5/memory/target", b"65536")
        out.expect("target_kib=65536")
        proc.send_signal(signal.SIGTERM)
        out.expect("agent stopped")
        assert proc.wait(20) == 0
