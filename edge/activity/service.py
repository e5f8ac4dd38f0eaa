"""Actigraphy beside the pipeline: each device's raw tap -> stored epochs -> a report each day.

The daemon holds one :class:`ActivityService` (when ``[actigraphy] enabled`` and the database
is on). For each device it hands the ingest a raw tap (:meth:`ActivityService.tap`), which
turns the wrist accelerometer's samples into count epochs (:mod:`edge.activity.epochs`)
before the model's windows are cut, whether or not a model uses them.

Epochs are written to the database (:mod:`edge.activity.store`) in batches by one worker
thread, so the event loop never waits on SQLite. When a wearer's epochs pass local midnight
of data time, the day that ended is closed on the same worker (:func:`~edge.activity.daily.
close_day`), after the writes queued before it: its ``activity_day`` event and any new
``activity_trend`` events come back to the loop and go out through ``emit``, the daemon's
one event path, so every sink (and the carer outputs) gets them.

A write that fails (disk full, a locked file) keeps its epochs for the next write, up to
:data:`MAX_UNWRITTEN`; beyond that the oldest are dropped, counted. At shutdown
(:meth:`ActivityService.close`) the taps are flushed, the last epochs written and the
queued work finished within the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.errors import WearableEdgeError
from edge.activity.daily import DayOutcome, close_day, local_midnight
from edge.activity.epochs import ActivityEpoch, DeviceActivity
from edge.activity.options import ActigraphyOptions
from edge.activity.store import ActivityStore
from edge.decisions import Event, Wearer
from firmware_bridge.protocol import SensorInfo

__all__ = ["MAX_UNWRITTEN", "ActivityService", "RawTap"]

log = logging.getLogger(__name__)

RawTap = Callable[[SensorInfo, np.ndarray, np.ndarray], None]

WRITE_BATCH: Final = 512  # epochs per write when they come fast (a sped-up simulation)
# ...else at most this long after the first waits: an epoch a minute per wearer needs no
# more than a transaction every half minute, which an SD card appreciates
WRITE_INTERVAL_S: Final = 30.0
# epochs kept while the database refuses writes: a week of four wearers at 60 s epochs
MAX_UNWRITTEN: Final = 40_000


class ActivityService:
    """See the module docstring. Loop-side methods run on the event loop."""

    def __init__(self, opts: ActigraphyOptions, db_path: str | Path, *,
                 emit: Callable[[Event], None], tz: tzinfo | None = None) -> None:
        self.opts = opts
        self.tz = tz
        self._emit = emit
        self._store = ActivityStore(db_path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activity")
        self._devices: dict[str, DeviceActivity] = {}
        self._pending: list[ActivityEpoch] = []
        self._seen_day: dict[str, date] = {}  # wearer -> local date of their latest epoch
        self._jobs: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.counters: Counter[str] = Counter()  # the loop's
        self._lock = threading.Lock()
        self._worker_counters: Counter[str] = Counter()  # the worker's (under _lock)
        self._unwritten: list[ActivityEpoch] = []  # the worker's: a failed write's epochs

    # -- loop side ----------------------------------------------------------------------------
    def tap(self, device: str, wearer: Wearer, to_wall: Callable[[float], float]) -> RawTap:
        """The raw tap for ``device`` (hand it to its ingest)."""
        act = DeviceActivity(device, wearer, to_wall, epoch_s=self.opts.epoch_s)
        self._devices[device] = act

        def on_samples(info: SensorInfo, t: np.ndarray, raw: np.ndarray) -> None:
            epochs = act.on_samples(info, t, raw)
            if epochs:
                self._take(epochs)

        return on_samples

    def _take(self, epochs: list[ActivityEpoch]) -> None:
        for e in epochs:
            day = datetime.fromtimestamp(e.t, self.tz).date()
            seen = self._seen_day.get(e.resident)
            if seen is None or day > seen:
                self._seen_day[e.resident] = day
                if seen is not None:  # midnight has passed: close the day that ended
                    self._flush()
                    self._close_day(e.resident, e.device, day - timedelta(days=1),
                                    local_midnight(day, self.tz))
            self._pending.append(e)
        if len(self._pending) >= WRITE_BATCH:
            self._flush()
        elif self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WRITE_INTERVAL_S, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._submit(self._write, batch)

    def _close_day(self, resident: str, device: str, day: date, now: float) -> None:
        self.counters["days_queued"] += 1
        job = functools.partial(close_day, self._store, resident, device, day, self.opts,
                                now=now, tz=self.tz)
        fut = self._submit(self._guarded_close, job)
        fut.add_done_callback(self._on_closed)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, fn, *args)
        self._jobs.add(fut)
        fut.add_done_callback(self._jobs.discard)
        return fut

    def _on_closed(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        outcome: DayOutcome | None = fut.result()
        if outcome is None:
            return  # failed; counted and logged on the worker
        if outcome.skipped:
            self.counters[f"days_skipped_{outcome.skipped}"] += 1
            return
        self.counters["days_closed"] += 1
        self.counters["epochs_expired"] += outcome.epochs_expired
        for ev in outcome.events:
            self.counters[f"events_{ev.kind}"] += 1
            self._emit(ev)

    async def close(self, timeout_s: float) -> None:
        """Flush every tap, write what is left, finish queued days (within ``timeout_s``)."""
        if self._closed:
            return
        self._closed = True
        for act in self._devices.values():
            epochs = act.flush()
            if epochs:
                self._take(epochs)
        self._flush()
        jobs = list(self._jobs)
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=timeout_s)
            if pending:
                self.counters["jobs_unfinished_at_shutdown"] += len(pending)
                log.error("actigraphy: %d database jobs unfinished after %.1f s", len(pending),
                          timeout_s)
        unwritten = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._close_store)
        if unwritten:
            self.counters["epochs_lost_at_shutdown"] += unwritten
            log.error("actigraphy: %d epochs could not be written before shutdown", unwritten)
        self._executor.shutdown(wait=False)

    def health(self) -> dict[str, Any]:
        """Counters: the taps', the loop's and the worker's."""
        h: Counter[str] = Counter()
        for act in self._devices.values():
            h.update(act.counters)
        h.update(self.counters)
        with self._lock:
            h.update(self._worker_counters)
        return dict(h)

    # -- worker side ------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._worker_counters[key] += n

    def _write(self, batch: list[ActivityEpoch]) -> None:
        todo = self._unwritten + batch
        try:
            self._store.write_epochs(todo)
        except (sqlite3.Error, OSError) as e:
            self._count("write_failures")
            log.error("actigraphy: cannot write %d epochs (%s); keeping them", len(todo), e)
            with contextlib.suppress(sqlite3.Error, OSError):
                self._store.close()  # a fresh connection on the next try
            drop = max(0, len(todo) - MAX_UNWRITTEN)
            if drop:
                self._count("epochs_dropped_unwritable", drop)
            self._unwritten = todo[drop:]
            return
        self._unwritten = []
        self._count("epochs_stored", len(todo))

    def _guarded_close(self, job: Callable[[], DayOutcome]) -> DayOutcome | None:
        if self._unwritten:
            self._write([])  # the day is read from the database: try its epochs once more
        try:
            return job()
        except (sqlite3.Error, OSError, WearableEdgeError) as e:
            self._count("day_failures")
            log.error("actigraphy: closing a day failed: %s", e)
            with contextlib.suppress(sqlite3.Error, OSError):
                self._store.close()
            return None

    def _close_store(self) -> int:
        if self._unwritten:
            self._write([])
        self._store.close()
        return len(self._unwritten)
