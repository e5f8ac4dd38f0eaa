"""Sizes training by the data: batch, learning rate and step budget, and the inner validation rows.

:func:`plan_budget` turns the number of training windows and the model's cost per window
into a :class:`Budget`: a batch that suits the size, and as many optimizer steps as a fixed
compute budget buys, up to a cap. A 40-window benchmark of short series gets the cap (many
passes over its windows), a LOSO fold of 60 s multi-sensor windows a few passes: what one
step costs, not how many windows there are, bounds a run's time. :func:`inner_split` carves the early-stopping validation
rows out of the training rows it is given, and only those: the caller passes a job's
training windows, never its test windows or its held-out subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = ["VAL_BY", "Budget", "inner_split", "plan_budget"]

MIN_BATCH: Final = 8  # below this, BatchNorm statistics of a batch are too noisy
ROWS_PER_BATCH: Final = 8  # a small set's batch is about an eighth of it: several steps per pass
VAL_BY: Final = ("time", "subject", "rows")  # how inner_split picks validation rows
TRAIN_MACS_PER_FORWARD: Final = 3  # a training step: the forward pass and a backward of twice it


@dataclass(frozen=True)
class Budget:
    """How one model is optimised."""

    batch_size: int
    lr: float
    max_steps: int
    eval_every: int  # steps between validation passes
    patience: int  # validation passes without improvement before stopping
    min_steps: int  # never stop before this many steps


def plan_budget(
    n_train: int,
    *,
    batch_size: int,
    lr: float,
    steps: int,
    macs_per_window: int,
    budget_gmacs: float,
    evals: int,
    patience: int,
    min_fraction: float,
) -> Budget:
    """The largest power-of-two batch up to ``batch_size`` that is about ``n/8`` (at least
    8), the learning rate scaled by the square root of the batch ratio (the noise scale of
    AdamW's steps stays comparable), as many steps as ``budget_gmacs`` billion
    multiply-accumulates of training buy (a step costs about three forward passes of the
    batch) but at most ``steps``, ``evals`` validation passes, and no stop before
    ``min_fraction`` of the budget."""
    b = batch_size
    if n_train < batch_size * ROWS_PER_BATCH:
        b = 2 ** max(0, round(math.log2(max(1.0, n_train / ROWS_PER_BATCH))))
    b = max(MIN_BATCH, min(batch_size, b))
    per_step = TRAIN_MACS_PER_FORWARD * max(1, macs_per_window) * b
    steps = max(1, min(steps, int(budget_gmacs * 1e9 // per_step)))
    every = max(1, steps // max(1, evals))
    return Budget(
        batch_size=b,
        lr=lr * math.sqrt(b / batch_size),
        max_steps=steps,
        eval_every=every,
        patience=patience,
        min_steps=max(every, int(steps * min_fraction)),
    )


def inner_split(
    train_idx: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    start: np.ndarray | None,
    *,
    fraction: float,
    by: str,
    window_s: float,
    rng: np.random.Generator,
    min_subjects: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_idx, val_idx)``: disjoint subsets of ``train_idx`` (indices into ``y``).

    - ``by="time"`` (with two or more subjects and start times): the last ``fraction`` of
      each subject's windows of each class; that subject's training windows whose span
      overlaps one of them are dropped, so the two sets share no sample. Every person
      stays in training.
    - ``by="subject"`` (with ``min_subjects`` or more): about ``fraction`` of the subjects,
      at least one, whole.
    - otherwise (``"rows"``, or too few subjects): about ``fraction`` of each class's rows,
      at least one of a class that has two or more.

    ``fraction`` 0 returns no validation rows."""
    train_idx = np.asarray(train_idx, np.int64)
    empty = train_idx[:0]
    if fraction <= 0 or len(train_idx) < 4:
        return train_idx, empty
    yt = y[train_idx]
    g = None if groups is None else np.asarray(groups)[train_idx]
    subjects = np.unique(g) if g is not None else np.array([])
    if by == "time" and g is not None and start is not None and len(subjects) >= 2:
        t = np.asarray(start, np.float64)[train_idx]
        is_val = np.zeros(len(train_idx), bool)
        for s in subjects:
            for c in np.unique(yt[g == s]):
                pos = np.flatnonzero((g == s) & (yt == c))
                if len(pos) >= 4:
                    pos = pos[np.argsort(t[pos], kind="mergesort")]
                    is_val[pos[-max(1, round(fraction * len(pos))) :]] = True
        drop = np.zeros(len(train_idx), bool)
        for s in subjects:
            mine = g == s
            tv = np.sort(t[mine & is_val])
            if not len(tv):
                continue
            cand = np.flatnonzero(mine & ~is_val)
            # nearest validation start on either side: spans overlap when closer than a window
            i = np.searchsorted(tv, t[cand])
            after = np.abs(tv[np.minimum(i, len(tv) - 1)] - t[cand])
            before = np.abs(t[cand] - tv[np.maximum(i - 1, 0)])
            drop[cand[np.minimum(after, before) < window_s]] = True
        return train_idx[~is_val & ~drop], train_idx[is_val]
    if by == "subject" and g is not None and len(subjects) >= min_subjects:
        k = max(1, round(fraction * len(subjects)))
        is_val = np.isin(g, rng.choice(subjects, size=k, replace=False))
        return train_idx[~is_val], train_idx[is_val]
    is_val = np.zeros(len(train_idx), bool)
    for c in np.unique(yt):
        pos = np.flatnonzero(yt == c)
        if len(pos) >= 2:
            k = max(1, round(fraction * len(pos)))
            is_val[rng.choice(pos, size=k, replace=False)] = True
    return train_idx[~is_val], train_idx[is_val]
