"""Cross-validation splitters: leave-one-subject-out, forward chaining in time, fixed split.

Splitters see only per-window metadata (``groups`` subject ids, ``start`` seconds within a
recording, ``split`` labels) and return :class:`Fold` index sets, so they are pure and
testable without data. They guarantee by construction, and :func:`check_folds` verifies:

- train and test of a fold never share a window;
- LOSO: no window of the test subject is in training (so nothing fitted on the training
  indices — normalization statistics included — has seen the test subject);
- forward chaining: every training window ends before the test block begins (with
  ``purge``), so overlapping windows cannot carry test samples into training.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError

__all__ = [
    "Fold",
    "check_folds",
    "fixed_split_fold",
    "forward_chaining_folds",
    "loso_folds",
    "make_folds",
    "resolve_kind",
    "subject_key",
]


@dataclass(frozen=True)
class Fold:
    """One train/test partition of the windows (indices into the dataset, sorted)."""

    name: str  # "S2" for LOSO, "block 2/4" for forward chaining, "fixed"
    train: np.ndarray  # (n_train,) int64
    test: np.ndarray  # (n_test,) int64
    test_subjects: tuple[str, ...] = ()  # subjects with windows in the test set


def subject_key(subject: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order for subject ids: S2 < S10 (WESAD numbers its subjects)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", subject))


def _idx(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _subjects(groups: np.ndarray, idx: np.ndarray) -> tuple[str, ...]:
    return tuple(sorted({str(g) for g in groups[idx]}, key=subject_key))


def loso_folds(groups: Sequence[str] | np.ndarray) -> list[Fold]:
    """One fold per subject (natural id order): test on that subject, train on all others."""
    g = np.asarray(groups).astype(str)
    subjects = sorted(set(g.tolist()), key=subject_key)
    if len(subjects) < 2:
        raise ConfigError(
            f"leave-one-subject-out needs at least 2 subjects, the data has {len(subjects)}",
            key="cv.kind",
        )
    return [Fold(s, _idx(g != s), _idx(g == s), (s,)) for s in subjects]


def forward_chaining_folds(
    start: Sequence[float] | np.ndarray,
    n_splits: int,
    *,
    groups: Sequence[str] | np.ndarray | None = None,
    scope: str = "subject",
    window_s: float = 0.0,
    purge: bool = True,
) -> list[Fold]:
    """Expanding-window CV in time: ``n_splits`` folds over ``n_splits + 1`` blocks.

    Windows are ranked by ``start`` (per subject with ``scope="subject"``, so every fold
    holds a slice of every person; over all windows with ``scope="global"``) and cut into
    ``n_splits + 1`` blocks of equal count. Fold k trains on blocks ``0..k-1`` and tests on
    block ``k``. With ``purge``, training windows whose span ``[start, start + window_s)``
    reaches past the first test start of the same timeline are dropped.
    """
    t = np.asarray(start, np.float64)
    n = t.shape[0]
    if n_splits < 1:
        raise ConfigError(f"needs n_splits >= 1, got {n_splits}", key="cv.n_splits")
    if scope not in ("subject", "global"):
        raise ConfigError(f"{scope!r} is not 'subject' or 'global'", key="cv.forward_scope")
    if scope == "subject" and groups is not None:
        g = np.asarray(groups).astype(str)
    else:
        g = np.full(n, "all")
    block = np.full(n, -1, np.int64)
    for s in sorted(set(g.tolist()), key=subject_key):
        idx = np.flatnonzero(g == s)
        order = idx[np.argsort(t[idx], kind="mergesort")]
        if len(order) < n_splits + 1:
            raise ConfigError(
                f"timeline {s!r} has {len(order)} windows, fewer than n_splits + 1 blocks",
                key="cv.n_splits",
            )
        # equal-count blocks: rank r goes to block floor(r * (n_splits+1) / len)
        ranks = np.arange(len(order))
        block[order] = ranks * (n_splits + 1) // len(order)
    folds = []
    for k in range(1, n_splits + 1):
        train = block < k
        test = block == k
        if purge:
            for s in set(g[test].tolist()):
                same = g == s
                first_test = t[test & same].min()
                train &= ~(same & (t + window_s > first_test))
        tr, te = _idx(train), _idx(test)
        gg = np.asarray(groups).astype(str) if groups is not None else g
        folds.append(Fold(f"block {k}/{n_splits}", tr, te, _subjects(gg, te)))
    return folds


def fixed_split_fold(
    split: Sequence[str] | np.ndarray, groups: Sequence[str] | np.ndarray | None = None
) -> Fold:
    """The arrays file's own ``split``: train on "train", report on "test"."""
    s = np.char.lower(np.asarray(split).astype(str))
    unknown = sorted(set(s.tolist()) - {"train", "test"})
    if unknown:
        raise ConfigError(f"split values must be 'train'/'test', found {unknown}", key="cv.kind")
    tr, te = _idx(s == "train"), _idx(s == "test")
    if not len(tr) or not len(te):
        raise ConfigError("the fixed split needs both train and test windows", key="cv.kind")
    subjects = _subjects(np.asarray(groups).astype(str), te) if groups is not None else ()
    return Fold("fixed", tr, te, subjects)


