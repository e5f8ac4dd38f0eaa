"""core.signal.resample against its documented rules and scipy: window starts and gaps at
their boundaries, the input checks and their messages, rows with a non-finite value left
out, an estimated source rate choosing the same filter as the declared one (scipy's FIR on
a linear interpolation), edge cases of the grid (one point, none), and the time span a hop
grid reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import ContractError
from core.signal import find_gaps, fir_taps, resample_to_grid, sliding_window_starts
from core.signal.resample import (
    coerce_chunk,
    decimation_factor,
    hop_grid_times,
    keep_increasing,
    resample_hop_grid,
)


def _scipy_reference(
    t: np.ndarray, x: np.ndarray, grid: np.ndarray, src: float, dst: float
) -> np.ndarray:
    """Documented resampling: linear interpolation (edges held) at M x dst, then a
    Hamming-windowed-sinc FIR of 2*16*M + 1 taps, cutoff 0.45 x dst, read at the grid."""
    import scipy.signal

    mult = math.ceil(src / dst - 0.05)
    fs = mult * dst
    lo = grid[0] - 40.0
    fine = lo + np.arange(round((grid[-1] + 40.0 - lo) * fs)) / fs
    u = np.interp(fine, t, x)
    taps = scipy.signal.firwin(2 * 16 * mult + 1, 0.45 * dst, window="hamming", fs=fs)
    y = scipy.signal.convolve(u, taps, mode="same")
    return y[np.rint((grid - lo) * fs).astype(int)]


def test_window_starts_boundaries_and_message() -> None:
    np.testing.assert_array_equal(sliding_window_starts(0.0, 10.0, 4.0, 0.5), np.arange(13) * 0.5)
    np.testing.assert_array_equal(sliding_window_starts(1.0, 2.0, 0.5, 0.25), [1.0, 1.25, 1.5])
    for window_s, hop_s in ((0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)):
        with pytest.raises(ValueError) as e:
            sliding_window_starts(0.0, 10.0, window_s, hop_s)
        assert str(e.value) == "window_s and hop_s must be positive"


def test_gaps_are_longer_than_the_limit_and_float64() -> None:
    g = find_gaps([0, 1, 5], 1.0)
    assert g.dtype == np.float64 and g.tolist() == [[1.0, 5.0]]
    assert find_gaps([0.0, 5.0], 1.0).tolist() == [[0.0, 5.0]]  # two samples are enough
    assert find_gaps([0.0, 0.5, 1.5], 1.0).shape == (0, 2)  # exactly the limit: no gap


def test_input_checks_and_their_messages() -> None:
    with pytest.raises(ValueError) as e:
        resample_to_grid(np.arange(10.0), np.arange(9.0), np.arange(4) / 4.0, 4.0, 4.0)
    assert str(e.value) == "t (10,) and x (9,) do not match"
    with pytest.raises(ValueError) as e:
        resample_to_grid(np.zeros((10, 1)), np.arange(10.0), np.arange(4) / 4.0, 4.0, 4.0)
    assert str(e.value) == "t (10, 1) and x (10,) do not match"
    grid = np.arange(8) / 4.0
    grid[3] += 1e-6  # 4e-6 of a sample period: not a grid at 4 Hz
    with pytest.raises(ValueError) as e:
        resample_to_grid(np.arange(10.0), np.arange(10.0), grid, 1.0, 4.0)
    assert str(e.value) == "grid must be grid[0] + arange(T) / dst_hz"
    with pytest.raises(ValueError) as e:
        resample_to_grid(np.arange(3.0), np.full(3, np.nan), np.arange(4) / 4.0, 1.0, 4.0)
    assert str(e.value) == "no finite samples"


def test_rows_with_a_non_finite_value_are_left_out() -> None:
    t = np.arange(40) / 4.0
    x = np.stack([np.sin(t), np.cos(t)], axis=1)
    x[10, 1] = np.nan  # one channel of one row: the whole row is missing
    x[20, 0] = np.inf
    grid = 1.0 + np.arange(30) / 4.0
    y = resample_to_grid(t, x, grid, 4.0, 4.0)
    ok = np.isfinite(x).all(axis=1)
    want = np.stack([np.interp(grid, t[ok], x[ok, c]) for c in range(2)], axis=1)
    np.testing.assert_array_equal(y, want)


def test_one_sample_one_point_and_no_point() -> None:
    y = resample_to_grid([2.0], [3.5], np.arange(5) / 4.0, None, 4.0)  # rate unknown
    assert y.shape == (5,)
    np.testing.assert_array_equal(y, np.full(5, 3.5))
    y = resample_to_grid([2.0], [[3.5, -1.0]], np.arange(5) / 4.0, 1.0, 4.0)
    assert y.shape == (5, 2)
    np.testing.assert_array_equal(y, np.tile([3.5, -1.0], (5, 1)))
    np.testing.assert_array_equal(
        resample_to_grid(np.arange(10.0), np.arange(10.0), np.array([2.5]), 1.0, 4.0), [2.5]
    )
    assert resample_to_grid(np.arange(10.0), np.arange(10.0), np.zeros(0), 1.0, 4.0).shape == (0,)
    assert resample_to_grid(np.arange(10.0), np.ones((10, 3)), np.zeros(0), 1.0, 4.0).shape == (
        0,
        3,
    )


@pytest.mark.parametrize("src", [64.0, None])
def test_an_estimated_rate_filters_as_the_declared_one(src: float | None) -> None:
    rng = np.random.default_rng(4)
    t = np.arange(64 * 30) / 64.0
    x = np.sin(2 * np.pi * 0.4 * t) + np.sin(2 * np.pi * 3.0 * t) + 0.1 * rng.normal(size=t.size)
    grid = 8.0 + np.arange(40) / 4.0  # 4 Hz: the 3 Hz tone is above its Nyquist
    y = resample_to_grid(t, x, grid, src, 4.0)
    np.testing.assert_allclose(y, _scipy_reference(t, x, grid, 64.0, 4.0), rtol=0, atol=1e-9)
    # two samples 1/64 s apart: still a 64 Hz source, filtered (a step, smoothed)
    t2, x2 = np.array([0.0, 1 / 64]), np.array([0.0, 1.0])
    g2 = -2.0 + np.arange(16) / 4.0
    np.testing.assert_allclose(
        resample_to_grid(t2, x2, g2, src, 4.0),
        _scipy_reference(t2, x2, g2, 64.0, 4.0),
        rtol=0,
        atol=1e-9,
    )


def test_a_hop_grid_reports_the_span_it_read() -> None:
    # 4 Hz, hops of 2 s (8 points): points 3 .. 12 are at 0.75 s .. 3.0 s
    t = np.arange(0.0, 10.0, 0.25)
    y, first, last = resample_hop_grid(t, t[None, :], 0.0, 2.0, 8, 3, 10, 4.0, 1)
    assert (first, last) == (0.75, 3.0)
    np.testing.assert_array_equal(y[0], 0.75 + np.arange(10) / 4.0)
    np.testing.assert_array_equal(hop_grid_times(0.0, 2.0, 8, 4.0, 3, 13), y[0])


def test_a_chunk_is_float64_and_its_errors_name_the_modality() -> None:
    t, x = coerce_chunk("eda", 1, [0, 1, 2], [1, 2, 3])
    assert t.dtype == x.dtype == np.float64 and x.shape == (3, 1)
    with pytest.raises(ContractError) as e:
        coerce_chunk("eda", 1, [[0.0]], [1.0])
    assert e.value.field == "eda"
    assert str(e.value) == "eda: timestamps must be 1-D, got shape (1, 1)"
    with pytest.raises(ContractError) as e:
        coerce_chunk("acc", 3, [0.0, 1.0], [[1.0, 2.0], [1.0, 2.0]])
    assert e.value.field == "acc"
    assert str(e.value) == "acc: values shape (2, 2) != (2, 3) (N samples, channels)"


def test_a_filtered_hop_grid_reports_the_span_its_fir_read() -> None:
    # M = 2 at 4 Hz: the FIR reads 16 target periods (4 s) before the first point (0.75 s)
    # and after the last (3.0 s), on a grid at 8 Hz: -3.25 s .. 7.0 + 1/8 s
    t = np.arange(-10.0, 20.0, 1 / 8.0)
    _, first, last = resample_hop_grid(t, np.sin(t)[None, :], 0.0, 2.0, 8, 3, 10, 4.0, 2)
    assert (first, last) == (-3.25, 7.125)


def test_at_most_five_percent_faster_is_not_filtered() -> None:
    assert 21.0 / 20.0 == 1.0 + 0.05  # exactly at the tolerance
    assert decimation_factor(21.0, 20.0) == 1 and fir_taps(21.0, 20.0) is None
    assert decimation_factor(21.5, 20.0) == 2


@pytest.mark.parametrize(
    ("t", "prev", "keep", "bad", "order"),
    [
        ([1.0, 2.0], 1.0, [False, True], 0, 1),  # equal to an earlier one: not later
        ([2.0, 1.0], -math.inf, [True, False], 0, 1),
        ([1.0, 1.0, 2.0], -math.inf, [True, False, True], 0, 1),
        ([1.0, 3.0, 2.0], -math.inf, [True, True, False], 0, 1),
        ([1.0, 3.0, math.nan, 2.0], -math.inf, [True, True, False, False], 1, 1),
        ([1.0, 2.0, 3.0], 0.5, [True, True, True], 0, 0),
    ],
)
def test_only_finite_strictly_later_times_are_kept(
    t: list[float], prev: float, keep: list[bool], bad: int, order: int
) -> None:
    got, n_bad, n_order = keep_increasing(np.array(t), prev)
    assert got.dtype == bool and got.tolist() == keep
    assert (n_bad, n_order) == (bad, order)
