"""train.budget: batch, learning rate and steps by data size; inner validation rows."""

from __future__ import annotations

import numpy as np
import pytest

from train.budget import inner_split, plan_budget


def _plan(n: int, *, budget_gmacs: float = 1e6):
    return plan_budget(n, batch_size=64, lr=2e-3, steps=400, evals=20, patience=5,
                       min_fraction=0.5, macs_per_window=1_000_000,
                       budget_gmacs=budget_gmacs)  # fmt: skip


def test_a_small_compute_budget_caps_the_steps() -> None:
    # 64 windows x 1M MACs x ~3 forward passes per step: 1 GMAC buys about 5 steps
    capped = _plan(3000, budget_gmacs=1.0)
    assert 1 <= capped.max_steps < 400
    assert _plan(3000).max_steps == 400


def test_small_sets_get_small_batches_and_a_smaller_rate() -> None:
    tiny, mid, big = _plan(40), _plan(270), _plan(3000)
    assert (tiny.batch_size, mid.batch_size, big.batch_size) == (8, 32, 64)
    assert tiny.lr == pytest.approx(2e-3 * (8 / 64) ** 0.5)
    assert big.lr == pytest.approx(2e-3)
    # the same optimizer steps whatever the size: many passes over 40 windows, few over 3000
    assert tiny.max_steps == big.max_steps == 400
    assert big.eval_every == 20 and big.min_steps == 200 and big.patience == 5


def _subjects() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.repeat(["S1", "S2", "S3", "S4", "S5"], 30)
    y = np.tile(np.repeat([0, 1, 2], 10), 5)
    t = np.tile(np.arange(30) * 5.0, 5)  # one window every 5 s, class blocks in time
    return g, y, t


def test_time_validation_keeps_every_subject_and_purges_overlaps() -> None:
    g, y, t = _subjects()
    train = np.flatnonzero(g != "S5")  # S5 is the test subject: never offered
    fit, val = inner_split(train, y, g, t, fraction=0.2, by="time", window_s=12.0,
                           rng=np.random.default_rng(0))  # fmt: skip
    assert set(fit) | set(val) <= set(train) and not set(fit) & set(val)
    assert set(g[fit]) == set(g[val]) == {"S1", "S2", "S3", "S4"}
    for s in ("S1", "S2", "S3", "S4"):
        for c in range(3):
            mine = val[(g[val] == s) & (y[val] == c)]
            assert len(mine) == 2  # the last fifth of each class block of each person
            block = train[(g[train] == s) & (y[train] == c)]
            assert t[mine].min() == np.sort(t[block])[-2]
    # no training window of a person lies within a window length of that person's validation
    for s in ("S1", "S2", "S3", "S4"):
        tv, tf = t[val[g[val] == s]], t[fit[g[fit] == s]]
        assert np.abs(tf[:, None] - tv[None, :]).min() >= 12.0


def test_subject_validation_holds_out_whole_people() -> None:
    g, y, t = _subjects()
    train = np.flatnonzero(g != "S5")
    fit, val = inner_split(train, y, g, t, fraction=0.25, by="subject", window_s=12.0,
                           rng=np.random.default_rng(1))  # fmt: skip
    assert len(set(g[val])) == 1 and not set(g[val]) & set(g[fit])
    assert len(fit) + len(val) == len(train)


def test_rows_without_subjects_are_stratified() -> None:
    y = np.array([0] * 40 + [1] * 10)
    fit, val = inner_split(np.arange(50), y, None, None, fraction=0.2, by="time", window_s=1.0,
                           rng=np.random.default_rng(2))  # fmt: skip
    assert np.bincount(y[val]).tolist() == [8, 2]
    assert len(fit) + len(val) == 50 and not set(fit) & set(val)
    again = inner_split(np.arange(50), y, None, None, fraction=0.2, by="time", window_s=1.0,
                        rng=np.random.default_rng(2))  # fmt: skip
    assert np.array_equal(val, again[1])  # same generator, same rows
    none = inner_split(np.arange(50), y, None, None, fraction=0.0, by="rows", window_s=1.0,
                       rng=np.random.default_rng(2))  # fmt: skip
    assert len(none[1]) == 0 and len(none[0]) == 50
