"""Small helpers of the test harnesses: short temporary directories, polling with a deadline,
background processes."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn, TypeVar

T = TypeVar("T")

REQUIRE_REFERENCE_ENV = "XSACTOR_REQUIRE_REFERENCE"


def reference_unavailable(reason: str) -> NoReturn:
    """Skip the test that needs a reference program (the C xenstored, Erlang's escript), or
    fail it when ``XSACTOR_REQUIRE_REFERENCE=1`` (CI must run those cases)."""
    import pytest

    if os.environ.get(REQUIRE_REFERENCE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_REFERENCE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def short_tempdir(prefix: str = "xs-") -> str:
    """A temporary directory with a short path (unix socket paths are limited to 107 bytes)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


@contextlib.contextmanager
def scratch_dir(prefix: str = "xs-") -> Iterator[str]:
    """A :func:`short_tempdir`, removed with all it holds on exit."""
    path = short_tempdir(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for(condition: Callable[[], T | None], timeout: float, what: str = "a condition",
             check: Callable[[], object] | None = None,
             error: type[Exception] = TimeoutError,
             sleep: Callable[[float], object] = time.sleep) -> T:
    """Poll ``condition`` until it returns something true, and return that; ``check`` may
    raise (e.g. the process died). Raises ``error`` after ``timeout`` seconds.

    ``sleep`` waits between polls: pass ``gevent.sleep`` from code running on the gevent hub.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        value = condition()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise error(f"timed out waiting for {what}")
        sleep(delay)  # polling a condition with a deadline
        delay = min(delay * 2, 0.02)


def accepts_connections(path: str) -> bool:
    """Whether a unix socket at ``path`` is listening (a stale socket file is not)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        return False
    finally:
        sock.close()
    return True


@contextlib.contextmanager
def spawned(argv: list[str], **options: Any) -> Iterator[subprocess.Popen[str]]:
    """``subprocess.Popen(argv, text=True, **options)``, killed on exit if still running, then
    reaped (its pipes closed)."""
    with subprocess.Popen(argv, text=True, **options) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


class LineReader:
    """A text stream (a subprocess's pipe), read line by line in a thread as it comes."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None, "the stream must be a pipe"
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")  # the end

    def expect(self, match: Callable[[str], object], timeout: float, what: str) -> str:
        """The next line ``match`` accepts (those before it are skipped); AssertionError, with
        the lines seen, if none comes within ``timeout`` seconds of the last or the stream
        ends."""
        seen: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout} s; saw {seen}") from None
            if not line:
                raise AssertionError(f"the stream ended before {what}; saw {seen}")
            if match(line):
                return line
            seen.append(line.rstrip("\n"))


def rss_kb(pid: int) -> int:
    """The resident memory of process ``pid`` in KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
