"""Activity in the hub's database: count epochs, each day's measures, the trend events raised.

Tables, in the same SQLite file as the decisions (``edge.sinks.sqlite.open_database``: WAL,
``synchronous=NORMAL``, owner-only), versioned by ``activity_meta.schema_version`` =
:data:`ACTIVITY_SCHEMA_VERSION` (the decisions tables keep ``PRAGMA user_version``)::

    activity_epochs(resident, device, t, epoch_s, count_x, count_y, count_z, vm, light)
    activity_days(resident, day, epoch_s, measures JSON, night JSON, updated)
    activity_trends(resident, measure, first_day, day, detail JSON, t)
    activity_meta(key, value)

All derived data: an epoch holds ActiGraph counts (a sum over 30 or 60 s of band-passed,
rectified movement) and a mean lux, from which no sample can be recovered. ``t`` is the
epoch's start in hub wall-clock Unix seconds (virtual when a simulation is sped up); each
table's primary key is its index (``(resident, t, device)`` serves every range read).
Epochs are kept ``history_days``; a wearer's days and trend events are kept (they hold the
wearer's baseline and what carers were told).

An :class:`ActivityStore` is one connection: use it from one thread (the daemon's activity
worker writes and analyses; readers such as ``edge-trends report --db`` open their own,
read-only).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.actigraphy import MEASURES, DailyMeasures
from edge.activity.epochs import ActivityEpoch
from edge.sinks.sqlite import open_database

__all__ = ["ACTIVITY_SCHEMA_VERSION", "ActivityStore", "EpochRows", "StoredDay"]

ACTIVITY_SCHEMA_VERSION: Final = 1  # bump with a migration when a column changes meaning

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS activity_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activity_epochs (
    resident TEXT NOT NULL,
    device TEXT NOT NULL,
    t REAL NOT NULL,
    epoch_s INTEGER NOT NULL,
    count_x INTEGER NOT NULL,
    count_y INTEGER NOT NULL,
    count_z INTEGER NOT NULL,
    vm REAL NOT NULL,
    light REAL,
    PRIMARY KEY (resident, t, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity_days (
    resident TEXT NOT NULL,
    day TEXT NOT NULL,
    epoch_s INTEGER NOT NULL,
    measures TEXT NOT NULL,
    night TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (resident, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity_trends (
    resident TEXT NOT NULL,
    measure TEXT NOT NULL,
    first_day TEXT NOT NULL,
    day TEXT NOT NULL,
    detail TEXT NOT NULL,
    t REAL NOT NULL,
    PRIMARY KEY (resident, measure, first_day)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class EpochRows:
    """One wearer's stored epochs in time order (arrays of equal length)."""

    t: np.ndarray  # epoch starts, Unix seconds
    vm: np.ndarray
    light: np.ndarray | None  # NaN where an epoch had none; None when no epoch had any
    epoch_s: int


@dataclass(frozen=True)
class StoredDay:
    """One stored day: the measures (NaN when unknown) and the night starting that evening."""

    resident: str
    day: date
    measures: DailyMeasures
    night: dict[str, Any] | None


