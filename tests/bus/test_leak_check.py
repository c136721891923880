"""The check every bus test ends with: no watch of a dead subscriber left on the daemon."""

from __future__ import annotations

from typing import Any

import greenlet
import pytest

from xsactor import Client
from xsactor.testing.watches import daemon_watch_count, no_stray_watches


def test_the_check_sees_a_watch_left_by_a_dead_raw_greenlet(embedded: Any,
                                                            clients: Any) -> None:
    client: Client = clients(embedded.socket_path)
    baseline = daemon_watch_count(embedded)
    # A raw greenlet is reaped only when its next event arrives: until then it is a leak.
    greenlet.greenlet(lambda: client.watch("/leak", "leak")).switch()
    assert daemon_watch_count(embedded) == baseline + 1
    with pytest.raises(AssertionError, match="watches left on the daemon"):
        no_stray_watches(embedded, [client], timeout=0.05)
    client.write("/leak", "x")  # the event finds the subscriber gone: UNWATCH
    no_stray_watches(embedded, [client])
    assert daemon_watch_count(embedded) == baseline
