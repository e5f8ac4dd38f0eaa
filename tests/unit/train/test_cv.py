"""train.cv: LOSO, forward chaining and the fixed split never leak test windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from train.cv import (
    Fold,
    check_folds,
    fixed_split_fold,
    forward_chaining_folds,
    loso_folds,
    make_folds,
    subject_key,
)


def _meta(n_subjects: int = 4, per_subject: int = 20, hop: float = 5.0):
    groups = np.repeat([f"S{i}" for i in range(2, 2 + n_subjects)], per_subject)
    start = np.tile(np.arange(per_subject) * hop, n_subjects)
    return groups, start


def test_loso_one_fold_per_subject_without_leakage() -> None:
    groups, _ = _meta()
    folds = loso_folds(groups)
    assert [f.name for f in folds] == ["S2", "S3", "S4", "S5"]
    covered = np.concatenate([f.test for f in folds])
    assert sorted(covered.tolist()) == list(range(len(groups)))  # every window tested once
    for f in folds:
        assert set(groups[f.test]) == {f.name}
        assert f.name not in set(groups[f.train])
        assert len(f.train) + len(f.test) == len(groups)
        assert f.test_subjects == (f.name,)


def test_loso_orders_subjects_naturally() -> None:
    groups = np.array(["S10", "S2", "S11", "S9", "S2"])
    assert [f.name for f in loso_folds(groups)] == ["S2", "S9", "S10", "S11"]
    assert sorted(["S10", "S2", "P1b", "P1a"], key=subject_key) == ["P1a", "P1b", "S2", "S10"]


def test_loso_needs_two_subjects() -> None:
    with pytest.raises(ConfigError) as e:
        loso_folds(np.array(["S2", "S2"]))
    assert e.value.key == "cv.kind"


def test_forward_chaining_per_subject_blocks_and_purge() -> None:
    groups, start = _meta(n_subjects=2, per_subject=20)
    folds = forward_chaining_folds(start, 3, groups=groups, window_s=60.0, purge=True)
    assert len(folds) == 3
    for k, f in enumerate(folds, start=1):
        for s in ("S2", "S3"):
            te = f.test[groups[f.test] == s]
            tr = f.train[groups[f.train] == s]
            # block k of 4 equal blocks of 5 windows
            assert start[te].tolist() == [float(5 * (5 * k + i)) for i in range(5)]
            # purge: every training window of that subject ends before its first test start
            assert np.all(start[tr] + 60.0 <= start[te].min())
        assert f.test_subjects == ("S2", "S3")
    # fold 1's test starts at 25 s: a 60 s window cannot end before it, so nothing is left to
    # train on once purged -- a real leak that the purge removes
    assert len(folds[0].train) == 0 or np.all(start[folds[0].train] + 60.0 <= 25.0)


def test_forward_chaining_without_purge_trains_on_all_earlier_blocks() -> None:
    groups, start = _meta(n_subjects=2, per_subject=20)
    folds = forward_chaining_folds(start, 3, groups=groups, window_s=60.0, purge=False)
    assert len(folds[2].train) == 2 * 15  # blocks 0..2 of both subjects


def test_forward_chaining_global_scope() -> None:
    start = np.arange(12, dtype=float)
    folds = forward_chaining_folds(start[::-1].copy(), 2, scope="global", purge=False)
    # ranks by time regardless of order in the array; blocks of 4
    t = start[::-1]
    assert sorted(t[folds[0].train].tolist()) == [0, 1, 2, 3]
    assert sorted(t[folds[0].test].tolist()) == [4, 5, 6, 7]
    assert sorted(t[folds[1].train].tolist()) == list(range(8))


@settings(max_examples=40, deadline=None)
@given(
    n_subjects=st.integers(1, 4),
    per_subject=st.integers(6, 30),
    n_splits=st.integers(1, 4),
    window_s=st.sampled_from([0.0, 10.0, 60.0]),
    seed=st.integers(0, 2**16),
)
def test_forward_chaining_never_trains_on_the_future(
    n_subjects: int, per_subject: int, n_splits: int, window_s: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    groups, start = _meta(n_subjects, per_subject)
    perm = rng.permutation(len(groups))  # array order must not matter
    groups, start = groups[perm], start[perm]
    folds = forward_chaining_folds(start, n_splits, groups=groups, window_s=window_s)
    assert len(folds) == n_splits
    for f in folds:
        assert not np.intersect1d(f.train, f.test).size
        for s in set(groups[f.test]):
            first = start[f.test][groups[f.test] == s].min()
            tr = f.train[groups[f.train] == s]
            assert np.all(start[tr] + window_s <= first)


def test_fixed_split() -> None:
    split = np.array(["train", "TEST", "train", "test"])
    f = fixed_split_fold(split, groups=np.array(["a", "b", "a", "c"]))
    assert f.train.tolist() == [0, 2]
    assert f.test.tolist() == [1, 3]
    assert f.test_subjects == ("b", "c")
    with pytest.raises(ConfigError, match="validation"):
        fixed_split_fold(np.array(["train", "validation"]))
    with pytest.raises(ConfigError, match="both"):
        fixed_split_fold(np.array(["train", "train"]))


def test_make_folds_dispatch_and_limits() -> None:
    groups, start = _meta()
    folds = make_folds("loso", groups=groups, start=start, split=None, max_folds=2)
    assert [f.name for f in folds] == ["S2", "S3"]
    with pytest.raises(ConfigError, match="groups"):
        make_folds("loso", groups=None, start=start, split=None)
    with pytest.raises(ConfigError, match="split"):
        make_folds("fixed", groups=groups, start=start, split=None)
    with pytest.raises(ConfigError) as e:
        make_folds("kfold", groups=groups, start=start, split=None)
    assert e.value.key == "cv.kind"


def test_check_folds_catches_leaks() -> None:
    groups = np.array(["a", "a", "b", "b"])
    with pytest.raises(ConfigError, match="shares"):
        check_folds([Fold("x", np.array([0, 1]), np.array([1, 2]))])
    with pytest.raises(ConfigError, match="also in training"):
        check_folds([Fold("b", np.array([0, 2]), np.array([3]))], groups=groups)
