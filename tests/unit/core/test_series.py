"""core.series: fitting a series to a model's length, and bridging missing values."""

from __future__ import annotations

import numpy as np
import pytest

from core.series import fill_missing, fit_length


def test_resample_keeps_the_shape_of_the_series() -> None:
    x = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    out = fit_length(x, 7, "resample")
    assert out.shape == (2, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    np.testing.assert_allclose(fit_length(x, 2, "resample")[1], [3, 0])  # ends are kept


def test_pad_keeps_the_time_scale() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(fit_length(x, 5, "pad"), [[1, 2, 3, 3, 3]])
    np.testing.assert_array_equal(fit_length(x, 2, "pad"), [[1, 2]])


def test_same_length_and_single_sample() -> None:
    x = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(fit_length(x, 2), x)
    np.testing.assert_array_equal(fit_length(np.array([[4.0]]), 3), [[4, 4, 4]])


@pytest.mark.parametrize(
    ("x", "length", "mode", "match"),
    [
        (np.zeros(3), 3, "resample", "channels, samples"),
        (np.zeros((1, 3)), 0, "resample", "length must be >= 1"),
        (np.zeros((1, 3)), 3, "stretch", "not one of"),
        (np.zeros((1, 0)), 3, "pad", "at least one sample"),
    ],
)
def test_bad_arguments(x: np.ndarray, length: int, mode: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_length(x, length, mode)


def test_fill_missing_bridges_gaps_and_counts_them() -> None:
    x = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]])
    out, n = fill_missing(x)
    assert n == 8
    np.testing.assert_array_equal(out[0], [1, 1, 2, 3, 3])  # edges repeat, gaps bridge
    np.testing.assert_array_equal(out[1], 0)  # nothing observed: the normalized centre
    np.testing.assert_array_equal(out[2], x[2])
    assert np.isnan(x[0, 0])  # the input is not modified
    same, none = fill_missing(x[2:])
    assert none == 0 and np.array_equal(same, x[2:])
