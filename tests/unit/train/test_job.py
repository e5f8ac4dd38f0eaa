"""train.job: thinning the training windows of one fold."""

from __future__ import annotations

import numpy as np

from train.job import thin


def test_thin_keeps_every_kth_window_per_subject_in_time() -> None:
    groups = np.array(["a"] * 6 + ["b"] * 4)
    start = np.array([50, 0, 10, 20, 30, 40, 0, 5, 10, 15], float)
    idx = np.arange(10)
    kept = thin(idx, groups, start, 2)
    assert sorted(start[kept[groups[kept] == "a"]].tolist()) == [0, 20, 40]
    assert sorted(start[kept[groups[kept] == "b"]].tolist()) == [0, 10]
    np.testing.assert_array_equal(thin(idx, groups, start, 1), idx)
