"""edge.personal.labels: times people type, states the model knows, and the span an
answered alert labels."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from edge.personal.labels import LabelError, alert_span, check_span, check_state, parse_time
from edge.sinks.sqlite import open_database

CLASSES = ("baseline", "stress", "amusement")
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-2h", NOW - 7200),
        ("-30m", NOW - 1800),
        ("-90s", NOW - 90),
        ("-1d", NOW - 86400),
        ("- 1.5h", NOW - 5400),
    ],
)
def test_relative_times(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == pytest.approx(expected)


def test_local_iso_time_is_the_hubs_local_time() -> None:
    expected = datetime(2026, 12, 7, 14, 30).astimezone().timestamp()
    assert parse_time("2026-12-07T14:30", now=NOW) == expected
    assert parse_time("2026-12-07 14:30", now=NOW) == expected
    today = datetime.fromtimestamp(NOW).astimezone().replace(hour=9, minute=5, second=0)
    assert parse_time("9:05", now=NOW) == today.timestamp()
    assert (
        parse_time("2026-12-07T14:30+00:00", now=NOW)
        == datetime.fromisoformat("2026-12-07T14:30+00:00").timestamp()
    )


@pytest.mark.parametrize("text", ["yesterday", "2h", "-2x", "", "14h30"])
def test_bad_time_is_one_line_naming_the_flag(text: str) -> None:
    with pytest.raises(LabelError) as e:
        parse_time(text, now=NOW, flag="--to")
    assert str(e.value).startswith("--to ") and "\n" not in str(e.value)


def test_span_checks() -> None:
    check_span(NOW - 60, NOW, now=NOW)
    with pytest.raises(LabelError, match="before"):
        check_span(NOW, NOW - 60, now=NOW)
    with pytest.raises(LabelError, match="days"):
        check_span(NOW - 30 * 86400, NOW, now=NOW)
    with pytest.raises(LabelError, match="future"):
        check_span(NOW, NOW + 3600, now=NOW)


def test_state_must_be_a_class_name() -> None:
    assert check_state("stress", CLASSES) == "stress"
    with pytest.raises(LabelError, match="baseline, stress, amusement"):
        check_state("anxious", CLASSES)


def _db_with_alerts(path: Path) -> Path:
    conn = open_database(path)
    rows = [
        ("anna", "d1", 1000.0, "alert", {"rule": "sustained_stress", "minutes": 10.0}),
        ("anna", "d1", 1300.0, "alert_cleared", {"rule": "sustained_stress", "minutes": 15.0}),
        ("ben", "d2", 2000.0, "alert", {"rule": "sustained_stress", "minutes": 12.0}),
        ("ben", "d2", 2100.0, "alert", {"rule": "no_contact", "minutes": 10.0}),
        ("ben", "d2", 2200.0, "state_change", {"from": "baseline", "to": "stress"}),
    ]
    with conn:
        conn.executemany(
            "INSERT INTO events (resident, device, t, kind, detail) VALUES (?,?,?,?,?)",
            [(r, d, t, k, json.dumps(x)) for r, d, t, k, x in rows],
        )
    conn.close()
    return path


def test_confirmed_alert_labels_its_span_stress_until_it_cleared(tmp_path: Path) -> None:
    db = _db_with_alerts(tmp_path / "edge.db")
    span = alert_span(db, 1, yes=True, state=None, class_names=CLASSES)
    assert (span.resident, span.t_from, span.t_to, span.state) == ("anna", 400.0, 1300.0, "stress")
    assert span.source == "alert:1:yes"
    uncleared = alert_span(db, 3, yes=True, state=None, class_names=CLASSES)
    assert (uncleared.t_from, uncleared.t_to) == (2000.0 - 720.0, 2000.0)


def test_denied_alert_labels_baseline_or_the_named_state(tmp_path: Path) -> None:
    db = _db_with_alerts(tmp_path / "edge.db")
    assert alert_span(db, 1, yes=False, state=None, class_names=CLASSES).state == "baseline"
    assert alert_span(db, 1, yes=False, state="amusement", class_names=CLASSES).state == "amusement"
    with pytest.raises(LabelError, match="another state"):
        alert_span(db, 1, yes=False, state="stress", class_names=CLASSES)


@pytest.mark.parametrize(
    ("alert_id", "match"), [(4, "no_contact alert"), (5, "no such alert"), (99, "no such alert")]
)
def test_unanswerable_alerts_are_refused(tmp_path: Path, alert_id: int, match: str) -> None:
    db = _db_with_alerts(tmp_path / "edge.db")
    with pytest.raises(LabelError, match=match):
        alert_span(db, alert_id, yes=True, state=None, class_names=CLASSES)


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no database"):
        alert_span(tmp_path / "none.db", 1, yes=True, state=None, class_names=CLASSES)
