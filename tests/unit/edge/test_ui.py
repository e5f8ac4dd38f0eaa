"""edge.ui: what the terminal shows: the live line's printed lines, the summary, the scan table."""

from __future__ import annotations

import io
import math
import time

from edge.decisions import Event
from edge.sources.ble import DiscoveredWearable
from edge.ui import StatusLine, format_scan_results, format_summary
from firmware_bridge import gatt


def test_status_line_prints_state_changes_not_device_events() -> None:
    out = io.StringIO()
    line = StatusLine(enabled=True, stream=out)
    line.on_event(Event("room-7", "d", 0.0, "battery_low", {"percent": 5.0}))
    line.on_event(Event("room-7", "d", 0.0, "state_change", {"from": None, "to": "baseline"}))
    line.on_event(Event("room-7", "d", 0.0, "state_change",
                        {"from": "baseline", "to": "stress"}))
    printed = out.getvalue().splitlines()
    assert [p.split(" ", 1)[1] for p in printed] == ["room-7: … → baseline",
                                                     "room-7: baseline → stress"]


def test_status_line_prints_alerts_in_words() -> None:
    out = io.StringIO()
    line = StatusLine(enabled=True, stream=out)
    line.on_event(Event("anna", "d", 0.0, "alert", {"rule": "sustained_stress",
                                                    "message": "anna has been stressed for 10 min"}))
    line.on_event(Event("anna", "d", 0.0, "alert_cleared", {"rule": "sustained_stress"}))
    printed = [p.split(" ", 1)[1] for p in out.getvalue().splitlines()]
    assert printed == ["ALERT: anna has been stressed for 10 min", "alert over: sustained_stress"]


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


def test_summary_says_what_mqtt_published_and_lost() -> None:
    base = {"decisions_per_state": {}, "windows": {}, "drops": {}, "ready_s": 1.0}
    text = format_summary({**base, "sinks": {"mqtt": {"published": 120, "connect_failures": 3}}})
    assert "  mqtt: 120 messages published, 3 failed connection attempts" in text.splitlines()
    text = format_summary({**base, "sinks": {"mqtt": {"published": 5, "backlog_dropped": 7}}})
    assert "mqtt: 5 messages published, 7 dropped from a full outbox" in text
    assert "  sink mqtt: {" in text  # a loss is also shown with every counter
    assert "mqtt" not in format_summary({**base, "sinks": {"sqlite": {"written": 3}}})


def test_format_scan_results_lists_each_device_and_what_it_offers() -> None:
    found = [
        DiscoveredWearable(
            "C0:FF:EE:00:00:01", "HRM-Strap", -58, (gatt.HEART_RATE_SERVICE_UUID,), ("heart-rate",)
        ),
        DiscoveredWearable("11:22:33:44:55:66", None, -80, (), ()),
    ]
    text = format_scan_results(found)
    lines = text.splitlines()
    assert lines[0].split() == ["ADDRESS", "RSSI", "NAME", "OFFERS", "USABLE"]
    assert "C0:FF:EE:00:00:01" in lines[1] and "heart-rate" in lines[1] and lines[1].endswith("yes")
    assert "11:22:33:44:55:66" in lines[2] and lines[2].endswith("no")
    assert "no BLE devices found" in format_scan_results([])


def test_an_event_stamped_ahead_of_the_clock_is_shown_in_data_time() -> None:
    from edge.ui import event_time

    now = 1_800_000_000.0
    assert event_time(now - 5.0, started=now - 60.0, now=now) == time.strftime(
        "%H:%M:%S", time.localtime(now - 5.0))
    # a replay at 60x: the record says 2 h 3 min 4 s after the start, the clock says 2 min
    assert event_time(now - 120.0 + 7384.0, started=now - 120.0, now=now) == "data +2:03:04"
