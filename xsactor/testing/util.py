"""Small helpers of the test harnesses: short temporary directories, polling with a deadline,
background processes."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any


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


def wait_for(condition: Callable[[], object], timeout: float, what: str = "a condition",
             check: Callable[[], object] | None = None,
             error: type[Exception] = TimeoutError) -> None:
    """Poll ``condition`` until it is true; ``check`` may raise (e.g. the process died).

    Raises ``error`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise error(f"timed out waiting for {what}")
        time.sleep(delay)  # polling a condition with a deadline
        delay = min(delay * 2, 0.05)


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
