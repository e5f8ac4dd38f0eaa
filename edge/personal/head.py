"""The student's classifier head in numpy: logits, training on embeddings, and personalization.

The student's body stays frozen; what a hub (and a federation of hubs) learns is this head,
``logits = embedding @ W + b``. Everything here is numpy only, so it runs on a hub.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.errors import InputTooLargeError
from core.npz import check_npz_size, save_npz_whole
from edge.errors import EdgeError

__all__ = [
    "Head",
    "HeadError",
    "Personalization",
    "fit_head",
    "loss",
    "macro_f1",
    "personalize",
]

# a head is a (D, K) matrix of an embedding a few hundred wide at most; anything far past
# that is not a head
MAX_HEAD_BYTES: Final = 64 * 1024**2
# Nesterov momentum: full-batch descent on a convex loss, so acceleration is safe and lets a
# few hundred steps reach the optimum on ill-conditioned embeddings
MOMENTUM: Final = 0.9


class HeadError(EdgeError):
    """A head file or head arrays are unusable (missing, not an .npz, wrong shapes, not
    finite), or training data does not fit the head. ``path`` names the file when there is one."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass
class Head:
    """The student's classifier: logits = emb @ W + b."""

    W: np.ndarray  # (D, K) float32
    b: np.ndarray  # (K,) float32

    def __post_init__(self) -> None:
        self.W, self.b = _checked(self.W, self.b)

    @property
    def dim(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.W.shape[1])

    def logits(self, emb: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, K) float32."""
        x = _embeddings(emb, self.dim)
        return (x @ self.W + self.b).astype(np.float32)

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        """Softmax of the logits, (N, K) float32."""
        return _softmax(self.logits(emb).astype(np.float64)).astype(np.float32)

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """(N,) int64 class indices."""
        return self.logits(emb).argmax(axis=1).astype(np.int64)

    def to_arrays(self) -> list[np.ndarray]:
        """[W, b]: what Flower ships."""
        return [self.W.copy(), self.b.copy()]

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> Head:
        if len(arrays) != 2:
            raise HeadError(f"a head is two arrays [W, b], got {len(arrays)}")
        return cls(np.asarray(arrays[0]), np.asarray(arrays[1]))

    def save(self, path: Path) -> None:
        """An .npz with W and b, written whole or not at all."""
        save_npz_whole(path, W=self.W, b=self.b)

    @classmethod
    def load(cls, path: Path) -> Head:
        """HeadError (one line, naming the file) on a missing, corrupt or wrong-shaped file."""
        p = Path(path)
        try:
            check_npz_size(p, max_bytes=MAX_HEAD_BYTES)
            with np.load(p, allow_pickle=False) as z:
                missing = {"W", "b"} - set(z.files)
                if missing:
                    raise HeadError(
                        f"not a head: no {', '.join(sorted(missing))} array "
                        f"(holds {', '.join(z.files) or 'nothing'})",
                        path=str(p),
                    )
                W, b = z["W"], z["b"]
        except HeadError:
            raise
        except InputTooLargeError as e:
            raise HeadError(f"too large for a head ({e})", path=str(p)) from e
        except FileNotFoundError as e:
            raise HeadError("no such file", path=str(p)) from e
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise HeadError(f"not a readable .npz ({type(e).__name__})", path=str(p)) from e
        try:
            return cls(W, b)
        except HeadError as e:
            raise HeadError(str(e), path=str(p)) from e


def _checked(W: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    W = np.asarray(W)
    b = np.asarray(b)
    if W.ndim != 2 or 0 in W.shape:
        raise HeadError(f"W must be a non-empty (D, K) matrix, got shape {W.shape}")
    if b.shape != (W.shape[1],):
        raise HeadError(f"b must have shape ({W.shape[1]},) to match W {W.shape}, got {b.shape}")
    for name, a in (("W", W), ("b", b)):
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise HeadError(f"{name} must be real numbers, got dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise HeadError(f"{name} holds non-finite values")
    return W.astype(np.float32), b.astype(np.float32)


def _embeddings(emb: Any, dim: int) -> np.ndarray:
    x = np.asarray(emb)
    if x.ndim != 2 or x.shape[1] != dim:
        raise HeadError(f"embeddings must have shape (N, {dim}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise HeadError("embeddings must be finite real numbers")
    return x.astype(np.float32, copy=False)


def _labels(y: Any, n: int, k: int) -> np.ndarray:
    t = np.asarray(y)
    if t.shape != (n,):
        raise HeadError(f"labels must have shape ({n},), got {t.shape}")
    if n and (not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= k):
        raise HeadError(f"labels must be integers in [0, {k})")
    return t.astype(np.int64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in truth or prediction (as ``train.metrics``
    reports it, so hub and host figures compare); NaN for no rows."""
    t = np.asarray(y_true, np.int64)
    p = np.asarray(y_pred, np.int64)
    if t.shape != p.shape:
        raise HeadError(f"shape mismatch {t.shape} vs {p.shape}")
    if not t.size:
        return math.nan
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (t, p), 1)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support > 0) | (predicted > 0)
    return float(f1[present].mean())


