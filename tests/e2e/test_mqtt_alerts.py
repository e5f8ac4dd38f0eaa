"""Alerts through the whole hub to a real broker: sustained stress, and the hub's own fault.

The daemon runs a simulated wearable with the demo bundle, its MQTT sink wired from the
configuration (``[mqtt] url``) as an operator sets it. Two settings make the alerts come
surely and at once: the demo wearer is calm throughout, so ``decisions.stress_class =
"baseline"`` makes calm the state the sustained-stress rule watches (threshold 0 minutes);
and a JSON-lines output pointed at a directory fails from the start, a sink fault that the
hub-unhealthy rule (threshold 0) turns into an alert. The witness is a subscriber to the
hub's topics; the database, the status file and ``edge-daemon history`` must say the same.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import apply_overrides, load_config
from edge.daemon import open_daemon
from edge.status_file import read_status
from tests.fakes.mosquitto import Collector, Mosquitto, require_mosquitto

pytestmark = pytest.mark.slow
BASE = "wearable-edge/testhub"


async def test_alerts_reach_their_topics_once_per_episode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_mosquitto()
    # opens, then every write fails (ENOSPC): a sink that breaks after start-up; a path
    # that cannot be opened at all now stops the start instead (issue 17)
    not_a_file = Path("/dev/full")
    state = tmp_path / "state"
    with Mosquitto(tmp_path / "broker") as broker:
        async with Collector(broker, f"{BASE}/#") as seen:
            cfg = apply_overrides(load_config(None), {
                "device": "sim", "speed": 100.0, "duration": 8.0, "state_dir": str(state),
                "resident": "anna", "health.status_line": "off", "sinks.log_decisions": False,
                "sinks.jsonl_path": str(not_a_file), "sinks.close_timeout_s": 3.0,
                "decisions.stress_class": "baseline",
                "alerts.sustained_stress_min": 0.0, "alerts.hub_unhealthy_min": 0.0,
                "mqtt.url": broker.url, "mqtt.hub_id": "testhub", "mqtt.keepalive_s": 5,
                "mqtt.retry_min_s": 0.1})
            summary = await open_daemon(cfg).run()
            await seen.wait_for("the hub's alert",
                                lambda: bool(seen.on(f"{BASE}/hub/alert")))

    assert summary["decisions"] > 40 and summary["sinks"]["mqtt"]["published"] > 40
    anna_alerts = [m.json() for m in seen.on(f"{BASE}/anna/alert")]
    raised = [a for a in anna_alerts if a["kind"] == "alert"]
    assert [a["detail"]["rule"] for a in raised] == ["sustained_stress"]  # one per episode
    assert raised[0]["resident"] == "anna" and "stressed" in raised[0]["detail"]["message"]
    assert seen.on(f"{BASE}/anna/sustained_stress")[0].json()["active"] is True
    assert seen.on(f"{BASE}/anna/battery")  # the wearable's battery, forwarded by the daemon

    hub = [m.json() for m in seen.on(f"{BASE}/hub/alert")]
    assert [(a["kind"], a["detail"]["rule"]) for a in hub][:1] == [("alert", "hub_unhealthy")]
    assert seen.on(f"{BASE}/hub/problem")[0].json()["active"] is True
    faults = [m.json() for m in seen.on(f"{BASE}/hub/event")]
    assert any(f["kind"] == "sink_fault" and f["detail"]["sink"].startswith("jsonl")
               for f in faults)

    conn = sqlite3.connect(f"file:{state / 'edge.db'}?mode=ro", uri=True)
    kinds = conn.execute("SELECT resident, kind, detail FROM events WHERE kind IN "
                         "('alert', 'sustained_stress')").fetchall()
    conn.close()
    stored = sorted((r, k, json.loads(d)["rule"]) for r, k, d in kinds)
    assert stored == [("anna", "alert", "sustained_stress"), ("hub", "alert", "hub_unhealthy")]

    report = read_status(state / "status.json")
    assert not report.running and report.data["stop_reason"] == "duration reached"
    assert report.data["wearers"][0]["resident"] == "anna"
    assert report.data["hub"]["problems"][0].startswith("output jsonl")

    assert main(["history", "--state-dir", str(state), "--since", "all"]) == 0
    out = capsys.readouterr().out
    assert "ALERT: anna has been stressed for" in out
    assert "ALERT: the hub has had a problem" in out
