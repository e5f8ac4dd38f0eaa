"""core.signal.resample: window starts, gaps, anti-aliased resampling on the real timestamps, stream objects."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.signal import (
    Stream,
    find_gaps,
    fir_taps,
    resample_to_grid,
    sliding_window_starts,
    window_margin_s,
    windows_from_streams,
)
from tests.fakes.streams import assert_same, small_contract, small_streams
from tests.strategies import signal_examples


def test_sliding_window_starts() -> None:
    s = sliding_window_starts(10.0, 100.0, 60.0, 5.0)
    assert s[0] == 10.0 and s[-1] == 40.0 and s.size == 7
    assert sliding_window_starts(0.0, 59.0, 60.0, 5.0).size == 0
    with pytest.raises(ValueError):
        sliding_window_starts(0.0, 10.0, 60.0, 0.0)


def test_find_gaps() -> None:
    t = np.array([0.0, 0.25, 0.5, 2.0, 2.25, 5.0])
    g = find_gaps(t, 1.0)
    assert np.array_equal(g, [[0.5, 2.0], [2.25, 5.0]])
    assert find_gaps(t[:1], 1.0).shape == (0, 2)


@signal_examples
@given(src=st.sampled_from([64.0, 128.0, 700.0, 256.0]), dst=st.sampled_from([4.0, 16.0, 32.0]),
       frac=st.floats(0.02, 0.3), phase=st.floats(0, 2 * np.pi))
def test_resampling_keeps_low_frequencies(src: float, dst: float, frac: float,
                                          phase: float) -> None:
    f = frac * dst  # well inside the passband (< 0.4 * dst)
    t = np.arange(int(40 * src)) / src
    x = np.sin(2 * np.pi * f * t + phase)
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    y = resample_to_grid(t, x, grid, src, dst)
    assert y.shape == grid.shape
    assert np.abs(y - np.sin(2 * np.pi * f * grid + phase)).max() < 0.01


@signal_examples
@given(src=st.sampled_from([64.0, 128.0, 700.0]), dst=st.sampled_from([4.0, 16.0, 32.0]),
       frac=st.floats(0.55, 1.9))
def test_resampling_attenuates_tone_above_new_nyquist(src: float, dst: float,
                                                      frac: float) -> None:
    f = frac * dst  # above the new Nyquist (0.5 * dst): would alias without the FIR
    if f >= 0.45 * src:
        f = 0.45 * src  # keep the tone representable at the source rate
    t = np.arange(int(40 * src)) / src
    x = np.sin(2 * np.pi * f * t)
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    y = resample_to_grid(t, x, grid, src, dst)
    assert np.abs(y).max() < 0.01  # >= 40 dB down


def test_resampling_without_filter_aliases() -> None:
    # the control: plain decimation of the same tone keeps most of its amplitude (aliased)
    src, dst, f = 700.0, 16.0, 11.0
    t = np.arange(int(40 * src)) / src
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    assert np.abs(np.interp(grid, t, np.sin(2 * np.pi * f * t))).max() > 0.5


def test_fir_taps() -> None:
    assert fir_taps(64.0, 64.0) is None and fir_taps(66.0, 64.0) is None  # within tolerance
    fir = fir_taps(700.0, 4.0)
    assert fir is not None
    m, taps = fir
    assert m == 175 and taps.size == 2 * 16 * 175 + 1
    assert math.isclose(taps.sum(), 1.0) and np.allclose(taps, taps[::-1])  # unit DC, linear phase


def test_identity_rate_passes_through_exactly() -> None:
    t = np.arange(640) / 64.0
    x = np.random.default_rng(1).normal(size=(640, 2))
    y = resample_to_grid(t, x, t[64:576], 64.0, 64.0)
    assert np.array_equal(y, x[64:576])


@signal_examples
@given(jitter=st.floats(0.0, 0.45), seed=st.integers(0, 1000), src=st.sampled_from([64.0, 700.0]))
def test_resampling_uses_actual_timestamps(jitter: float, seed: int, src: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(30 * src)
    t = np.arange(n) / src + rng.uniform(-jitter, jitter, n) / src
    x = np.sin(2 * np.pi * 0.5 * t)
    grid = 5.0 + np.arange(20 * 32) / 32.0
    y = resample_to_grid(t, x, grid, None, 32.0)
    assert np.abs(y - np.sin(2 * np.pi * 0.5 * grid)).max() < 0.01


def test_resample_rejects_bad_grid() -> None:
    with pytest.raises(ValueError):
        resample_to_grid(np.arange(10.0), np.arange(10.0), np.array([0.0, 0.3, 0.5]), 1.0, 4.0)


def test_margin_and_stream_objects() -> None:
    c = small_contract()
    assert window_margin_s(c, "eda") == pytest.approx(16 / 4.0 + 0.5)
    s = small_streams(22, 20.0, src_scale=4.0)
    objs = {k: Stream(t, x, rate_hz=64.0 if k == "bvp" else None) for k, (t, x) in s.items()}
    assert_same(windows_from_streams(objs, c), windows_from_streams(s, c))
    assert math.isclose(windows_from_streams(objs, c)[0].coverage["bvp"], 1.0)
