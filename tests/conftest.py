"""Shared test setup.

The ``xsactor`` pytest plugin may or may not be loaded through its entry point (it is when the
package is pip-installed): import its fixtures here rather than registering the module again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xsactor.testing.plugin import register_markers, xenstored, xenstored_reference
from xsactor.testing.processes import no_leftovers

__all__ = ["xenstored", "xenstored_reference"]


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """Every test ends with no process and no greenlet of its own left (the bus tests also
    check that the daemon holds no watch of a dead subscriber: ``tests/bus/conftest.py``)."""
    with no_leftovers():
        yield
