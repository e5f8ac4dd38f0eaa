"""Store-and-forward: MQTT messages wait in the hub's SQLite database until the broker acks them.

Tables, in the same database file as the decisions (``edge.sinks.sqlite.open_database``:
WAL, ``synchronous=NORMAL``, owner-only), versioned by ``mqtt_meta.schema_version`` =
:data:`OUTBOX_SCHEMA_VERSION` (the decisions tables keep ``PRAGMA user_version``)::

    mqtt_outbox(seq, resident, priority, topic, payload JSON, retain, created)
    mqtt_wearers(resident, device, heart_rate, first_seen, last_seen)
    mqtt_meta(key, value)        schema_version, epoch, dropped_total, dropped_unreported

A message is written here first and deleted only after the broker's PUBACK, so it survives
a broker outage, a restart and a SIGKILL (a committed row is durable in WAL mode). ``seq``
is ``AUTOINCREMENT``: never reused, so the message id ``<epoch>-<seq>`` that every payload
carries is unique for the life of the database and a consumer can drop QoS-1 duplicates by
it. Rows are published in ``seq`` order, which keeps each wearer's order.

The backlog is bounded (``backlog_max`` rows): beyond it the oldest derived states are
deleted first, then the oldest events; alerts never (:class:`~.messages.Priority`). Every
deleted row is counted (``dropped_total``, and ``dropped_unreported`` until the publisher
has told the broker).

An :class:`Outbox` is one SQLite connection: use each instance from one thread (the sink's
writer thread and the publisher's executor each open their own).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.sinks.mqtt.messages import OutMessage, Priority
from edge.sinks.mqtt.topics import HUB
from edge.sinks.sqlite import open_database

__all__ = ["OUTBOX_SCHEMA_VERSION", "Outbox", "OutboxRow", "Wearer"]

OUTBOX_SCHEMA_VERSION: Final = 1  # bump with a migration when a column changes meaning

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS mqtt_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mqtt_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    resident TEXT NOT NULL,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,  -- '' publishes an empty payload (deletes a retained one)
    retain INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mqtt_outbox_priority_seq ON mqtt_outbox (priority, seq);
CREATE TABLE IF NOT EXISTS mqtt_wearers (
    resident TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    heart_rate INTEGER NOT NULL DEFAULT 0,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    resident: str
    topic: str
    payload: bytes  # the stored JSON object with "id" first
    retain: bool
    priority: int

    @property
    def is_alert(self) -> bool:
        return self.priority >= Priority.ALERT


@dataclass(frozen=True, slots=True)
class Wearer:
    resident: str
    device: str
    heart_rate: bool


class Outbox:
    """The outbox tables over one connection (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, backlog_max: int = 50_000) -> None:
        self.path = Path(path)
        self.backlog_max = backlog_max
        self._conn: sqlite3.Connection | None = None
        self.epoch = ""
        self.rows = 0  # rows in the outbox after this connection's last put/ack (health)

    # -- lifetime ----------------------------------------------------------------------------
    def open(self) -> None:
        if self._conn is not None:
            return
        conn = open_database(self.path)
        try:
            with conn:
                conn.executescript(_SCHEMA)
                conn.executemany("INSERT OR IGNORE INTO mqtt_meta (key, value) VALUES (?, ?)", [
                    ("schema_version", str(OUTBOX_SCHEMA_VERSION)),
                    ("epoch", secrets.token_hex(4)),
                    ("dropped_total", "0"),
                    ("dropped_unreported", "0"),
                ])
            meta = dict(conn.execute("SELECT key, value FROM mqtt_meta").fetchall())
            if meta["schema_version"] != str(OUTBOX_SCHEMA_VERSION):
                raise sqlite3.DatabaseError(
                    f"{self.path} has MQTT outbox schema version {meta['schema_version']}; "
                    f"this daemon writes {OUTBOX_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        self.epoch = meta["epoch"]
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

    # -- the writer's side ---------------------------------------------------------------------
    def put(self, messages: Sequence[OutMessage], *, retire: Sequence[str] = ()) -> int:
        """Store ``messages`` in one transaction, enforce the bound; the rows dropped.

        ``retire``: wearers to forget in the same transaction (their removal messages are
        among ``messages``), so a crash cannot leave one removed but still announced.
        """
        if not messages and not retire:
            return 0
        now = time.time()
        conn = self.conn
        dropped = 0
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO mqtt_outbox (resident, priority, topic, payload, retain, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(m.resident, int(m.priority), m.topic, _json(m.body), int(m.retain), now)
                     for m in messages],
                )
                seen: dict[str, tuple[str, bool]] = {}
                for m in messages:
                    if m.resident != HUB:
                        hr = seen.get(m.resident, ("", False))[1] or m.heart_rate
                        seen[m.resident] = (m.device, hr)
                conn.executemany(
                    "INSERT INTO mqtt_wearers (resident, device, heart_rate, first_seen, last_seen)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (resident) DO UPDATE SET"
                    " device = excluded.device, last_seen = excluded.last_seen,"
                    " heart_rate = max(heart_rate, excluded.heart_rate)",
                    [(r, d, int(hr), now, now) for r, (d, hr) in seen.items()],
                )
                conn.executemany("DELETE FROM mqtt_wearers WHERE resident = ?",
                                 [(r,) for r in retire])
                dropped = self._enforce_bound(conn)
        except sqlite3.Error:
            if conn.in_transaction:
                conn.rollback()
            raise
        return dropped

    def _enforce_bound(self, conn: sqlite3.Connection) -> int:
        self.rows = int(conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0])
        excess = self.rows - self.backlog_max
        dropped = 0
        for priority in (Priority.STATE, Priority.EVENT):  # never Priority.ALERT
            if excess <= 0:
                break
            n = conn.execute(
                "DELETE FROM mqtt_outbox WHERE seq IN (SELECT seq FROM mqtt_outbox"
                " WHERE priority = ? ORDER BY seq LIMIT ?)", (int(priority), excess)).rowcount
            excess -= n
            dropped += n
        self.rows -= dropped
        if dropped:
            conn.execute("UPDATE mqtt_meta SET value = CAST(value AS INTEGER) + ?"
                         " WHERE key IN ('dropped_total', 'dropped_unreported')", (dropped,))
        return dropped

    # -- the publisher's side ------------------------------------------------------------------
    def peek(self, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` rows, payloads ready to send (with their message id)."""
        rows = self.conn.execute(
            "SELECT seq, resident, topic, payload, retain, priority FROM mqtt_outbox"
            " ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [OutboxRow(seq, resident, topic, self._with_id(seq, payload), bool(retain),
                          priority) for seq, resident, topic, payload, retain, priority in rows]

    def _with_id(self, seq: int, payload: str) -> bytes:
        if not payload:
            return b""  # a deletion (an empty retained payload) carries nothing, not even an id
        head = f'{{"id":"{self.epoch}-{seq}"'
        rest = payload[1:]  # the stored JSON object without its opening brace
        return (head + ("," if rest != "}" else "") + rest).encode("utf-8")

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete the rows the broker acknowledged; how many were still there."""
        ids = [(s,) for s in seqs]
        if not ids:
            return 0
        with self.conn:
            cur = self.conn.executemany("DELETE FROM mqtt_outbox WHERE seq = ?", ids)
        return cur.rowcount

    def count(self) -> int:
        self.rows = int(self.conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0])
        return self.rows

    def wearers(self) -> list[Wearer]:
        rows = self.conn.execute(
            "SELECT resident, device, heart_rate FROM mqtt_wearers ORDER BY resident").fetchall()
        return [Wearer(r, d, bool(hr)) for r, d, hr in rows]

    def wearer(self, resident: str) -> Wearer | None:
        row = self.conn.execute("SELECT resident, device, heart_rate FROM mqtt_wearers"
                                " WHERE resident = ?", (resident,)).fetchone()
        return None if row is None else Wearer(row[0], row[1], bool(row[2]))

    def dropped(self) -> tuple[int, int]:
        """(dropped in total, dropped and not yet reported to the broker)."""
        meta = dict(self.conn.execute(
            "SELECT key, value FROM mqtt_meta WHERE key LIKE 'dropped_%'").fetchall())
        return int(meta["dropped_total"]), int(meta["dropped_unreported"])

    def reported(self, n: int) -> None:
        """``n`` dropped rows have been reported (a hub event reached the broker)."""
        with self.conn:
            self.conn.execute("UPDATE mqtt_meta SET value = max(0, CAST(value AS INTEGER) - ?)"
                              " WHERE key = 'dropped_unreported'", (n,))


def _json(body: dict[str, Any] | None) -> str:
    """The stored payload: a compact JSON object, or '' for an empty (deleting) payload."""
    return "" if body is None else json.dumps(body, separators=(",", ":"), allow_nan=False)
