"""A flooding client, for attack tests and benchmarks: a process of its own (so that the daemon
is really flooded, without the GIL of the measuring process in the way) sending one request
over and over, its replies read (and counted) or never read."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

from ..protocol import HEADER_SIZE, Packet
from .util import wait_for
from .wire import connect_unix

BATCH = 200
"""Requests per write."""


def _flood(path: str, batch: bytes, read_replies: bool, replies: Any, ready: Any) -> None:
    sock = connect_unix(path)
    sock.settimeout(None)

    def drain() -> None:
        got = 0
        size = 0
        while data := sock.recv(1 << 20):
            got += len(data)
            size = size or HEADER_SIZE + int.from_bytes(data[12:16], "little")
            replies.value = got // size

    if read_replies:
        threading.Thread(target=drain, daemon=True).start()
    ready.set()
    while True:
        sock.sendall(batch)


@contextlib.contextmanager
def flooding(path: str, request: Packet, *, read_replies: bool, started: int = 1000,
             timeout: float = 10.0) -> Iterator[Any]:
    """Flood the socket at ``path`` with ``request`` until the block ends. With
    ``read_replies`` the yielded value's ``.value`` counts the replies (all of one size), and
    the block starts once ``started`` came."""
    context = multiprocessing.get_context("fork")
    replies = context.Value("q", 0, lock=False)
    ready = context.Event()
    process = context.Process(target=_flood, daemon=True,
                              args=(path, request.encode() * BATCH, read_replies, replies,
                                    ready))
    process.start()
    try:
        if not ready.wait(timeout):
            raise TimeoutError("the flooder did not start")
        if read_replies:
            wait_for(lambda: replies.value >= started, timeout, "the flood to get going")
        yield replies
    finally:
        process.kill()
        process.join(timeout)
