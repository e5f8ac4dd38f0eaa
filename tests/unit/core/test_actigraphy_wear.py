"""Non-wear: long runs of zero counts become missing epochs, short ones stay rest."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from core.actigraphy import EpochSeries, mask_nonwear, nonwear_mask


def test_only_runs_of_zeros_at_least_the_threshold_are_non_wear() -> None:
    a = np.r_[np.full(10, 5.0), np.zeros(119), [3.0], np.zeros(120), [7.0]]
    m = nonwear_mask(a, 60, min_run_s=7200)
    assert not m[:130].any()  # 119 min of zeros: still sleep
    assert m[130:250].all() and not m[250]


def test_masking_sets_activity_and_light_to_nan_and_zero_threshold_keeps_all() -> None:
    a = np.r_[np.zeros(200), np.full(50, 10.0)]
    s = EpochSeries(datetime(2024, 1, 1), 60, a, np.full(250, 100.0))
    masked = mask_nonwear(s)
    assert np.isnan(masked.activity[:200]).all() and np.isnan(masked.light[:200]).all()
    assert np.isfinite(masked.activity[200:]).all()
    assert np.isnan(s.activity).sum() == 0  # the input is left alone
    assert mask_nonwear(s, 0) is s
