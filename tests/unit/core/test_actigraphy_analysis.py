"""One call from epochs to the report: non-wear first, then rhythm, sleep, nights, days."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.actigraphy import analyse
from tests.fakes.actigraphy import resident_epochs


def test_an_unworn_afternoon_is_missing_not_sleep() -> None:
    series = resident_epochs(5, seed=3)
    act = series.activity.copy()
    off = slice(2 * 1440 + 13 * 60, 2 * 1440 + 17 * 60)  # day 3, 13:00-17:00 on the table
    act[off] = 0.0
    report = analyse(replace(series, activity=act))
    assert report.nonworn_epochs == 4 * 60
    assert np.all(report.sleep[off] == -1)
    assert report.algorithm.startswith("Sadeh")
    assert report.table[0].day == series.first_date() and len(report.table) == 5
    assert len(report.nights) == 4
    assert all(6 * 60 < n.tst_min < 9 * 60 for n in report.nights)
    assert 2 * 3600 < report.night_centre_s < 4 * 3600  # the L5 midpoint: the small hours
    unmasked = analyse(replace(series, activity=act), nonwear_min_run_s=0)
    assert unmasked.nonworn_epochs == 0 and np.all(unmasked.sleep[off][20:-20] == 1)
