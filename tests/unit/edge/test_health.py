"""edge.health: the summary as strict JSON and the health line (pure parts; the gathering
runs in every daemon test)."""

from __future__ import annotations

import json
import math

from edge.health import format_health, summary_json


def test_summary_json_is_strict_json_with_no_figure_yet_as_null() -> None:
    s = {"decisions": 3, "latency_p50_ms": math.nan, "per_device": {"d": {"drift": math.inf}},
         "agreement": None, "devices": ("r1", "r2")}
    text = summary_json(s)
    back = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert back == {"decisions": 3, "latency_p50_ms": None, "per_device": {"d": {"drift": None}},
                    "agreement": None, "devices": ["r1", "r2"]}


def test_health_line_names_drops_and_backlog() -> None:
    line = format_health({
        "devices": 2, "source": {"items": 10, "queue": 1}, "samples": 99,
        "windows": {"valid": 4, "invalid_gap": 1}, "decisions": 4,
        "drops": {"lost_packets": 3, "engine_errors": 0},
        "inference": {"queue": 0, "latency_p50_ms": 1.25, "latency_p99_ms": math.nan},
        "sinks": {"sqlite": {"pending": 5}}, "rss_mb": 100.0, "tasks": 7, "fds": 12,
    })
    assert line.startswith("health: devices=2 packets=10 samples=99 windows=4+1invalid")
    assert "drops=lost_packets=3 " in line and "engine_errors" not in line
    assert "infer_p50=1.2ms infer_p99=-ms" in line and "sinks=sqlite=5" in line
