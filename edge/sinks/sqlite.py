"""The decisions database: SQLite in WAL mode, batched commits, a time index, retention.

Tables (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    decisions(id, resident, device, t, state, probabilities JSON, p_instant JSON, model_id,
              window_start, window_end, window_index, label, latency_ms, hr_bpm, rmssd_ms)
    events(id, resident, device, t, kind, detail JSON)

``t`` is hub wall-clock epoch seconds; ``probabilities`` the smoothed class probabilities
and ``p_instant`` the window's own, unsmoothed (both ``{"class": p}``: class probabilities,
never a sensor value); ``hr_bpm`` and ``rmssd_ms`` the window's heart rate and RMSSD when
its model reads RR intervals (NULL otherwise), derived values like the rest. Nothing else is
stored: no sample, no RR interval. An older database is migrated in place when opened:
version 1 gains the two derived columns, version 2's ``raw`` column (a name a privacy
auditor reads as raw signal) becomes ``p_instant``, its rows kept.

Why these settings: WAL lets a reader (a dashboard, ``sqlite3`` in a shell) read while the
daemon writes; ``synchronous=NORMAL`` in WAL mode survives a process crash (SIGKILL) with
every committed transaction intact and costs one fsync per checkpoint rather than per
commit, which an SD card appreciates; commits are batched for the same reason.
The file is created owner-only (0600) before SQLite opens it; SQLite gives the -wal and
-shm files the database file's permissions.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from edge.decisions import Decision, Event
from edge.errors import SinkError
from edge.sinks.base import FaultCallback, Record, ThreadedSink

__all__ = ["SCHEMA_VERSION", "SqliteSink", "open_database"]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 3  # bump with a migration when a column changes meaning
# version -> statements that bring a database of that version to the next
_MIGRATIONS: Final = {
    1: ("ALTER TABLE decisions ADD COLUMN hr_bpm REAL",
        "ALTER TABLE decisions ADD COLUMN rmssd_ms REAL"),
    # SQLite >= 3.25 (Bookworm ships 3.40): a rename in place, rows and indexes kept
    2: ("ALTER TABLE decisions RENAME COLUMN raw TO p_instant",),
}
BUSY_TIMEOUT_MS: Final = 5000  # a reader holding a lock briefly must not fail a commit

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    device TEXT NOT NULL,
    t REAL NOT NULL,
    state TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    p_instant TEXT NOT NULL,
    model_id TEXT NOT NULL,
    window_start REAL,
    window_end REAL,
    window_index INTEGER,
    label TEXT,
    latency_ms REAL,
    hr_bpm REAL,
    rmssd_ms REAL
);
CREATE INDEX IF NOT EXISTS decisions_t ON decisions (t);
CREATE INDEX IF NOT EXISTS decisions_resident_t ON decisions (resident, t);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    device TEXT NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_t ON events (t);
CREATE INDEX IF NOT EXISTS events_resident_t ON events (resident, t);
"""


_CREATE_LOCK: Final = threading.Lock()


