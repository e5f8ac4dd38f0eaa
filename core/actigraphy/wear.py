"""Non-wear detection: long runs of zero activity are a wearable off the wrist, not rest.

A watch left on the bedside table reads zero for hours and every sleep algorithm scores that
as deep sleep. The rule here is the simplest one in use (pyActigraphy's inactivity mask,
Choi et al. 2011 without the spike allowance): a run of at least ``min_run_s`` of epochs with
exactly zero counts is non-wear. Still sleep rarely gives two hours of exact zeros from a
wrist device, while an unworn device gives them at once; shorter runs are kept as rest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numpy as np

from core.actigraphy.series import EpochSeries

__all__ = ["NONWEAR_MIN_RUN_S", "mask_nonwear", "nonwear_mask"]

NONWEAR_MIN_RUN_S: Final = 2 * 3600


def nonwear_mask(activity: np.ndarray, epoch_s: int,
                 min_run_s: float = NONWEAR_MIN_RUN_S) -> np.ndarray:
    """True for every epoch inside a run of zero counts lasting at least ``min_run_s``."""
    a = np.asarray(activity, dtype=float)
    zero = a == 0
    edges = np.diff(np.concatenate([[0], zero.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    mask = np.zeros(a.size, dtype=bool)
    for lo, hi in zip(starts, ends, strict=True):
        if (hi - lo) * epoch_s >= min_run_s:
            mask[lo:hi] = True
    return mask


def mask_nonwear(series: EpochSeries, min_run_s: float = NONWEAR_MIN_RUN_S) -> EpochSeries:
    """The series with non-wear epochs set to NaN (missing); ``min_run_s <= 0`` keeps all."""
    if min_run_s <= 0:
        return series
    mask = nonwear_mask(series.activity, series.epoch_s, min_run_s)
    if not mask.any():
        return series
    act = series.activity.copy()
    act[mask] = np.nan
    light = None
    if series.light is not None:
        light = series.light.copy()
        light[mask] = np.nan
    return replace(series, activity=act, light=light)
