"""A synthetic resident's activity epochs: regular days, optionally fragmented nights later."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.actigraphy import EpochSeries

if TYPE_CHECKING:
    from edge.activity.store import ActivityStore

START = datetime(2024, 3, 4)  # a Monday, midnight


def resident_epochs(days: int = 14, *, fragmented_from: int | None = None,
                    less_daylight_from: int | None = None, seed: int = 0,
                    start: datetime = START) -> EpochSeries:
    """60 s epochs: asleep about 22:30-06:30, active by day, 2 h of daylight at 10:30.

    From day ``fragmented_from`` (0-based) each night has 6-8 awakenings of 8-20 min; from
    ``less_daylight_from`` the daylight walk is gone.
    """
    rng = np.random.default_rng(seed)
    per_day = 1440
    act = np.empty(days * per_day)
    lux = np.empty(days * per_day)
    minute = np.arange(per_day)
    for d in range(days):
        onset = 22 * 60 + 30 + int(rng.integers(-20, 21))
        wake = 6 * 60 + 30 + int(rng.integers(-20, 21))
        asleep = (minute >= onset) | (minute < wake)
        day = rng.gamma(2.0, 150.0, per_day) * (1 + 0.5 * np.sin(np.pi * (minute - 360) / 960))
        night = np.where(rng.random(per_day) < 0.04, rng.integers(5, 40, per_day), 0)
        a = np.where(asleep, night, day)
        if fragmented_from is not None and d >= fragmented_from:
            for _ in range(int(rng.integers(6, 9))):
                t = int(rng.integers(0, 7 * 60)) if rng.random() < 0.8 else int(rng.integers(23 * 60, 1440 - 25))
                a[t : t + int(rng.integers(8, 21))] = rng.integers(150, 400)
        light = np.where(asleep, 0.0, 250.0)
        if less_daylight_from is None or d < less_daylight_from:
            light[10 * 60 + 30 : 12 * 60 + 30] = 3000.0
        act[d * per_day : (d + 1) * per_day] = a
        lux[d * per_day : (d + 1) * per_day] = light
    return EpochSeries(start, 60, act, lux)


def stored_resident(directory: Path, days: int = 14, *, resident: str = "ada",
                    device: str = "dev-1", **kw: int) -> ActivityStore:
    """:func:`resident_epochs` (seed 1, from :data:`START`) written to a hub database in
    ``directory``, as the daemon stores epochs; the store is left open."""
    from edge.activity.daily import local_midnight
    from edge.activity.epochs import ActivityEpoch
    from edge.activity.store import ActivityStore

    series = resident_epochs(days, seed=1, **kw)
    t0 = local_midnight(START.date())
    light = series.light if series.light is not None else np.full(series.n, np.nan)
    store = ActivityStore(directory / "edge.db")
    store.write_epochs([ActivityEpoch(resident, device, t0 + 60.0 * i, 60, (int(a), 0, 0),
                                      float(a), float(light[i]))
                        for i, a in enumerate(series.activity)])
    return store
