"""Shared test setup.

The ``xsactor`` pytest plugin may or may not be loaded through its entry point (it is when the
package is pip-installed): import its fixtures here rather than registering the module again.
"""

from __future__ import annotations

import pytest

from xsactor.testing.plugin import (
    register_markers,
    xenstored,
    xenstored_reference,
    xs,
    xs_daemon_kind,
    xs_default,
    xs_dom0,
)

__all__ = ["xenstored", "xenstored_reference", "xs", "xs_daemon_kind", "xs_default", "xs_dom0"]


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
