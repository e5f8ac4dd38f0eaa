"""train.loop: class-balanced batches and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from train.loop import balanced_batches, lr_lambda


def test_balanced_batches_balance_and_determinism() -> None:
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    draws = np.concatenate(list(balanced_batches(y, 3, 64, np.random.default_rng(0))))
    assert len(draws) == len(y)  # an epoch has as many draws as windows
    share = np.bincount(y[draws], minlength=3) / len(draws)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.05)
    again = np.concatenate(list(balanced_batches(y, 3, 64, np.random.default_rng(0))))
    np.testing.assert_array_equal(draws, again)


def test_balanced_batches_drop_a_single_trailing_sample() -> None:
    y = np.array([0, 1] * 32 + [0])  # 65 windows, batch 64: the last batch would hold 1
    sizes = [len(b) for b in balanced_batches(y, 2, 64, np.random.default_rng(1))]
    assert sizes == [64]


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    f = lr_lambda(100)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-9)
