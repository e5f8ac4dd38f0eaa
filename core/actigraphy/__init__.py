"""Actigraphy on the kernel: activity counts, rest-activity rhythm, sleep, nights and trends.

numpy only, like the rest of :mod:`core`. The flow, one module each:

- :mod:`~core.actigraphy.counts`: raw tri-axial acceleration -> ActiGraph-compatible counts
  per 30 s / 60 s epoch (:class:`CountsAccumulator` streams, :func:`activity_counts` batches);
- :mod:`~core.actigraphy.series`: the epoch series the measures read (:class:`EpochSeries`);
- :mod:`~core.actigraphy.wear`: long runs of zero counts -> non-wear (missing);
- :mod:`~core.actigraphy.rhythm`: IS, IV, RA, L5, M10 and start times (van Someren 1999);
- :mod:`~core.actigraphy.sleep`: sleep/wake per epoch (Sadeh, Cole–Kripke) and nights;
- :mod:`~core.actigraphy.daily`: the daily table (rolling rhythm, night, light per day);
- :mod:`~core.actigraphy.trends`: a resident's baseline band and trend events;
- :mod:`~core.actigraphy.analysis`: all of it on one series in one call (:func:`analyse`).
"""

from __future__ import annotations

from core.actigraphy.analysis import ActigraphyReport, analyse
from core.actigraphy.counts import (
    SUPPORTED_RATES,
    CountEpoch,
    CountsAccumulator,
    activity_counts,
    vector_magnitude,
)
from core.actigraphy.daily import MEASURES, DailyMeasures, daily_table
from core.actigraphy.rhythm import RhythmMeasures, hhmm, rhythm_measures
from core.actigraphy.series import EpochSeries
from core.actigraphy.sleep import (
    NightSummary,
    cole_kripke,
    sadeh,
    score_sleep,
    sleep_algorithm,
    summarize_nights,
)
from core.actigraphy.trends import (
    DEFAULT_RULES,
    Baseline,
    TrendEvent,
    TrendRule,
    detect_trend_events,
    personal_baseline,
)
from core.actigraphy.wear import mask_nonwear, nonwear_mask

__all__ = [
    "DEFAULT_RULES",
    "MEASURES",
    "SUPPORTED_RATES",
    "ActigraphyReport",
    "Baseline",
    "CountEpoch",
    "CountsAccumulator",
    "DailyMeasures",
    "EpochSeries",
    "NightSummary",
    "RhythmMeasures",
    "TrendEvent",
    "TrendRule",
    "activity_counts",
    "analyse",
    "cole_kripke",
    "daily_table",
    "detect_trend_events",
    "hhmm",
    "mask_nonwear",
    "nonwear_mask",
    "personal_baseline",
    "rhythm_measures",
    "sadeh",
    "score_sleep",
    "sleep_algorithm",
    "summarize_nights",
    "vector_magnitude",
]
