"""edge.sinks.log: events and state changes as log lines."""

from __future__ import annotations

import logging

import pytest

from edge.sinks import LogSink
from tests.fakes.records import decision, event


def test_log_sink_logs_events_and_state(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink(decisions_at_info=True)
    with caplog.at_level(logging.INFO, logger="edge.decisions"):
        sink.submit(event("alert"))
        sink.submit(decision(1))
    text = caplog.text
    assert "alert" in text and "stress" in text and "window 1" in text
    assert caplog.records[0].levelno == logging.WARNING
