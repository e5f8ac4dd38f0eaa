"""The hub's personalization tables: confirmed labels, cached embeddings and personal heads.

They live in the hub's own SQLite database (``edge.db``, beside the decisions) and never
leave the hub: an embedding is derived from a resident's signals and a label says how they
felt, so neither is published to MQTT, the JSONL stream or a fleet (ARCHITECTURE.md rule 8)::

    embeddings(id, resident, model_id, model_version, t_start, t_end, emb BLOB)
                                                    one row per decided window
    labels(id, resident, t_from, t_to, state, source, created)      spans people confirmed
    personal_heads(resident, model_id, model_version, head BLOB, chosen, shared_f1,
                   personal_f1, n_fit, n_holdout, n_labels, created)  the last fit per wearer

An embedding is only comparable with others of the same model body, so embeddings and heads
are kept per ``model_version``: a new bundle starts its wearers' personal heads afresh.
Times are the decisions' (``t`` of the window's decision, hub epoch seconds).

``emb`` is the float32 vector's bytes; ``head`` an ``.npz`` of W and b. A window takes the
state of the newest label whose span holds the window's middle (a later correction wins).
The tables are created on first use; the decisions schema (``edge.sinks.sqlite``) is
untouched, so a database of an older daemon opens as before.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from edge.sinks.sqlite import open_database

__all__ = [
    "EmbeddingRow",
    "EmbeddingWriter",
    "LabelRow",
    "PersonalStore",
    "StoredHead",
]

log = logging.getLogger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    emb BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_resident_t ON embeddings (resident, model_id, t_end);
CREATE INDEX IF NOT EXISTS embeddings_t ON embeddings (t_end);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    resident TEXT NOT NULL,
    t_from REAL NOT NULL,
    t_to REAL NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_resident ON labels (resident, t_from);
CREATE TABLE IF NOT EXISTS personal_heads (
    resident TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    head BLOB NOT NULL,
    chosen INTEGER NOT NULL,
    shared_f1 REAL,
    personal_f1 REAL,
    n_fit INTEGER NOT NULL,
    n_holdout INTEGER NOT NULL,
    n_labels INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (resident, model_id, model_version)
);
"""
WRITE_BATCH: Final = 256  # embeddings per transaction: one fsync per batch on an SD card
WRITE_INTERVAL_S: Final = 2.0  # and at least this often, so a crash loses seconds, not minutes


@dataclass(frozen=True)
class LabelRow:
    id: int
    resident: str
    t_from: float
    t_to: float
    state: str
    source: str  # "manual", or "alert:<id>:yes" / "alert:<id>:no"
    created: float


@dataclass(frozen=True)
class EmbeddingRow:
    resident: str
    model_id: str
    model_version: str
    t_start: float
    t_end: float
    emb: np.ndarray  # (D,) float32


@dataclass(frozen=True)
class StoredHead:
    resident: str
    model_id: str
    model_version: str
    W: np.ndarray
    b: np.ndarray
    chosen: bool
    shared_f1: float
    personal_f1: float
    n_fit: int
    n_holdout: int
    n_labels: int  # confirmed-label windows when it was fitted (refit when this grows)
    created: float


def head_bytes(W: np.ndarray, b: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, W=np.asarray(W, np.float32), b=np.asarray(b, np.float32))
    return buf.getvalue()


