"""Shared test setup.

The ``xsactor`` pytest plugin may or may not be loaded through its entry point (it is when the
package is pip-installed): import its fixtures here rather than registering the module again.
"""

from __future__ import annotations

import pytest

from xsactor.testing.plugin import register_markers, xenstored, xenstored_reference
from xsactor.testing.processes import no_leftover_processes

# no_leftover_processes is autouse: every test ends with no process and no stray greenlet
__all__ = ["no_leftover_processes", "xenstored", "xenstored_reference"]


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
