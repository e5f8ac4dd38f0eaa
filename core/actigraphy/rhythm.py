"""Rest-activity rhythm measures of an epoch series: IS, IV, RA, L5 and M10 (van Someren 1999).

``IS`` (interdaily stability) and ``IV`` (intradaily variability) are computed on hourly
values, as published: each clock hour's mean activity, an hour counting only when all its
epochs are present::

    IS = n · Σ_h (x̄_h − x̄)² / (p · Σ_i (x_i − x̄)²)        p = 24 hours of the day
    IV = n · Σ_i (x_i − x_{i−1})² / ((n − 1) · Σ_i (x_i − x̄)²)

IS is computed as ``Σ_h N_h (x̄_h − x̄)² / Σ_i (x_i − x̄)²`` with ``N_h`` the values at hour
``h``: the same number whenever every hour occurs equally often (then ``N_h = n/p``); with
partial days or gaps each hour weighs by its count, which keeps a perfectly repeated day at
exactly 1. With gaps, IV's first sum runs over consecutive valid pairs and ``n − 1`` is their
number.
``L5`` and ``M10`` are the mean activity per epoch of the least active 5 h and the most active
10 h of the average day at epoch resolution, the window wrapping midnight; ``RA = (M10 −
L5) / (M10 + L5)``. Start times are seconds after local midnight.

Where pyActigraphy (the field's reference implementation) differs, and by how much:

- IS there is ``var(profile) / var(hourly)`` with pandas' sample variances (ddof = 1), i.e.
  ours × (n − 1)/n × p/(p − 1): about +4.3 % on a week (p/(p − 1) = 24/23).
- IV there is ``mean(diff²) / var(hourly)`` (ddof = 1), i.e. ours × (n − 1)/n: −0.6 % on a week.
- Its hourly bins are whole hours from the first epoch, the partial last hour included
  (summed over fewer epochs); ours are clock hours (``hour_origin="start"`` gives its bins)
  and an incomplete hour is left out. IV moves most with where the hour edges fall.
- L5, M10 and RA are the same quantities there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

from core.actigraphy.series import DAY_S, HOUR_S, EpochSeries
from core.errors import ActigraphyError

__all__ = [
    "RhythmMeasures",
    "daily_profile",
    "hhmm",
    "hourly_values",
    "interdaily_stability",
    "intradaily_variability",
    "least_active",
    "most_active",
    "relative_amplitude",
    "rhythm_measures",
]

HOURS_PER_DAY: Final = 24
L5_HOURS: Final = 5
M10_HOURS: Final = 10
MIN_DAYS: Final = 2.0  # IS needs the same hour on different days; fewer is not a rhythm
MIN_WINDOW_COVERAGE: Final = 0.5  # an L5/M10 window needs this share of its profile slots


@dataclass(frozen=True)
class RhythmMeasures:
    """The rhythm of one series; start times are seconds after local midnight."""

    IS: float
    IV: float
    RA: float
    L5: float
    M10: float
    L5_start: float
    M10_start: float
    hours: int  # complete hours behind IS and IV
    days: float  # span of the series

    @property
    def L5_midpoint(self) -> float:
        """Centre of the least active 5 h, seconds after midnight: the middle of the night."""
        return (self.L5_start + L5_HOURS * HOUR_S / 2) % DAY_S

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["L5_start"], d["M10_start"] = hhmm(self.L5_start), hhmm(self.M10_start)
        return d


def hhmm(seconds_of_day: float) -> str:
    """``HH:MM`` of a time given in seconds after midnight (rounded to the minute)."""
    m = round(seconds_of_day / 60.0) % (HOURS_PER_DAY * 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def hourly_values(series: EpochSeries, *, origin: str = "clock") -> tuple[np.ndarray, np.ndarray]:
    """Mean activity of each hour, NaN unless all its epochs are in; returns ``(values, group)``.

    ``origin="clock"`` bins clock hours (13:00-14:00, ...), so the same bin is the same hour
    of the resident's day across recordings; ``"start"`` bins whole hours from the first epoch
    (pyActigraphy's choice). ``group`` (hours,) is the bin's hour of the day, 0-23, for IS.
    """
    if origin not in ("clock", "start"):
        raise ActigraphyError(f"hour bins start at 'clock' or 'start', not {origin!r}")
    per_hour = HOUR_S // series.epoch_s
    if origin == "clock":
        sod = series.seconds_of_day()
        hour_abs = series.day_offsets() * HOURS_PER_DAY + (sod // HOUR_S).astype(np.int64)
    else:
        hour_abs = np.arange(series.n, dtype=np.int64) // per_hour
    first = int(hour_abs[0]) if series.n else 0
    idx = hour_abs - first
    n_hours = int(idx[-1]) + 1 if series.n else 0
    act = series.activity
    ok = np.isfinite(act)
    sums = np.bincount(idx[ok], weights=act[ok], minlength=n_hours)
    counts = np.bincount(idx[ok], minlength=n_hours)
    values = np.full(n_hours, np.nan)
    full = counts == per_hour
    values[full] = sums[full] / per_hour
    group = (first + np.arange(n_hours)) % HOURS_PER_DAY
    return values, group


def interdaily_stability(values: np.ndarray, hour_of_day: np.ndarray) -> float:
    """van Someren's IS of hourly ``values`` (NaN = missing hour); NaN if undefined."""
    ok = np.isfinite(values)
    x, h = values[ok], hour_of_day[ok]
    n = x.size
    if n < 2:
        return float("nan")
    mean = x.mean()
    total = np.sum((x - mean) ** 2)
    if total == 0:
        return float("nan")
    counts = np.bincount(h, minlength=HOURS_PER_DAY)
    sums = np.bincount(h, weights=x, minlength=HOURS_PER_DAY)
    seen = counts > 0
    profile = sums[seen] / counts[seen]
    return float(np.sum(counts[seen] * (profile - mean) ** 2) / total)


def intradaily_variability(values: np.ndarray) -> float:
    """van Someren's IV of consecutive hourly ``values`` (NaN = missing hour); NaN if undefined."""
    ok = np.isfinite(values)
    x = values[ok]
    pairs = ok[1:] & ok[:-1]
    n_pairs = int(pairs.sum())
    if x.size < 2 or n_pairs == 0:
        return float("nan")
    total = np.sum((x - x.mean()) ** 2)
    if total == 0:
        return float("nan")
    d = np.diff(values)[pairs]
    return float(x.size * np.sum(d**2) / (n_pairs * total))


def daily_profile(series: EpochSeries) -> np.ndarray:
    """Mean activity of each epoch slot of the day over all days, (epochs_per_day,), NaN if none.

    Slot ``k`` starts ``k * epoch_s + series.phase_s`` seconds after midnight.
    """
    slots = series.slot_of_day()
    act = series.activity
    ok = np.isfinite(act)
    size = series.epochs_per_day
    sums = np.bincount(slots[ok], weights=act[ok], minlength=size)
    counts = np.bincount(slots[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _window_means(profile: np.ndarray, width: int) -> np.ndarray:
    """Mean of each circular window of ``width`` slots, by its first slot; NaN if too sparse."""
    ok = np.isfinite(profile)
    vals = np.where(ok, profile, 0.0)
    ring = np.concatenate([vals, vals[: width - 1]])
    ring_ok = np.concatenate([ok, ok[: width - 1]]).astype(float)
    csum = np.concatenate([[0.0], np.cumsum(ring)])
    ccnt = np.concatenate([[0.0], np.cumsum(ring_ok)])
    sums = csum[width:] - csum[:-width]
    cnts = ccnt[width:] - ccnt[:-width]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / cnts
    means[cnts < MIN_WINDOW_COVERAGE * width] = np.nan
    return means[: profile.size]


def _extreme(profile: np.ndarray, epoch_s: int, phase_s: float, hours: int,
             lowest: bool) -> tuple[float, float]:
    width = hours * HOUR_S // epoch_s
    means = _window_means(profile, width)
    if not np.any(np.isfinite(means)):
        return float("nan"), float("nan")
    k = int(np.nanargmin(means) if lowest else np.nanargmax(means))
    return float(means[k]), float((k * epoch_s + phase_s) % DAY_S)


def least_active(profile: np.ndarray, epoch_s: int, phase_s: float = 0.0,
                 hours: int = L5_HOURS) -> tuple[float, float]:
    """``(L, start)``: the lowest mean over ``hours`` of the circular profile and its start."""
    return _extreme(profile, epoch_s, phase_s, hours, lowest=True)


def most_active(profile: np.ndarray, epoch_s: int, phase_s: float = 0.0,
                hours: int = M10_HOURS) -> tuple[float, float]:
    """``(M, start)``: the highest mean over ``hours`` of the circular profile and its start."""
    return _extreme(profile, epoch_s, phase_s, hours, lowest=False)


def relative_amplitude(m10: float, l5: float) -> float:
    total = m10 + l5
    return float((m10 - l5) / total) if total > 0 else float("nan")


def rhythm_measures(series: EpochSeries, *, min_days: float = MIN_DAYS,
                    hour_origin: str = "clock") -> RhythmMeasures:
    """IS, IV, RA, L5, M10 and the start times of a series of at least ``min_days`` days.

    ``hour_origin`` places the hourly bins of IS and IV (see :func:`hourly_values`).
    """
    if series.days < min_days:
        raise ActigraphyError(
            f"{series.days:.2f} days of epochs; rhythm measures need at least {min_days:g} days"
        )
    values, hour_of_day = hourly_values(series, origin=hour_origin)
    profile = daily_profile(series)
    l5, l5_start = least_active(profile, series.epoch_s, series.phase_s)
    m10, m10_start = most_active(profile, series.epoch_s, series.phase_s)
    return RhythmMeasures(
        IS=interdaily_stability(values, hour_of_day),
        IV=intradaily_variability(values),
        RA=relative_amplitude(m10, l5),
        L5=l5,
        M10=m10,
        L5_start=l5_start,
        M10_start=m10_start,
        hours=int(np.isfinite(values).sum()),
        days=series.days,
    )
