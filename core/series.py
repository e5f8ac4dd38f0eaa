"""Fit a variable-length series to a model's fixed input length (training and hub alike).

A model reads windows of one length. Data sets of whole series (the UEA/UCR ``.ts`` archive)
have series of many lengths; :func:`fit_length` makes any ``(C, T)`` series ``(C, length)``
the way the input contract says (``"resample"``: linear interpolation over the series' own
span, so a gesture keeps its shape whatever its duration; ``"pad"``: keep the samples, cut
the end or repeat the last value, so the time scale stays that of the sensor), and
:func:`fill_missing` turns NaN gaps into values a model can read. Both are pure numpy, so
training and the hub call the same code.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["LENGTH_MODES", "fill_missing", "fit_length"]

LENGTH_MODES: Final = ("resample", "pad")


def fit_length(x: np.ndarray, length: int, mode: str = "resample") -> np.ndarray:
    """``(C, T)`` -> ``(C, length)`` float32, by ``mode`` (see the module doc).

    A series already ``length`` long is returned as float32 unchanged. ``T`` must be >= 1.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"expected a (channels, samples) array, got shape {a.shape}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if mode not in LENGTH_MODES:
        raise ValueError(f"mode {mode!r} is not one of {LENGTH_MODES}")
    c, t = a.shape
    if t < 1:
        raise ValueError("a series needs at least one sample")
    if t == length:
        return a
    if mode == "pad":
        if t > length:
            return np.ascontiguousarray(a[:, :length])
        return np.concatenate([a, np.repeat(a[:, -1:], length - t, axis=1)], axis=1)
    if t == 1:
        return np.repeat(a, length, axis=1)
    src = np.linspace(0.0, 1.0, t)
    dst = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(dst, src, a[i]) for i in range(c)]).astype(np.float32)


def fill_missing(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``(C, T)`` with NaN gaps -> (filled float32 copy, number of values filled).

    Inside a channel a gap is bridged linearly between its neighbours; before the first
    and after the last observed value the nearest one is repeated; a channel with no value
    at all becomes zeros (the normalized centre)."""
    a = np.array(x, dtype=np.float32, copy=True)
    if a.ndim != 2:
        raise ValueError(f"expected a (channels, samples) array, got shape {a.shape}")
    missing = ~np.isfinite(a)
    n = int(missing.sum())
    if n == 0:
        return a, 0
    t = np.arange(a.shape[1])
    for i in range(a.shape[0]):
        bad = missing[i]
        if not bad.any():
            continue
        if bad.all():
            a[i] = 0.0
            continue
        a[i, bad] = np.interp(t[bad], t[~bad], a[i, ~bad])
    return a, n
