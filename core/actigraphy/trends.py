"""A resident's own baseline band per measure, and an event when a measure leaves it for days.

Pure functions over the daily table (:mod:`core.actigraphy.daily`); no I/O, no clock.

Baseline: the first ``baseline_days`` rows. The band is ``median ± k · 1.4826 · MAD`` (the
MAD scaled to a standard deviation for normal data: robust to the odd bad night), widened to
at least ``min_half_width`` of the rule and ``REL_FLOOR`` of the median, so a flat baseline
(a WASO of 0 every night) does not turn ordinary variation into an event.

Event: after the baseline, a measure beyond the band on the rule's side on ``run_days``
consecutive days raises one :class:`TrendEvent` (on the last of those days); the rule is
re-armed once the measure is back inside the band. A day where the measure is unknown (NaN)
ends a run without re-arming: an unworn day is not evidence either way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import numpy as np

from core.actigraphy.daily import DailyMeasures
from core.errors import ActigraphyError

__all__ = [
    "DEFAULT_RULES",
    "Baseline",
    "TrendEvent",
    "TrendRule",
    "detect_trend_events",
    "personal_baseline",
]

MAD_TO_SD: Final = 1.4826
REL_FLOOR: Final = 0.10  # the band is never narrower than +-10 % of the median
BASELINE_DAYS: Final = 7
BAND_K: Final = 2.5
RUN_DAYS: Final = 3
MIN_BASELINE_VALUES: Final = 4  # fewer known baseline days: no band, no events


@dataclass(frozen=True)
class TrendRule:
    """Watch ``measure`` for a move in ``direction``; ``min_half_width`` in its own unit."""

    measure: str
    direction: Literal["falling", "rising"]
    min_half_width: float
    label: str


DEFAULT_RULES: Final = (
    TrendRule("IS", "falling", 0.05, "day-to-day regularity (IS) falling"),
    TrendRule("IV", "rising", 0.05, "rest-activity fragmentation (IV) rising"),
    TrendRule("waso_min", "rising", 15.0, "wake after sleep onset rising"),
    TrendRule("total_sleep_min", "falling", 30.0, "total sleep time shrinking"),
    TrendRule("daylight_min", "falling", 15.0, "time in daylight falling"),
)


@dataclass(frozen=True)
class Baseline:
    """A resident's band for one measure, from ``n_days`` known baseline days."""

    measure: str
    median: float
    mad: float
    low: float
    high: float
    n_days: int
    first_day: date
    last_day: date


@dataclass(frozen=True)
class TrendEvent:
    """A measure outside the resident's band on ``days`` consecutive days up to ``day``."""

    resident: str
    measure: str
    direction: str
    first_day: date
    day: date
    days: int
    value: float  # the measure on ``day``
    values: tuple[float, ...]  # the measure on each day of the run
    baseline: Baseline
    message: str


def personal_baseline(table: Sequence[DailyMeasures], rule: TrendRule, *,
                      baseline_days: int = BASELINE_DAYS, k: float = BAND_K) -> Baseline | None:
    """The band of ``rule.measure`` over the first ``baseline_days`` rows, or None if too few."""
    rows = list(table[:baseline_days])
    vals = np.array([r.get(rule.measure) for r in rows])
    known = vals[np.isfinite(vals)]
    if known.size < min(MIN_BASELINE_VALUES, baseline_days) or not rows:
        return None
    med = float(np.median(known))
    mad = float(np.median(np.abs(known - med)))
    half = max(k * MAD_TO_SD * mad, rule.min_half_width, REL_FLOOR * abs(med))
    return Baseline(rule.measure, med, mad, med - half, med + half, int(known.size),
                    rows[0].day, rows[-1].day)


def detect_trend_events(table: Sequence[DailyMeasures], *, resident: str,
                        rules: Sequence[TrendRule] = DEFAULT_RULES,
                        baseline_days: int = BASELINE_DAYS, k: float = BAND_K,
                        run_days: int = RUN_DAYS) -> list[TrendEvent]:
    """Every trend event in the table, in day order (see the module docstring)."""
    if run_days < 1 or baseline_days < 1:
        raise ActigraphyError("run_days and baseline_days must be at least 1")
    days = [r.day for r in table]
    if any(b <= a for a, b in itertools.pairwise(days)):
        raise ActigraphyError("the daily table must be in increasing day order, one row a day")
    events = []
    for rule in rules:
        base = personal_baseline(table, rule, baseline_days=baseline_days, k=k)
        if base is None:
            continue
        run: list[DailyMeasures] = []
        armed = True
        for row in table[baseline_days:]:
            v = row.get(rule.measure)
            if not math.isfinite(v):
                run = []
                continue
            outside = v < base.low if rule.direction == "falling" else v > base.high
            if not outside:
                run, armed = [], True
                continue
            if run and (row.day - run[-1].day).days != 1:
                run = []
            run.append(row)
            if armed and len(run) == run_days:
                armed = False
                events.append(_event(resident, rule, base, run))
    return sorted(events, key=lambda e: (e.day, e.measure))


def _event(resident: str, rule: TrendRule, base: Baseline,
           run: list[DailyMeasures]) -> TrendEvent:
    values = tuple(r.get(rule.measure) for r in run)
    return TrendEvent(
        resident=resident,
        measure=rule.measure,
        direction=rule.direction,
        first_day=run[0].day,
        day=run[-1].day,
        days=len(run),
        value=values[-1],
        values=values,
        baseline=base,
        message=(f"{rule.label}: {len(run)} days in a row "
                 f"{'below' if rule.direction == 'falling' else 'above'} the resident's band "
                 f"({_fmt(base.low)}-{_fmt(base.high)}, median {_fmt(base.median)}); "
                 f"now {_fmt(values[-1])}"),
    )


def _fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"
