"""The daily table trends read: one row per calendar day of rhythm, sleep and light measures.

Row ``d`` holds the rhythm of the ``rolling_days`` days ending with ``d`` (IS and IV need
several days; fewer than two give NaN), the main sleep period of the night that *starts* on
the evening of ``d``, and the light and activity of ``d`` itself (NaN when less than 90 % of
the day was worn). A value that cannot be measured is NaN, never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np

from core.actigraphy.rhythm import MIN_DAYS, rhythm_measures
from core.actigraphy.series import DAY_S, EpochSeries
from core.actigraphy.sleep import summarize_nights

__all__ = ["DAYLIGHT_LUX", "MEASURES", "ROLLING_DAYS", "DailyMeasures", "daily_table"]

ROLLING_DAYS: Final = 7  # a week: the shortest span with every weekday once
DAYLIGHT_LUX: Final = 1000.0  # outdoor daylight; indoor lighting stays well below
MIN_DAY_COVERAGE: Final = 0.9
MEASURES: Final = (
    "IS", "IV", "RA", "L5", "M10",
    "total_sleep_min", "waso_min", "sleep_efficiency", "awakenings", "sleep_onset_h",
    "daylight_min", "lux_mean", "activity_mean", "worn_h",
)


@dataclass(frozen=True)
class DailyMeasures:
    """One day of the table: ``values`` has every key of :data:`MEASURES` (NaN if unknown)."""

    day: date
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float:
        return float(self.values.get(key, math.nan))


def daily_table(series: EpochSeries, sleep: np.ndarray, *, centre_s: float,
                rolling_days: int = ROLLING_DAYS) -> list[DailyMeasures]:
    """The table of every calendar day the series touches (see the module docstring).

    ``sleep`` is the per-epoch score of :func:`~core.actigraphy.sleep.score_sleep`;
    ``centre_s`` the night-window centre (seconds after midnight, e.g. the L5 midpoint).
    """
    nights = {n.night: n for n in summarize_nights(series, sleep, centre_s=centre_s)}
    day_of = series.day_offsets()
    first = series.first_date()
    per_day = series.epochs_per_day
    rows = []
    for k in range(int(day_of[-1]) + 1 if series.n else 0):
        d = first + timedelta(days=k)
        v = dict.fromkeys(MEASURES, math.nan)
        idx = np.flatnonzero(day_of == k)
        act = series.activity[idx]
        worn = np.isfinite(act)
        v["worn_h"] = worn.sum() * series.epoch_s / 3600.0
        if worn.sum() >= MIN_DAY_COVERAGE * per_day:
            v["activity_mean"] = float(act[worn].mean())
            if series.light is not None:
                lux = series.light[idx]
                seen = np.isfinite(lux)
                if seen.sum() >= MIN_DAY_COVERAGE * per_day:
                    v["lux_mean"] = float(lux[seen].mean())
                    v["daylight_min"] = float((lux[seen] >= DAYLIGHT_LUX).sum()
                                              * series.epoch_s / 60.0)
        end = int(idx[-1]) + 1
        start = max(0, end - rolling_days * per_day)
        window = series.slice(start, end)
        if window.days >= MIN_DAYS and np.isfinite(window.activity).sum() >= MIN_DAYS * per_day:
            r = rhythm_measures(window)
            v.update(IS=r.IS, IV=r.IV, RA=r.RA, L5=r.L5, M10=r.M10)
        night = nights.get(d)
        if night is not None:
            v["total_sleep_min"] = night.tst_min
            v["waso_min"] = night.waso_min
            v["sleep_efficiency"] = night.efficiency
            v["awakenings"] = float(night.awakenings)
            if night.onset is not None:
                v["sleep_onset_h"] = _hours_after_noon(night.onset, d)
        rows.append(DailyMeasures(d, v))
    return rows


def _hours_after_noon(t: datetime, d: date) -> float:
    """Sleep onset as hours after noon of the night's date (so 23:30 -> 11.5, 01:00 -> 13)."""
    noon = datetime(d.year, d.month, d.day, 12)
    return (t - noon).total_seconds() / 3600.0 % (DAY_S / 3600.0)