def resolve_kind(kind: str, *, has_split: bool, has_groups: bool) -> str:
    """``"auto"``: the data's own train/test split when it carries one, else LOSO over its
    subjects; neither raises a one-line error saying what would work. Other kinds pass."""
    if kind != "auto":
        return kind
    if has_split:
        return "fixed"
    if has_groups:
        return "loso"
    raise ConfigError(
        "the data has neither a train/test split nor subject ids: add a 'split' (train/test) "
        "or 'groups' (subject ids) array, use a .ts train/test pair, or pass --cv forward",
        key="cv.kind",
    )


def make_folds(
    kind: str,
    *,
    groups: np.ndarray | None,
    start: np.ndarray | None,
    split: np.ndarray | None,
    n_splits: int = 4,
    scope: str = "subject",
    window_s: float = 0.0,
    purge: bool = True,
    max_folds: int = 0,
) -> list[Fold]:
    """The folds ``cv.kind`` asks for (first ``max_folds`` only when > 0), checked."""
    kind = resolve_kind(kind, has_split=split is not None, has_groups=groups is not None)
    if kind == "loso":
        if groups is None:
            raise ConfigError(
                "LOSO needs subject ids (the arrays file has no 'groups')", key="cv.kind"
            )
        folds = loso_folds(groups)
    elif kind == "forward":
        if start is None:
            raise ConfigError("forward chaining needs window start times", key="cv.kind")
        folds = forward_chaining_folds(
            start, n_splits, groups=groups, scope=scope, window_s=window_s, purge=purge
        )
    elif kind == "fixed":
        if split is None:
            raise ConfigError("the data has no 'split' for a fixed split", key="cv.kind")
        folds = [fixed_split_fold(split, groups)]
    else:
        raise ConfigError(f"{kind!r} is not loso|forward|fixed", key="cv.kind")
    if max_folds > 0:
        folds = folds[:max_folds]
    check_folds(folds, groups=groups if kind == "loso" else None)
    return folds


def check_folds(folds: Sequence[Fold], *, groups: np.ndarray | None = None) -> None:
    """Raise ``ConfigError`` if a fold leaks: shared windows, or (given ``groups``) a test
    subject with windows in training. Cheap; run on every fold before training."""
    g = None if groups is None else np.asarray(groups).astype(str)
    for f in folds:
        if not len(f.train) or not len(f.test):
            raise ConfigError(f"fold {f.name} has an empty train or test set", key="cv.kind")
        if np.intersect1d(f.train, f.test).size:
            raise ConfigError(f"fold {f.name} shares windows between train and test", key="cv.kind")
        if g is not None:
            leaked = set(g[f.train].tolist()) & set(g[f.test].tolist())
            if leaked:
                raise ConfigError(
                    f"fold {f.name}: test subjects {sorted(leaked)} also in training", key="cv.kind"
                )