def fit_head(
    head: Head,
    emb: np.ndarray,
    y: np.ndarray,
    *,
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 1e-3,
    prox_mu: float = 0.0,
    balanced: bool = True,
    seed: int = 0,
) -> Head:
    """Warm-started full-batch gradient descent on softmax cross-entropy; prox_mu pulls the
    weights toward the starting head (FedProx's proximal term, and what keeps a few labels from
    wrecking the shared head). Returns a new Head; never mutates ``head``.

    ``lr`` is capped at 1/L, L the loss's smoothness bound on these embeddings, so descent
    cannot diverge whatever the embeddings' scale. ``balanced`` weighs each class present
    equally (a resident's labels are mostly "baseline"). Full-batch descent is deterministic:
    ``seed`` is accepted so callers pass one seed everywhere, and changes nothing here.
    """
    del seed
    if steps < 0 or not (lr > 0) or l2 < 0 or prox_mu < 0:
        raise HeadError("fit_head needs steps >= 0, lr > 0, l2 >= 0 and prox_mu >= 0")
    x = _embeddings(emb, head.dim).astype(np.float64)
    n, k = x.shape[0], head.n_classes
    t = _labels(y, n, k)
    W0, b0 = head.W.astype(np.float64), head.b.astype(np.float64)
    if n == 0 or steps == 0:
        return Head(W0.copy(), b0.copy())
    counts = np.bincount(t, minlength=k).astype(np.float64)
    # balanced: each class present weighs the same in total
    w = n / (np.count_nonzero(counts) * counts[t]) if balanced else np.ones(n)
    w = w / w.sum()
    onehot = np.eye(k)[t]
    # Hessian of weighted softmax CE w.r.t. (W, b) <= 1/2 * lambda_max(X1^T diag(w) X1)
    x1 = np.hstack([x, np.ones((n, 1))])
    lam = float(np.linalg.eigvalsh((x1 * w[:, None]).T @ x1)[-1])
    step = min(lr, 1.0 / (0.5 * lam + l2 + prox_mu))
    W, b = W0.copy(), b0.copy()
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(steps):
        # Nesterov: the gradient at the look-ahead point
        lW, lb = W + MOMENTUM * vW, b + MOMENTUM * vb
        g = (_softmax(x @ lW + lb) - onehot) * w[:, None]
        gW = x.T @ g + l2 * lW + prox_mu * (lW - W0)
        gb = g.sum(axis=0) + prox_mu * (lb - b0)
        vW = MOMENTUM * vW - step * gW
        vb = MOMENTUM * vb - step * gb
        W, b = W + vW, b + vb
    return Head(W, b)


def loss(head: Head, emb: np.ndarray, y: np.ndarray, *, balanced: bool = True) -> float:
    """Mean softmax cross-entropy of ``head`` on labelled embeddings (class-balanced by default)."""
    x = _embeddings(emb, head.dim).astype(np.float64)
    t = _labels(y, x.shape[0], head.n_classes)
    if not t.size:
        return math.nan
    z = x @ head.W.astype(np.float64) + head.b
    z = z - z.max(axis=1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=1)) - z[np.arange(t.size), t]
    if not balanced:
        return float(nll.mean())
    counts = np.bincount(t, minlength=head.n_classes)
    w = 1.0 / counts[t]
    return float((nll * w).sum() / w.sum())


@dataclass
class Personalization:
    head: Head  # the personal head if chosen, else the shared one
    chosen: bool  # True when the personal head beat the shared one on held-back labels
    shared_f1: float  # macro-F1 of the shared head on the held-back labels
    personal_f1: float
    n_fit: int
    n_holdout: int


def personalize(
    shared: Head,
    emb: np.ndarray,
    y: np.ndarray,
    *,
    holdout: float = 0.3,
    min_labels: int = 20,
    seed: int = 0,
    **fit_kw: Any,
) -> Personalization:
    """Fit a personal head on the older part of a resident's confirmed labels (time order: rows
    arrive oldest first), judge it on the newest ``holdout`` fraction; chosen only if it beats
    the shared head there; when chosen, the head returned is refitted on all the labels.
    Fewer than ``min_labels`` labels: the shared head, chosen=False (both F1s NaN, nothing
    held back)."""
    if not 0.0 < holdout < 1.0:
        raise HeadError(f"holdout must be in (0, 1), got {holdout}")
    x = _embeddings(emb, shared.dim)
    t = _labels(y, x.shape[0], shared.n_classes)
    n = t.size
    if n < max(min_labels, 2):
        return Personalization(shared, False, math.nan, math.nan, 0, 0)
    n_hold = min(n - 1, max(1, round(holdout * n)))
    n_fit = n - n_hold
    personal = fit_head(shared, x[:n_fit], t[:n_fit], seed=seed, **fit_kw)
    k = shared.n_classes
    shared_f1 = macro_f1(t[n_fit:], shared.predict(x[n_fit:]), k)
    personal_f1 = macro_f1(t[n_fit:], personal.predict(x[n_fit:]), k)
    if not personal_f1 > shared_f1:
        return Personalization(shared, False, shared_f1, personal_f1, n_fit, n_hold)
    # chosen: refit on every label, the newest included (they are the closest to what comes
    # next); the judgement above was made on a head that had not seen them
    final = fit_head(shared, x, t, seed=seed, **fit_kw)
    return Personalization(final, True, shared_f1, personal_f1, n_fit, n_hold)
