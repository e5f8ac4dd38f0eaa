"""A 14-day simulated resident through the real daemon: counts, days, a trend, stored and sent.

``[sim] days = 14`` plays a wrist accelerometer (30 Hz) and a light sensor (0.1 Hz) of a
resident whose nights fragment from day 10, made as it is played. The daemon runs as
``edge-daemon --device sim --sim-days 14 --speed 1000000`` would (in-process, to read its
objects): no model fits an accelerometer-and-light wearable, so the samples reach only the
activity tap; the counts, the daily close after each midnight and the trend rules are the
hub's own, and the events leave through the daemon's one event path to the database and the
JSON-lines sink. Days of data at full speed: about half a minute on a quiet machine.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from edge.config import DaemonConfig, apply_overrides
from edge.daemon import open_daemon
from edge.trends import cli as trends_cli

pytestmark = pytest.mark.slow

DAYS = 14
FRAGMENTED_FROM = 10


async def test_fourteen_days_of_a_resident_end_in_measures_and_a_trend_event(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, jsonl = tmp_path / "edge.db", tmp_path / "events.jsonl"
    cfg = apply_overrides(DaemonConfig(), {
        "device": "sim", "sim.days": DAYS, "sim.fragment_sleep_from_day": FRAGMENTED_FROM,
        "speed": 1_000_000, "db": str(db), "state_dir": str(tmp_path / "state"),
        "sinks.jsonl_path": str(jsonl), "sinks.log_decisions": False,
        "health.status_line": "off",
    })
    daemon = open_daemon(cfg)
    summary = await daemon.run()

    assert summary["stop_reason"] == "source ended"
    assert summary["decisions"] == 0  # no model fits acc + light: the model was never asked
    act = summary["activity"]
    assert act["epochs_stored"] == act["activity_epochs"] >= DAYS * 1440 - 2
    assert "write_failures" not in act and "epochs_lost_at_shutdown" not in act
    assert act["days_closed"] >= DAYS - 2 and act["events_activity_trend"] >= 1
    # the peak of the whole test process, which also carries whatever earlier tests imported
    # (torch among them): the bound tells "streamed" from "14 days at 30 Hz held whole" (~0.9 GB
    # on top of the process), not a tight budget
    assert summary["peak_rss_mb"] < 700

    conn = sqlite3.connect(db)
    n, bad_grid, with_light = conn.execute(
        "SELECT count(*), sum(CAST(t AS INTEGER) % 60 != 0), count(light)"
        " FROM activity_epochs WHERE resident = 'sim-0'").fetchone()
    assert n == act["epochs_stored"] and bad_grid == 0 and with_light >= n - 10
    first_t = conn.execute("SELECT min(t) FROM activity_epochs").fetchone()[0]
    day0 = datetime.fromtimestamp(first_t).date()
    stored_days = [date.fromisoformat(r[0]) for r in conn.execute(
        "SELECT day FROM activity_days WHERE resident = 'sim-0' ORDER BY day")]
    assert stored_days[0] == day0 and len(stored_days) >= DAYS - 1
    events = [(k, json.loads(d)) for k, d in conn.execute(
        "SELECT kind, detail FROM events WHERE kind LIKE 'activity_%' ORDER BY id")]
    conn.close()

    days = [d for k, d in events if k == "activity_day"]
    assert len(days) == act["days_closed"]
    last = days[-1]
    assert 0 < last["IS"] <= 1 and 0 < last["IV"] < 2 and 0 < last["RA"] <= 1
    assert last["L5_start"] and last["M10_start"] and last["daylight_min"] > 60
    # the nights before the change are a healthy sleeper's, the last one is broken
    before = [d for d in days if date.fromisoformat(d["night"]) < day0 + timedelta(FRAGMENTED_FROM)]
    assert all(d["total_sleep_min"] > 360 for d in before)
    assert last["waso_min"] > 60 and last["awakenings"] >= 5
    trends = [d for k, d in events if k == "activity_trend"]
    assert trends and {t["measure"] for t in trends} <= {"waso_min", "total_sleep_min", "IV", "IS"}
    first = min(date.fromisoformat(t["first_day"]) for t in trends)
    assert first >= day0 + timedelta(FRAGMENTED_FROM - 1)  # no alarm before the change

    # the same events went to the JSON-lines sink, in the same order
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    sent = [(x["kind"], x["detail"]) for x in lines
            if x["type"] == "event" and x["kind"].startswith("activity_")]
    assert sent == events

    # and a person reads the weeks back from the database
    assert trends_cli.main(["report", "--db", str(db), "--wearer", "sim-0"]) == 0
    out = capsys.readouterr().out
    assert "sim-0: " in out and trends[0]["message"] in out
