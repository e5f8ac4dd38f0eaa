"""The history read back in words and as JSON, from a database the SQLite sink wrote."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from edge.decisions import Decision, Event
from edge.history import HistoryError, history_json, history_lines, parse_since
from edge.sinks import SqliteSink
from edge.sinks.mqtt.messages import OutMessage, Priority
from edge.sinks.mqtt.outbox import Outbox

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
P = {"baseline": 0.7, "stress": 0.2, "amusement": 0.1}


def write(db: Path, records: list[Decision | Event]) -> None:
    sink = SqliteSink(db, retention_days=0)
    sink.start()
    for r in records:
        sink.submit(r)
    assert sink.close(10.0) == 0


def run(resident: str, start: float, states: list[tuple[str, int]]) -> list[Decision | Event]:
    out: list[Decision | Event] = []
    t = start
    for state, n in states:
        for _ in range(n):
            out.append(Decision(resident, f"dev-{resident}", t, state, P, P, "m", 0, 60, 0))
            t += 5.0
    return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "edge.db"
    records = run("anna", T0, [("baseline", 60), ("stress", 150), ("baseline", 12)])
    records += run("anna", T0 + 3 * 3600, [("amusement", 24)])  # after a 2-hour gap
    records += run("bob", T0, [("baseline", 10)])
    records += [
        Event("anna", "dev-anna", T0 + 300 + 600, "alert",
              {"rule": "sustained_stress", "minutes": 10.0,
               "message": "anna has been stressed for 10 min"}),
        Event("anna", "dev-anna", T0 + 100, "state_change", {"to": "baseline"}),
        Event("anna", "dev-anna", T0 + 110, "data_gap", {"sensor": "bvp", "lost_packets": 2}),
        Event("anna", "dev-anna", T0 + 2000, "battery_low", {"percent": 12.0}),
        Event("hub", "hub", T0 + 50, "sink_fault", {"sink": "mqtt", "error": "away"}),
        Event("hub", "hub", T0 + 3000, "source_lost", {"source": "ble", "silent_s": 60.0}),
        Event("hub", "hub", T0 + 3300, "source_restored", {"source": "ble"}),
    ]
    write(path, records)
    return path


def test_episodes_time_in_state_and_events_in_words(db: Path) -> None:
    lines = history_lines(db, since_s=None, now=T0 + 4 * 3600, tz=dt.UTC)
    text = "\n".join(lines)
    assert lines[0] == "History of everything stored, up to 2023-11-15 02:13"
    assert "anna (wearable dev-anna): 246 decisions from 14 Nov 22:13 to 15 Nov 01:15" in text
    assert "  22:13–22:18   calm (baseline) for 5 min" in lines
    assert "  22:18–22:30   stressed for 12 min" in lines
    assert "  22:28         ALERT: anna has been stressed for 10 min" in lines
    assert "  22:46         battery low (12 %)" in lines
    assert " Wednesday 15 November 2023" in lines  # the day changes before the amused hour
    assert "  01:13–01:15   amused for 2 min" in lines
    assert "(1 short data gaps not listed)" in text and "state_change" not in text
    assert "The hub" in lines and "  22:14         hub: output mqtt failing (away)" in lines
    assert "  23:03         hub: the ble source went silent (1 min without data)" in lines
    assert "  23:08         hub: the ble source delivers again" in lines
    assert text.index("anna (") < text.index("bob (") < text.index("The hub")


def test_since_and_wearer_filter(db: Path) -> None:
    lines = history_lines(db, "anna", since_s=1800, now=T0 + 3 * 3600 + 60, tz=dt.UTC)
    text = "\n".join(lines)
    assert "the last 30 min" in lines[0] and "(wearer anna)" in lines[0]
    assert "amused" in text and "stressed" not in text and "bob" not in text
    empty = history_lines(db, "carl", since_s=60, now=T0, tz=dt.UTC)
    assert "nothing stored in this period for 'carl'." in empty[-1]


def test_json_form(db: Path) -> None:
    data = history_json(db, since_s=None, now=T0 + 4 * 3600)
    json.dumps(data)  # plain data
    anna = next(w for w in data["wearers"] if w["resident"] == "anna")
    assert [e["state"] for e in anna["episodes"]] == ["baseline", "stress", "baseline",
                                                      "amusement"]
    assert anna["episodes"][1]["decisions"] == 150
    assert anna["time_in_state_s"]["stress"] == 750.0
    assert [e["kind"] for e in anna["events"]] == ["alert", "battery_low"]
    assert anna["not_listed"] == {"state_change": 1, "data_gap": 1}
    assert data["mqtt_waiting"] is None


def test_mqtt_backlog_is_mentioned(db: Path) -> None:
    ob = Outbox(db)
    ob.put([OutMessage("anna", "d", "t", {"x": 1}, retain=False, priority=Priority.STATE)] * 3)
    ob.close()
    assert history_lines(db, now=T0)[-1] == "MQTT: 3 messages wait in the outbox for the broker"
    assert history_json(db, now=T0)["mqtt_waiting"] == 3


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"no database at .*pass --db PATH"):
        history_lines(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).close()
    with pytest.raises(HistoryError, match="not a wearable-edge database"):
        history_lines(other)


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400.0), ("30m", 1800.0),
                                               ("7d", 604800.0), ("2", 7200.0), ("1w", 604800.0),
                                               ("1.5h", 5400.0), ("90s", 90.0)])
def test_parse_since(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "0h", "3x", "1 day"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(HistoryError, match="30m, 24h or 7d"):
        parse_since(text)
