"""The whole path from an epoch series to what people read: rhythm, sleep, nights, daily table.

One call for every consumer (the ``edge-trends`` command, the hub's daily job), so the order
of the steps and their settings are decided once: non-wear is masked first (an unworn watch
must not read as sleep), sleep is scored on the masked series, nights are searched around the
series' own L5 midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.actigraphy.daily import ROLLING_DAYS, DailyMeasures, daily_table
from core.actigraphy.rhythm import RhythmMeasures, rhythm_measures
from core.actigraphy.series import EpochSeries
from core.actigraphy.sleep import NightSummary, score_sleep, sleep_algorithm, summarize_nights
from core.actigraphy.wear import NONWEAR_MIN_RUN_S, mask_nonwear

__all__ = ["ActigraphyReport", "analyse"]


@dataclass(frozen=True)
class ActigraphyReport:
    """Everything measured on one series (``series`` is the non-wear-masked one)."""

    series: EpochSeries
    rhythm: RhythmMeasures
    algorithm: str  # the sleep scorer used
    sleep: np.ndarray  # (n,) int8: 1 sleep, 0 wake, -1 not scored
    nights: list[NightSummary]
    table: list[DailyMeasures]
    nonworn_epochs: int

    @property
    def night_centre_s(self) -> float:
        """Centre of the night windows: the L5 midpoint, seconds after midnight."""
        return self.rhythm.L5_midpoint


def analyse(series: EpochSeries, *, nonwear_min_run_s: float = NONWEAR_MIN_RUN_S,
            rolling_days: int = ROLLING_DAYS) -> ActigraphyReport:
    """Mask non-wear, then measure the rhythm, score sleep, summarise nights and days.

    Raises :class:`~core.errors.ActigraphyError` for a series shorter than two days.
    """
    masked = mask_nonwear(series, nonwear_min_run_s)
    rhythm = rhythm_measures(masked)
    sleep = score_sleep(masked)
    centre = rhythm.L5_midpoint
    return ActigraphyReport(
        series=masked,
        rhythm=rhythm,
        algorithm=sleep_algorithm(masked.epoch_s),
        sleep=sleep,
        nights=summarize_nights(masked, sleep, centre_s=centre),
        table=daily_table(masked, sleep, centre_s=centre, rolling_days=rolling_days),
        nonworn_epochs=int(np.isnan(masked.activity).sum() - np.isnan(series.activity).sum()),
    )
