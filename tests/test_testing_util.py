"""Helpers of ``xsactor.testing.util`` that tests lean on."""

from __future__ import annotations

import io
import os

import pytest

from xsactor.testing.util import LineReader


def test_line_reader_skips_to_the_matching_line_and_reports_what_it_saw() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as stream:
        lines = LineReader(stream)
        with os.fdopen(write_end, "w") as writer:
            writer.write("starting\nready port=5\nbusy\n")
            writer.flush()
            assert lines.expect(lambda line: "ready" in line, 5, "ready") == "ready port=5\n"
            with pytest.raises(AssertionError, match=r"no done within 0.1 s; saw \['busy'\]"):
                lines.expect(lambda line: "done" in line, 0.1, "done")
        with pytest.raises(AssertionError, match="ended"):  # the reader has finished
            lines.expect(lambda line: False, 5, "the end")


def test_line_reader_fails_at_once_when_the_stream_ends() -> None:
    lines = LineReader(io.StringIO("one\ntwo\n"))
    with pytest.raises(AssertionError, match=r"ended before done; saw \['one', 'two'\]"):
        lines.expect(lambda line: "done" in line, 30, "done")