def _create_private(path: Path) -> None:
    """Create ``path`` (and its directory) owner-only if missing; tighten an existing file."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # never open and close the file when it exists: closing any descriptor of it drops every
    # POSIX lock this process holds on it, SQLite's too, and another process's connection
    # then thinks it is the last one and deletes the WAL under this one's feet
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        os.chmod(path, 0o600)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out another connection's lock: SQLite answers a journal-mode
    change during another connection's write with "database is locked" at once, without its
    busy handler, and the hub's threads (sinks, activity, personal store) open the file
    together at start."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_database(
    path: str | os.PathLike[str], *, readonly: bool = False, max_mb: float = 0.0
) -> sqlite3.Connection:
    """Open (creating owner-only if needed) the decisions database with the hub's settings.

    Also the way tests, tools and dashboards read it (``readonly=True``). ``max_mb`` > 0
    caps the file (``PRAGMA max_page_count``): beyond it writes fail as SQLITE_FULL.
    """
    p = Path(path)
    if readonly:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        return conn
    with _CREATE_LOCK:  # a file created here is closed before another thread's SQLite opens it
        _create_private(p)
        conn = sqlite3.connect(p, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        _wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if max_mb > 0:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={max(1, int(max_mb * 2**20 / page))}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, *_MIGRATIONS, SCHEMA_VERSION):
            raise sqlite3.DatabaseError(
                f"{p} has schema version {version}; this daemon writes {SCHEMA_VERSION}"
            )
        with conn:
            while version in _MIGRATIONS:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteSink(ThreadedSink):
    """Decisions and events into SQLite, on the sink's own thread, committed in batches."""

    name = "sqlite"
    transient_errors = (OSError, sqlite3.Error)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_days: float = 30.0,
        max_mb: float = 0.0,
        buffer_max: int = 20000,
        batch_size: int = 256,
        commit_interval_s: float = 2.0,
        retry_max_s: float = 30.0,
        on_fault: FaultCallback | None = None,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            buffer_max=buffer_max,
            batch_size=batch_size,
            interval_s=commit_interval_s,
            retry_max_s=retry_max_s,
            on_fault=on_fault,
            spill_path=spill_path,
        )
        self.path = Path(path)
        self.retention_days = retention_days
        self.max_mb = max_mb
        self._conn: sqlite3.Connection | None = None

    @property
    def where(self) -> str:
        return str(self.path)

    def preflight(self) -> None:
        # open (create, migrate) and close once before the run: a database that cannot be
        # written at all fails start-up here, not as every decision lost at the end
        if self.path.is_dir():
            raise SinkError(f"the database {self.path} is a folder; give a file path such as "
                            f"{self.path / 'edge.db'} (--db)", sink=self.name, path=str(self.path))
        try:
            open_database(self.path, max_mb=self.max_mb).close()
        except (OSError, sqlite3.Error) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise SinkError(f"cannot write the database {self.path}: {why} (is its folder "
                            "writable by this user and not on a read-only file system? "
                            "--db or --state-dir choose another place)",
                            sink=self.name, path=str(self.path)) from e

    def _open(self) -> None:
        self._conn = open_database(self.path, max_mb=self.max_mb)
        self._apply_retention()

    def _write_batch(self, batch: Sequence[Record]) -> None:
        conn = self._conn
        assert conn is not None  # _open ran first on this thread
        decisions = [r for r in batch if isinstance(r, Decision)]
        events = [r for r in batch if isinstance(r, Event)]
        try:
            with conn:  # one transaction per batch: all of it or none of it
                if decisions:
                    conn.executemany(
                        "INSERT INTO decisions (resident, device, t, state, probabilities, p_instant,"
                        " model_id, window_start, window_end, window_index, label, latency_ms,"
                        " hr_bpm, rmssd_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                d.resident,
                                d.device,
                                d.t,
                                d.state,
                                json.dumps(d.probabilities),
                                json.dumps(d.raw),
                                d.model_id,
                                d.window_start,
                                d.window_end,
                                d.window_index,
                                d.label,
                                None if d.latency_ms != d.latency_ms else d.latency_ms,
                                d.derived.get("hr_bpm"),
                                d.derived.get("rmssd_ms"),
                            )
                            for d in decisions
                        ],
                    )
                if events:
                    conn.executemany(
                        "INSERT INTO events (resident, device, t, kind, detail)"
                        " VALUES (?, ?, ?, ?, ?)",
                        [(e.resident, e.device, e.t, e.kind, json.dumps(e.detail)) for e in events],
                    )
        except sqlite3.Error:
            # `with conn` rolled back; make sure no half-open transaction survives the retry
            if conn.in_transaction:
                conn.rollback()
            raise

    def _periodic(self) -> None:
        self._apply_retention()

    def _apply_retention(self) -> None:
        if self.retention_days <= 0 or self._conn is None:
            return
        cutoff = time.time() - self.retention_days * 86400.0
        with self._conn:
            n = self._conn.execute("DELETE FROM decisions WHERE t < ?", (cutoff,)).rowcount
            m = self._conn.execute("DELETE FROM events WHERE t < ?", (cutoff,)).rowcount
        if n or m:
            self.stats.inc("expired", n + m)
            log.info("retention: deleted %d decisions and %d events older than %g days",
                     n, m, self.retention_days)

    def _close_resources(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
