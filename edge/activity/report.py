"""What the hub stored about a wearer's activity, read back for people (``edge-trends --db``).

:func:`read_activity` opens the database read-only (safe while the daemon writes) and returns,
per wearer, the stored days (the hub's daily rows), the trend events the hub raised, and the
epochs of the same weeks as a series (for the actogram; its sleep is scored again from them,
with the same kernel call the hub uses).
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.actigraphy import EpochSeries, score_sleep
from core.actigraphy.wear import mask_nonwear
from edge.activity.daily import local_midnight
from edge.activity.store import ActivityStore, StoredDay
from edge.errors import EdgeError

__all__ = ["ActivityReadError", "StoredTrend", "WearerActivity", "read_activity"]


class ActivityReadError(EdgeError):
    """The database cannot be read as the hub's activity (missing, not ours, nothing stored)."""


@dataclass(frozen=True)
class StoredTrend:
    """A trend event as the hub raised it (the plot marks ``day`` with ``measure``)."""

    measure: str
    day: date
    first_day: date
    message: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class WearerActivity:
    resident: str
    days: list[StoredDay]  # the last weeks, in day order
    trends: list[StoredTrend]  # every trend event raised for the wearer
    series: EpochSeries | None  # the same weeks' epochs (None: expired or never stored)
    sleep: np.ndarray | None  # (series.n,) 1 sleep, 0 wake, -1 not scored


def read_activity(db: str | os.PathLike[str], wearer: str | None = None, *, days: int = 28,
                  nonwear_min: float = 120.0) -> list[WearerActivity]:
    """The last ``days`` days of each wearer (or of ``wearer``); raises ActivityReadError."""
    path = Path(db)
    if not path.is_file():
        raise ActivityReadError(f"no database at {path}: the daemon has stored nothing there "
                                "yet (pass --db PATH)")
    store = ActivityStore(path, readonly=True)
    try:
        store.open()
        names = store.residents()
        if wearer is not None:
            if wearer not in names:
                known = ", ".join(names) or "none"
                raise ActivityReadError(f"no activity stored for {wearer!r} (wearers: {known})")
            names = [wearer]
        if not names:
            raise ActivityReadError(f"{path} holds no activity yet: the daemon stores it once "
                                    "a wearable with an accelerometer has been read")
        return [_wearer(store, name, days, nonwear_min) for name in names]
    except sqlite3.Error as e:
        raise ActivityReadError(f"{path} has no activity tables the hub can read ({e})") from None
    finally:
        store.close()


def _wearer(store: ActivityStore, name: str, days: int, nonwear_min: float) -> WearerActivity:
    stored = store.days(name)[-days:]
    trends = [StoredTrend(d["measure"], date.fromisoformat(d["day"]),
                          date.fromisoformat(d["first_day"]), str(d.get("message", "")), d)
              for d in store.trends(name)]
    series = sleep = None
    span = store.epoch_span(name)
    if span is not None:
        last = stored[-1].day if stored else date.fromtimestamp(span[1])
        t0 = local_midnight(last - timedelta(days=days - 1))
        rows = store.epochs(name, t0, math.inf)
        if rows is not None:
            series = mask_nonwear(EpochSeries.from_epochs(rows.t, rows.vm, epoch_s=rows.epoch_s,
                                                          light=rows.light),
                                  nonwear_min * 60.0)
            sleep = score_sleep(series)
    return WearerActivity(name, stored, trends, series, sleep)