def _json_number(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


class ActivityStore:
    """The activity tables over one connection (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None

    # -- lifetime ----------------------------------------------------------------------------
    def open(self) -> None:
        """Open (creating the tables if needed); raises sqlite3.DatabaseError on a newer schema."""
        if self._conn is not None:
            return
        conn = open_database(self.path, readonly=self.readonly)
        try:
            if not self.readonly:
                with conn:
                    conn.executescript(_SCHEMA)
                    conn.execute("INSERT OR IGNORE INTO activity_meta (key, value) VALUES (?, ?)",
                                 ("schema_version", str(ACTIVITY_SCHEMA_VERSION)))
            row = conn.execute(
                "SELECT value FROM activity_meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != str(ACTIVITY_SCHEMA_VERSION):
                raise sqlite3.DatabaseError(
                    f"{self.path} has activity schema version {row and row[0]}; this hub "
                    f"reads and writes {ACTIVITY_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return self._conn

    # -- epochs ------------------------------------------------------------------------------
    def write_epochs(self, epochs: Sequence[ActivityEpoch]) -> None:
        """All of ``epochs`` in one transaction (an epoch stored again replaces the old row)."""
        conn = self.conn
        try:
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO activity_epochs (resident, device, t, epoch_s,"
                    " count_x, count_y, count_z, vm, light) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(e.resident, e.device, e.t, e.epoch_s, *e.counts, e.vm, e.light)
                     for e in epochs])
        except sqlite3.Error:
            if conn.in_transaction:
                conn.rollback()
            raise

    def epochs(self, resident: str, t0: float, t1: float) -> EpochRows | None:
        """``resident``'s epochs starting in ``[t0, t1)``, or None if there are none.

        Epochs of another length than the latest one's are left out (a changed
        ``epoch_s``: one series has one epoch length).
        """
        rows = self.conn.execute(
            "SELECT t, vm, light, epoch_s FROM activity_epochs WHERE resident = ? AND t >= ?"
            " AND t < ? ORDER BY t", (resident, t0, t1)).fetchall()
        if not rows:
            return None
        epoch_s = int(rows[-1][3])
        rows = [r for r in rows if int(r[3]) == epoch_s]
        t = np.array([r[0] for r in rows], dtype=float)
        vm = np.array([r[1] for r in rows], dtype=float)
        light = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=float)
        return EpochRows(t, vm, None if np.all(np.isnan(light)) else light, epoch_s)

    def epoch_span(self, resident: str) -> tuple[float, float] | None:
        """First and last epoch start of ``resident``, or None."""
        row = self.conn.execute("SELECT min(t), max(t) FROM activity_epochs WHERE resident = ?",
                                (resident,)).fetchone()
        return None if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def expire_epochs(self, resident: str, before: float) -> int:
        """Delete ``resident``'s epochs that start before ``before``; how many."""
        with self.conn:
            return self.conn.execute("DELETE FROM activity_epochs WHERE resident = ? AND t < ?",
                                     (resident, before)).rowcount

    def residents(self) -> list[str]:
        """Every wearer with stored epochs or days."""
        rows = self.conn.execute("SELECT resident FROM activity_epochs UNION"
                                 " SELECT resident FROM activity_days ORDER BY 1").fetchall()
        return [str(r[0]) for r in rows]

    # -- days ---------------------------------------------------------------------------------
    def put_days(self, resident: str, days: Sequence[StoredDay], *, epoch_s: int,
                 updated: float) -> None:
        """Insert or replace ``resident``'s rows for these days, in one transaction."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO activity_days (resident, day, epoch_s, measures, night,"
                " updated) VALUES (?, ?, ?, ?, ?, ?)",
                [(resident, d.day.isoformat(), epoch_s,
                  json.dumps({k: _json_number(d.measures.get(k)) for k in MEASURES}),
                  None if d.night is None else json.dumps(d.night), updated) for d in days])

    def days(self, resident: str) -> list[StoredDay]:
        """Every stored day of ``resident``, in day order."""
        out = []
        for day, measures, night in self.conn.execute(
                "SELECT day, measures, night FROM activity_days WHERE resident = ?"
                " ORDER BY day", (resident,)):
            d = date.fromisoformat(day)
            raw = json.loads(measures)
            values = {k: math.nan if raw.get(k) is None else float(raw[k]) for k in MEASURES}
            out.append(StoredDay(resident, d, DailyMeasures(d, values),
                                 None if night is None else json.loads(night)))
        return out

    def last_day(self, resident: str) -> date | None:
        row = self.conn.execute("SELECT max(day) FROM activity_days WHERE resident = ?",
                                (resident,)).fetchone()
        return None if row is None or row[0] is None else date.fromisoformat(row[0])

    # -- trend events -------------------------------------------------------------------------
    def add_trend(self, resident: str, measure: str, first_day: date, day: date,
                  detail: dict[str, Any], t: float) -> bool:
        """Record a trend event; False if this one (same measure and first day) is known."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO activity_trends (resident, measure, first_day, day,"
                " detail, t) VALUES (?, ?, ?, ?, ?, ?)",
                (resident, measure, first_day.isoformat(), day.isoformat(), json.dumps(detail),
                 t))
            return cur.rowcount == 1

    def trends(self, resident: str) -> list[dict[str, Any]]:
        """``resident``'s recorded trend events (their published detail), by day."""
        rows = self.conn.execute("SELECT detail FROM activity_trends WHERE resident = ?"
                                 " ORDER BY day, measure", (resident,)).fetchall()
        return [json.loads(r[0]) for r in rows]
