"""Library logging: quiet (warnings, to stderr) until the program configures structlog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from xsactor.logs import get_logger


@pytest.fixture
def unconfigured() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_unconfigured_library_prints_only_warnings_to_stderr(
        unconfigured: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = get_logger("xsactor.test").bind(domid=5)
    log.debug("noise")
    log.info("noise")
    log.warning("trouble", path="/a")
    out, err = capsys.readouterr()
    assert out == ""
    assert "noise" not in err
    assert "trouble" in err and "domid=5" in err and "path='/a'" in err
    assert "logger='xsactor.test'" in err


def test_configured_structlog_gets_everything_with_context(unconfigured: None) -> None:
    log = get_logger("xsactor.test", conn="xs1").bind(req_id=7)
    with capture_logs() as logs:
        log.debug("sent", tx_id=0)
    assert logs == [{"conn": "xs1", "req_id": 7, "tx_id": 0, "event": "sent",
                     "log_level": "debug"}]
