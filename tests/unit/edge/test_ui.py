"""edge.ui: what the terminal shows (the live line's printed lines, the summary, the scan
table is in tests/test_ble.py)."""

from __future__ import annotations

import io
import math

from edge.decisions import Event
from edge.ui import StatusLine, format_summary


def test_status_line_prints_state_changes_only() -> None:
    out = io.StringIO()
    line = StatusLine(enabled=True, stream=out)
    line.on_event(Event("room-7", "d", 0.0, "battery_low", {"percent": 5.0}))
    line.on_event(Event("room-7", "d", 0.0, "state_change", {"from": None, "to": "baseline"}))
    line.on_event(Event("room-7", "d", 0.0, "state_change",
                        {"from": "baseline", "to": "stress"}))
    printed = out.getvalue().splitlines()
    assert [p.split(" ", 1)[1] for p in printed] == ["room-7: … → baseline",
                                                     "room-7: baseline → stress"]


def test_a_disabled_status_line_never_writes() -> None:
    out = io.StringIO()
    line = StatusLine(enabled=False, stream=out)
    line.start()
    line.on_event(Event("r", "d", 0.0, "state_change", {"from": None, "to": "baseline"}))
    line.update({"devices": []})
    line.stop()
    assert out.getvalue() == ""


def test_summary_text_counts_decisions_windows_and_drops() -> None:
    text = format_summary({
        "elapsed_s": 45.0, "data_s": 2698.0, "model_id": "m", "engine": "onnx:fp32",
        "decisions_per_state": {"baseline": 2, "stress": 1},
        "windows": {"valid": 3, "invalid_gap": 1}, "drops": {"lost_packets": 2, "x": 0},
        "events": {"state_change": 2}, "latency_p50_ms": 1.0, "latency_p99_ms": math.nan,
        "ready_s": 1.5, "rss_mb": 100.0, "peak_rss_mb": 110.0, "agreement": None,
    })
    lines = text.splitlines()
    assert lines[1] == "  decisions: 3 (baseline 2, stress 1)"
    assert lines[2] == "  windows: 3 valid, 1 invalid (gap 1)"
    assert lines[3] == "  drops: lost_packets 2"
    assert "p99 - ms" in text and "ready in 1500.0 ms" in text