def head_arrays(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return z["W"].astype(np.float32), z["b"].astype(np.float32)


class PersonalStore:
    """Labels, embeddings and personal heads in the hub database (one connection; use it
    from one thread at a time, or open one per thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._conn = open_database(path)
        with self._conn:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PersonalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- labels ------------------------------------------------------------------------------
    def add_label(self, resident: str, t_from: float, t_to: float, state: str, source: str) -> int:
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO labels (resident, t_from, t_to, state, source, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (resident, t_from, t_to, state, source, time.time()),
            )
        return int(cur.lastrowid or 0)

    def labels(self, resident: str | None = None) -> list[LabelRow]:
        sql = "SELECT id, resident, t_from, t_to, state, source, created FROM labels"
        args: tuple[str, ...] = ()
        if resident is not None:
            sql, args = sql + " WHERE resident = ?", (resident,)
        return [LabelRow(*r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def residents_with_labels(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT resident FROM labels ORDER BY 1")]

    # -- embeddings --------------------------------------------------------------------------
    def add_embeddings(self, rows: list[EmbeddingRow]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT INTO embeddings (resident, model_id, model_version, t_start, t_end, emb)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.resident,
                        r.model_id,
                        r.model_version,
                        r.t_start,
                        r.t_end,
                        np.ascontiguousarray(r.emb, np.float32).tobytes(),
                    )
                    for r in rows
                ],
            )

    def count_embeddings(self, resident: str | None = None) -> int:
        if resident is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(
            self._conn.execute(
                "SELECT COUNT(*) FROM embeddings WHERE resident = ?", (resident,)
            ).fetchone()[0]
        )

    def labelled(
        self,
        resident: str | None,
        model_id: str,
        model_version: str,
        class_names: tuple[str, ...],
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(emb (N, D) float32, y (N,) int64, t_end (N,))`` of ``resident``'s (None: every
        wearer's) windows of that model body that a label covers, with ``since <= t_end <
        until``, oldest first; labels naming a state not in ``class_names`` are skipped."""
        if resident is None:
            parts = [
                self.labelled(r, model_id, model_version, class_names, since=since, until=until)
                for r in self.residents_with_labels()
            ]
            parts = [p for p in parts if len(p[1])]
            if not parts:
                return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0)
            order = np.argsort(np.concatenate([p[2] for p in parts]), kind="stable")
            return (
                np.concatenate([p[0] for p in parts])[order],
                np.concatenate([p[1] for p in parts])[order],
                np.concatenate([p[2] for p in parts])[order],
            )
        labels = [lb for lb in self.labels(resident) if lb.state in class_names]
        if not labels:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0)
        lo, hi = min(lb.t_from for lb in labels), max(lb.t_to for lb in labels)
        lo = max(lo, since) if since is not None else lo
        top = until if until is not None else float("inf")
        rows = self._conn.execute(
            "SELECT t_start, t_end, emb FROM embeddings WHERE resident = ? AND model_id = ?"
            " AND model_version = ? AND t_end >= ? AND t_start <= ? AND t_end < ?"
            " ORDER BY t_end, id",
            (resident, model_id, model_version, lo, hi, top),
        )
        embs, ys, ts = [], [], []
        for t_start, t_end, blob in rows:
            mid = 0.5 * (t_start + t_end)
            state = None
            for lb in labels:  # in id order: the newest covering label wins
                if lb.t_from <= mid <= lb.t_to:
                    state = lb.state
            if state is None:
                continue
            embs.append(np.frombuffer(blob, np.float32))
            ys.append(class_names.index(state))
            ts.append(t_end)
        if not embs:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0)
        return np.stack(embs), np.asarray(ys, np.int64), np.asarray(ts, np.float64)

    def prune(self, before: float) -> int:
        """Delete embeddings of windows that ended before ``before`` (epoch s)."""
        with self._conn:
            return int(
                self._conn.execute("DELETE FROM embeddings WHERE t_end < ?", (before,)).rowcount
            )

    # -- personal heads ----------------------------------------------------------------------
    def save_head(self, h: StoredHead) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO personal_heads (resident, model_id, model_version, head,"
                " chosen, shared_f1, personal_f1, n_fit, n_holdout, n_labels, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    h.resident,
                    h.model_id,
                    h.model_version,
                    head_bytes(h.W, h.b),
                    int(h.chosen),
                    h.shared_f1,
                    h.personal_f1,
                    h.n_fit,
                    h.n_holdout,
                    h.n_labels,
                    h.created,
                ),
            )

    def heads(self) -> list[StoredHead]:
        sql = (
            "SELECT resident, model_id, model_version, head, chosen, shared_f1, personal_f1,"
            " n_fit, n_holdout, n_labels, created FROM personal_heads"
        )
        out = []
        for r in self._conn.execute(sql):
            W, b = head_arrays(r[3])
            out.append(
                StoredHead(
                    r[0],
                    r[1],
                    r[2],
                    W,
                    b,
                    bool(r[4]),
                    float(r[5] or 0.0),
                    float(r[6] or 0.0),
                    int(r[7]),
                    int(r[8]),
                    int(r[9]),
                    float(r[10]),
                )
            )
        return out


class EmbeddingWriter:
    """Embeddings into the store on a thread of its own, in batches: the event loop only
    appends to a bounded deque (the oldest is dropped and counted when the disk falls behind)."""

    def __init__(self, path: str | os.PathLike[str], *, max_pending: int = 20000) -> None:
        self.path = path
        self.dropped = 0
        self.written = 0
        self._pending: deque[EmbeddingRow] = deque()
        self._max = max_pending
        self._cond = threading.Condition()
        self._stopping = False
        self._urgent = False
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="embeddings", daemon=True)
        self._thread.start()

    def submit(self, row: EmbeddingRow) -> None:
        with self._cond:
            if len(self._pending) >= self._max:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(row)
            if len(self._pending) >= WRITE_BATCH:
                self._cond.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (blocking) until what was submitted is written; True if it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while (self._pending or self._inflight) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            return not (self._pending or self._inflight)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        store = PersonalStore(self.path)
        try:
            while True:
                with self._cond:
                    if len(self._pending) < WRITE_BATCH and not self._stopping and not self._urgent:
                        self._cond.wait(WRITE_INTERVAL_S)
                    self._urgent = False
                    batch = [
                        self._pending.popleft() for _ in range(min(len(self._pending), WRITE_BATCH))
                    ]
                    stop = self._stopping and not self._pending
                    self._inflight = len(batch)
                if batch:
                    try:
                        store.add_embeddings(batch)
                        self.written += len(batch)
                    except sqlite3.Error as e:  # counted, and the daemon keeps deciding
                        self.dropped += len(batch)
                        log.error("embeddings not written (%d so far): %s", self.dropped, e)
                with self._cond:
                    self._inflight = 0
                    self._cond.notify_all()
                if stop:
                    return
        finally:
            store.close()
