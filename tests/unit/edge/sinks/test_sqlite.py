"""edge.sinks.sqlite on real files: WAL, batches, retention, owner-only, disk full, schema version."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from edge.sinks import SqliteSink, open_database
from edge.sinks.sqlite import SCHEMA_VERSION
from tests.fakes.records import decision, event


def _rows(db: Path, table: str) -> list[sqlite3.Row]:
    conn = open_database(db, readonly=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        conn.close()


def test_sqlite_writes_decisions_and_events_with_the_documented_columns(tmp_path: Path) -> None:
    db = tmp_path / "state" / "edge.db"
    sink = SqliteSink(db, commit_interval_s=0.05)
    sink.start()
    for i in range(10):
        sink.submit(decision(i))
    sink.submit(event())
    assert sink.flush(10.0)
    assert sink.close(10.0) == 0

    rows = _rows(db, "decisions")
    assert [r["window_index"] for r in rows] == list(range(10))
    r = rows[3]
    assert (r["resident"], r["device"], r["state"], r["model_id"]) == ("r1", "dev-1", "stress",
                                                                       "model-x")
    assert json.loads(r["probabilities"]) == {"baseline": 0.3, "stress": 0.7}
    assert json.loads(r["p_instant"]) == {"baseline": 0.25, "stress": 0.75}
    (ev,) = _rows(db, "events")
    assert ev["kind"] == "battery_low" and json.loads(ev["detail"]) == {"percent": 12.0}


def test_sqlite_settings_wal_index_and_owner_only_permissions(tmp_path: Path) -> None:
    db = tmp_path / "new-dir" / "edge.db"
    sink = SqliteSink(db, commit_interval_s=0.05)
    sink.start()
    sink.submit(decision(0))
    assert sink.flush(10.0)
    # while the daemon holds it: WAL mode, and every file SQLite made is owner-only
    for f in (db, db.with_name("edge.db-wal"), db.with_name("edge.db-shm")):
        assert f.exists(), f
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    sink.close(10.0)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(decisions)")}
        assert "decisions_t" in indexes
        plan = " ".join(str(r) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM decisions WHERE t > 5"))
        assert "decisions_t" in plan
    finally:
        conn.close()


def test_sqlite_commits_in_batches(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    sink = SqliteSink(db, batch_size=50, commit_interval_s=30.0)
    sink.start()
    for i in range(120):
        sink.submit(decision(i))
    # two full batches go out without waiting for the interval; 20 wait for the next commit
    deadline = time.monotonic() + 10
    while sink.stats.snapshot().get("written", 0) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.stats.snapshot()["written"] == 100
    assert sink.pending() == 20
    assert sink.close(10.0) == 0  # close writes the remainder
    assert len(_rows(db, "decisions")) == 120
    assert sink.stats.snapshot()["batches"] == 3


def test_sqlite_retention_deletes_old_rows_at_open(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    old = time.time() - 40 * 86400
    sink = SqliteSink(db, retention_days=1000, commit_interval_s=0.05)
    sink.start()
    sink.submit(decision(0, t=old))
    sink.submit(decision(1))
    sink.submit(event(t=old))
    sink.close(10.0)
    assert len(_rows(db, "decisions")) == 2
    sink = SqliteSink(db, retention_days=30, commit_interval_s=0.05)
    sink.start()
    assert sink.flush(10.0)
    sink.close(10.0)
    assert [r["window_index"] for r in _rows(db, "decisions")] == [1]
    assert _rows(db, "events") == []
    assert sink.stats.snapshot()["expired"] == 2


def _fill(db: Path, mb: float) -> None:
    """Fill the database with filler events to about ``mb`` MiB (another writer, same file)."""
    conn = open_database(db)
    with conn:
        conn.executemany(
            "INSERT INTO events (resident, device, t, kind, detail) VALUES (?, ?, ?, ?, ?)",
            [("filler", "x", time.time(), "filler", "x" * 3000) for _ in range(int(mb * 350))],
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_sqlite_disk_full_keeps_records_reports_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    _fill(db, 1.0)
    size_mb = db.stat().st_size / 2**20
    faults: list[tuple[str, str | None]] = []
    sink = SqliteSink(db, max_mb=size_mb, commit_interval_s=0.02, retry_max_s=0.2,
                      on_fault=lambda name, err: faults.append((name, err)))
    sink.start()
    for i in range(200):
        sink.submit(decision(i))
    deadline = time.monotonic() + 10
    while not faults and time.monotonic() < deadline:
        time.sleep(0.01)
    assert faults and faults[0][0] == "sqlite" and "full" in (faults[0][1] or "")
    assert sink.fault is not None
    assert sink.pending() == 200  # nothing lost while failing
    # space returns: someone deletes the filler (freed pages are reused within the cap)
    conn = open_database(db)
    with conn:
        conn.execute("DELETE FROM events WHERE kind = 'filler'")
    conn.close()
    assert sink.flush(20.0)
    assert faults[-1] == ("sqlite", None)  # recovery reported
    assert sink.close(10.0) == 0
    assert [r["window_index"] for r in _rows(db, "decisions")] == list(range(200))
    assert sink.stats.snapshot()["write_failures"] >= 1


def test_sqlite_refuses_a_database_of_an_unknown_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="schema version 99"):
        open_database(db)


def test_sqlite_stores_derived_heart_rate_and_migrates_a_version_1_database(
        tmp_path: Path) -> None:
    from dataclasses import replace

    db = tmp_path / "edge.db"
    conn = sqlite3.connect(db)  # a database the daemon wrote before the derived columns
    conn.executescript("""
        CREATE TABLE decisions (id INTEGER PRIMARY KEY, resident TEXT NOT NULL,
            device TEXT NOT NULL, t REAL NOT NULL, state TEXT NOT NULL,
            probabilities TEXT NOT NULL, raw TEXT NOT NULL, model_id TEXT NOT NULL,
            window_start REAL, window_end REAL, window_index INTEGER, label TEXT,
            latency_ms REAL);
        INSERT INTO decisions (resident, device, t, state, probabilities, raw, model_id)
            VALUES ('old', 'dev-0', 1.0, 'baseline', '{}', '{}', 'wrist');
        PRAGMA user_version=1;""")
    conn.close()
    sink = SqliteSink(db, commit_interval_s=0.05, retention_days=0)
    sink.start()
    sink.submit(replace(decision(1), derived={"hr_bpm": 72.4, "rmssd_ms": 35.25}))
    sink.submit(decision(2))  # a wrist model's decision: no heart rate of its own
    assert sink.flush(10.0) and sink.close(10.0) == 0
    rows = _rows(db, "decisions")
    assert [(r["resident"], r["hr_bpm"], r["rmssd_ms"]) for r in rows] == [
        ("old", None, None), ("r1", 72.4, 35.25), ("r1", None, None)]
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()
    assert json.loads(json.dumps(replace(decision(1), derived={"hr_bpm": 72.44}).to_dict()))[
        "derived"] == {"hr_bpm": 72.4}


def test_a_version_2_database_keeps_its_rows_under_p_instant(tmp_path: Path) -> None:
    """The column that held unsmoothed class probabilities was called ``raw``: renamed in
    place, the old rows readable under the new name, new rows beside them."""
    db = tmp_path / "edge.db"
    conn = sqlite3.connect(db)  # the schema of version 2, as the daemon wrote it
    conn.executescript("""
        CREATE TABLE decisions (id INTEGER PRIMARY KEY, resident TEXT NOT NULL,
            device TEXT NOT NULL, t REAL NOT NULL, state TEXT NOT NULL,
            probabilities TEXT NOT NULL, raw TEXT NOT NULL, model_id TEXT NOT NULL,
            window_start REAL, window_end REAL, window_index INTEGER, label TEXT,
            latency_ms REAL, hr_bpm REAL, rmssd_ms REAL);
        CREATE TABLE events (id INTEGER PRIMARY KEY, resident TEXT NOT NULL,
            device TEXT NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
        INSERT INTO decisions (resident, device, t, state, probabilities, raw, model_id)
            VALUES ('old', 'dev-0', 1.0, 'stress', '{"stress": 0.7}', '{"stress": 0.9}', 'wrist');
        PRAGMA user_version=2;""")
    conn.close()
    sink = SqliteSink(db, commit_interval_s=0.05, retention_days=0)
    sink.preflight()  # the daemon's start-up opens (and so migrates) it first
    sink.start()
    sink.submit(decision(1))
    assert sink.flush(10.0) and sink.close(10.0) == 0
    rows = _rows(db, "decisions")
    assert "raw" not in rows[0]
    assert [json.loads(r["p_instant"]) for r in rows] == [
        {"stress": 0.9}, {"baseline": 0.25, "stress": 0.75}]
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    check.close()


def test_open_waits_out_another_connections_write_to_switch_to_wal(tmp_path: Path) -> None:
    # the hub's threads open one file together at start: the journal-mode change must wait
    # for another connection's write (SQLite answers it "locked" at once otherwise)
    import threading

    from edge.sinks.sqlite import open_database

    path = tmp_path / "edge.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    commit = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    commit.start()
    conn = open_database(path)
    commit.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    other.close()
