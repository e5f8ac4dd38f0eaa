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


def test_events_are_one_readable_line_without_dicts_or_doubled_names(
        caplog: pytest.LogCaptureFixture) -> None:
    from edge.decisions import Event

    sink = LogSink()
    with caplog.at_level(logging.INFO, logger="edge.decisions"):
        sink.submit(Event("sim-0", "sim-0", 0.0, "state_change",
                          {"from": "baseline", "to": "stress", "held_s": 535.0, "p": 0.6148}))
        sink.submit(Event("hub", "hub", 0.0, "sink_fault", {"sink": "sqlite", "error": "disk full"}))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["sim-0: stress (p 0.61) after 8.9 min of baseline",
                     "hub: sink fault: sink sqlite; error disk full"]
    assert not any("{" in line for line in lines)
