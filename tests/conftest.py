"""Shared test setup.

The ``xsactor`` pytest plugin may or may not be loaded through its entry point (it is when the
package is pip-installed): import its fixtures here rather than registering the module again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import xsactor
from xsactor.testing.plugin import (
    register_markers,
    xenbus_device,
    xenstored,
    xenstored_reference,
    xs,
    xs_daemon_kind,
    xs_default,
    xs_dom0,
)
from xsactor.testing.processes import no_leftover_processes

# no_leftover_processes is autouse: every test ends with no process and no stray greenlet
__all__ = ["no_leftover_processes", "xenbus_device", "xenstored", "xenstored_reference", "xs",
           "xs_daemon_kind", "xs_default", "xs_dom0"]


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
    if os.environ.get("XSACTOR_EXPECT_INSTALLED") == "1":
        # CI's wheel check: the package under test must be the installed one
        source = Path(__file__).resolve().parents[1] / "xsactor"
        assert Path(xsactor.__file__).resolve().parent != source, \
            f"testing the source tree ({xsactor.__file__}), not the installed wheel"
