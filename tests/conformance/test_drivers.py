"""The daemon drivers and the pytest plugin's fixtures (``xenstored``, ``xenstored_reference``)."""

from __future__ import annotations

import os

import pytest

from xsactor.daemon.toolstack import GuestSpec
from xsactor.protocol import Op
from xsactor.testing.daemons import DaemonError, DaemonUnderTest


def exercise(daemon: DaemonUnderTest) -> None:
    assert daemon.alive()
    with daemon.dom0() as c:
        c.write("/driver/check", b"1")
        assert c.read("/driver/check") == b"1"
        path = daemon.add_guest(5)
        assert os.path.exists(path)
        daemon.add_guest(GuestSpec(6, name="six"))
        with daemon.guest(5) as g5, daemon.guest(GuestSpec(6)) as g6:
            assert g5.read("domid") == b"5"
            assert g6.read("name") == b"six"
            c.watch("@releaseDomain", "r")
            assert c.next_event() == (b"@releaseDomain", b"r")
            daemon.set_domain_state(5, "shutdown")
            assert c.next_event() == (b"@releaseDomain", b"r")
            daemon.set_domain_state(6, "gone")
            assert c.next_event() == (b"@releaseDomain", b"r")
            assert c.call(Op.IS_DOMAIN_INTRODUCED, 6) == b"F\0"
            assert c.call(Op.IS_DOMAIN_INTRODUCED, 5) == b"T\0"
    with pytest.raises(ValueError):
        daemon.set_domain_state(5, "sleepy")
    with pytest.raises(DaemonError):
        daemon.guest(77)
    daemon.stop()
    assert not daemon.alive()
    daemon.stop()


def test_xenstored_fixture(xenstored: DaemonUnderTest) -> None:
    assert xenstored.name == "embedded"
    exercise(xenstored)


@pytest.mark.reference
def test_xenstored_reference_fixture(xenstored_reference: DaemonUnderTest) -> None:
    assert xenstored_reference.name == "reference"
    exercise(xenstored_reference)
