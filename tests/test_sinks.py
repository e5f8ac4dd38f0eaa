"""Sinks on real files: SQLite (WAL, batches, retention, owner-only, disk full), JSON lines, log."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge.decisions import Decision, Event
from edge.sinks import JsonLinesSink, LogSink, SqliteSink, ThreadedSink, open_database
from edge.sinks.base import Record


def _decision(i: int, t: float | None = None, resident: str = "r1") -> Decision:
    return Decision(
        resident=resident,
        device="dev-1",
        t=time.time() if t is None else t,
        state="stress" if i % 2 else "baseline",
        probabilities={"baseline": 0.3, "stress": 0.7},
        raw={"baseline": 0.25, "stress": 0.75},
        model_id="model-x",
        window_start=float(i * 5),
        window_end=float(i * 5 + 60),
        window_index=i,
        latency_ms=1.25,
    )


def _event(kind: str = "battery_low", t: float | None = None) -> Event:
    return Event("r1", "dev-1", time.time() if t is None else t, kind, {"percent": 12.0})


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
        sink.submit(_decision(i))
    sink.submit(_event())
    assert sink.flush(10.0)
    assert sink.close(10.0) == 0

    rows = _rows(db, "decisions")
    assert [r["window_index"] for r in rows] == list(range(10))
    r = rows[3]
    assert (r["resident"], r["device"], r["state"], r["model_id"]) == ("r1", "dev-1", "stress",
                                                                       "model-x")
    assert json.loads(r["probabilities"]) == {"baseline": 0.3, "stress": 0.7}
    assert json.loads(r["raw"]) == {"baseline": 0.25, "stress": 0.75}
    (ev,) = _rows(db, "events")
    assert ev["kind"] == "battery_low" and json.loads(ev["detail"]) == {"percent": 12.0}


def test_sqlite_settings_wal_index_and_owner_only_permissions(tmp_path: Path) -> None:
    db = tmp_path / "new-dir" / "edge.db"
    sink = SqliteSink(db, commit_interval_s=0.05)
    sink.start()
    sink.submit(_decision(0))
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
        sink.submit(_decision(i))
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
    sink.submit(_decision(0, t=old))
    sink.submit(_decision(1))
    sink.submit(_event(t=old))
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
        sink.submit(_decision(i))
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


class _Flaky(ThreadedSink):
    """Fails its first ``n`` writes with an OSError (what a pulled USB stick looks like)."""

    name = "flaky"

    def __init__(self, n: int, **kw: float | int) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures_left = n
        self.written: list[Record] = []
        self.lock = threading.Lock()

    def _write_batch(self, batch: Sequence[Record]) -> None:
        with self.lock:
            if self.failures_left:
                self.failures_left -= 1
                raise OSError(5, "Input/output error")
            self.written.extend(batch)


def test_failing_sink_buffer_is_bounded_and_drops_oldest_counted() -> None:
    sink = _Flaky(10**9, buffer_max=50, batch_size=10, interval_s=0.0, retry_max_s=0.05)
    sink.start()
    for i in range(80):
        sink.submit(_decision(i))
    assert sink.stats.snapshot()["dropped_buffer_full"] == 30
    assert sink.pending() <= 50
    with sink.lock:
        sink.failures_left = 0
    assert sink.flush(10.0)
    sink.close(5.0)
    # the 30 oldest were dropped (counted); the newest 50 arrived, in order
    assert [d.window_index for d in sink.written] == list(range(30, 80))  # type: ignore[union-attr]


def test_close_reports_what_could_not_be_written() -> None:
    sink = _Flaky(10**9, buffer_max=100, batch_size=10, interval_s=0.0, retry_max_s=0.05)
    sink.start()
    for i in range(7):
        sink.submit(_decision(i))
    assert sink.close(0.3) == 7
    assert sink.stats.snapshot()["lost_at_close"] == 7


def test_jsonl_to_a_stream_one_object_per_line() -> None:
    out = io.StringIO()
    sink = JsonLinesSink(stream=out)
    sink.start()
    sink.submit(_decision(1))
    sink.submit(_event("no_contact"))
    assert sink.flush(5.0)
    sink.close(5.0)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["type"] for x in lines] == ["decision", "event"]
    assert lines[0]["state"] == "stress" and lines[1]["kind"] == "no_contact"


def test_jsonl_file_is_appended_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "out" / "decisions.jsonl"
    for _ in range(2):
        sink = JsonLinesSink(path)
        sink.start()
        sink.submit(_decision(0))
        sink.close(5.0)
    assert len(path.read_text().splitlines()) == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_log_sink_logs_events_and_state(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink(decisions_at_info=True)
    with caplog.at_level(logging.INFO, logger="edge.decisions"):
        sink.submit(_event("sustained_stress"))
        sink.submit(_decision(1))
    text = caplog.text
    assert "sustained_stress" in text and "stress" in text and "window 1" in text
    assert caplog.records[0].levelno == logging.WARNING
