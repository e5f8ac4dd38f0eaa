"""edge.activity.store: the activity tables in the hub's database, versioned and owner-only."""

from __future__ import annotations

import math
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from core.actigraphy import MEASURES, DailyMeasures
from edge.activity.epochs import ActivityEpoch
from edge.activity.store import ACTIVITY_SCHEMA_VERSION, ActivityStore, StoredDay
from edge.sinks.sqlite import SCHEMA_VERSION


def epoch(t: float, vm: float = 10.0, light: float | None = None, who: str = "ada") -> ActivityEpoch:
    return ActivityEpoch(who, "dev", t, 60, (int(vm), 0, 0), vm, light)


def test_epochs_round_trip_in_time_order_and_a_repeat_replaces(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    st = ActivityStore(db)
    st.write_epochs([epoch(180.0, 3), epoch(60.0, 1, 250.0), epoch(120.0, 2), epoch(60.0, 9, None,
                                                                                   "bob")])
    st.write_epochs([epoch(120.0, 5)])  # the same epoch again (a replayed recording)
    rows = st.epochs("ada", 0, 1e9)
    assert rows is not None and rows.epoch_s == 60
    assert rows.t.tolist() == [60.0, 120.0, 180.0] and rows.vm.tolist() == [1.0, 5.0, 3.0]
    assert rows.light is not None and rows.light[0] == 250.0 and math.isnan(rows.light[1])
    assert st.epochs("ada", 200.0, 1e9) is None
    assert st.epoch_span("ada") == (60.0, 180.0) and st.residents() == ["ada", "bob"]
    assert st.expire_epochs("ada", 130.0) == 2
    st.close()
    assert db.stat().st_mode & 0o777 == 0o600  # the hub's database: owner-only
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # decisions' own
    assert conn.execute("SELECT value FROM activity_meta WHERE key = 'schema_version'"
                        ).fetchone()[0] == str(ACTIVITY_SCHEMA_VERSION)
    plan = " ".join(str(r) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT t FROM activity_epochs WHERE resident = 'a' AND t >= 1"))
    assert "USING PRIMARY KEY" in plan  # range reads use the index
    conn.close()


def test_days_keep_unknown_values_as_unknown_and_trends_are_recorded_once(tmp_path: Path) -> None:
    st = ActivityStore(tmp_path / "edge.db")
    values = dict.fromkeys(MEASURES, math.nan) | {"IS": 0.61, "total_sleep_min": 412.0}
    d = date(2024, 3, 5)
    st.put_days("ada", [StoredDay("ada", d, DailyMeasures(d, values), {"waso_min": 20.0})],
                epoch_s=60, updated=1.0)
    (back,) = st.days("ada")
    assert back.day == d and back.night == {"waso_min": 20.0}
    assert back.measures.get("IS") == 0.61 and math.isnan(back.measures.get("IV"))
    assert st.last_day("ada") == d and st.last_day("bob") is None
    detail = {"measure": "waso_min", "day": "2024-03-07", "first_day": "2024-03-05"}
    assert st.add_trend("ada", "waso_min", d, date(2024, 3, 7), detail, 2.0)
    assert not st.add_trend("ada", "waso_min", d, date(2024, 3, 8), detail, 3.0)
    assert st.trends("ada") == [detail]
    st.close()


def test_a_newer_schema_is_refused_and_a_reader_never_creates_tables(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    first = ActivityStore(db)
    first.open()
    first.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE activity_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="activity schema version 99"):
        ActivityStore(db).open()
    plain = tmp_path / "decisions-only.db"
    sqlite3.connect(plain).close()
    with pytest.raises(sqlite3.OperationalError):
        ActivityStore(plain, readonly=True).open()
