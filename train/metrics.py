"""Classification metrics in numpy: what every model in the report is scored with.

Conventions (those of scikit-learn, so numbers compare with published ones):

- Confusion matrix rows are true classes, columns predicted classes.
- Precision / recall / F1 of a class with no predictions (or no support) is 0.
- Macro averages run over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's
  default label set): a LOSO fold whose subject lacks a class is not charged a zero for it.
- AUC-ROC is one-vs-rest per class from the predicted probabilities (rank statistic, ties
  count one half); the macro AUC averages the classes that have both positives and
  negatives in ``y_true``. With two classes the AUC is that of the positive class (index 1).
  NaN when it is undefined (JSON: null).
- Expected calibration error (Guo et al. 2017): the top-class confidence is binned into
  ``n_bins`` equal-width bins ``(lo, hi]``; ECE is ``Σ_b n_b/N · |acc_b − conf_b|``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

__all__ = [
    "ECE_BINS",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "expected_calibration_error",
    "json_safe",
    "precision_recall_f1",
    "roc_auc_binary",
    "roc_auc_ovr",
    "softmax",
]

ECE_BINS: Final = 15  # Guo et al.'s choice; enough bins for ~500 windows per fold


def softmax(z: np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, K)`` from logits ``(n, K)`` (max-shifted: no overflow)."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _labels(y: np.ndarray | Sequence[int]) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {a.shape}")
    return a.astype(np.int64)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch {t.shape} vs {p.shape}")
    return float(np.mean(t == p)) if t.size else math.nan


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts; rows true class, columns predicted class."""
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch {t.shape} vs {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels outside [0, {n_classes})")
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def precision_recall_f1(
    cm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (float64, 0 where undefined) and support (int64)."""
    cm = np.asarray(cm, np.int64)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return precision, recall, f1, support


def roc_auc_binary(positive: np.ndarray, score: np.ndarray) -> float:
    """AUC of ``score`` separating ``positive`` (bool) from the rest; NaN if one side is empty.

    The Mann-Whitney statistic with average ranks, so tied scores count one half.
    """
    pos = np.asarray(positive, bool)
    s = np.asarray(score, np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), np.float64)
    # average rank within each run of equal scores
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(s)]])
    for a, b in zip(starts, stops, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # mean of 1-based ranks a+1..b
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray) -> tuple[float, list[float]]:
    """``(summary AUC, per-class one-vs-rest AUCs)``; two classes: the positive class's AUC."""
    t = _labels(y_true)
    p = np.asarray(proba, np.float64)
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(f"proba shape {p.shape} does not match {t.shape[0]} labels")
    per_class = [roc_auc_binary(t == k, p[:, k]) for k in range(p.shape[1])]
    if p.shape[1] == 2:
        return per_class[1], per_class
    defined = [a for a in per_class if not math.isnan(a)]
    return (float(np.mean(defined)) if defined else math.nan), per_class


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    t = _labels(y_true)
    p = np.asarray(proba, np.float64)
    if t.size == 0:
        return math.nan
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds confidences in (edges[b], edges[b+1]]; a confidence of exactly 0 joins bin 0
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def evaluate(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Every metric of one model on one set of windows, as plain Python values.

    ``proba`` is ``(N, K)`` class probabilities (rows sum to 1); predictions are its argmax.
    """
    t = _labels(y_true)
    p = np.asarray(proba, np.float64)
    k = len(class_names)
    if p.shape != (t.shape[0], k):
        raise ValueError(f"proba shape {p.shape} != ({t.shape[0]}, {k})")
    pred = p.argmax(axis=1)
    cm = confusion_matrix(t, pred, k)
    prec, rec, f1, support = precision_recall_f1(cm)
    present = (support > 0) | (cm.sum(axis=0) > 0)
    auc, per_auc = roc_auc_ovr(t, p)

    def macro(v: np.ndarray) -> float:
        return float(v[present].mean()) if present.any() else math.nan

    return {
        "n": int(t.size),
        "accuracy": accuracy(t, pred),
        "macro_precision": macro(prec),
        "macro_recall": macro(rec),
        "macro_f1": macro(f1),
        "auc": auc,
        "ece": expected_calibration_error(t, p),
        "per_class": {
            name: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "auc": per_auc[i],
            }
            for i, name in enumerate(class_names)
        },
        "confusion": cm.tolist(),
    }


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars/arrays -> Python, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj
