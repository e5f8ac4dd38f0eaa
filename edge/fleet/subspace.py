"""The head's update in a small public subspace: what hubs train and send instead of the whole head.

Under central DP the coordinator adds Gaussian noise of the same scale to every coordinate it
releases, so the noise's norm grows with the square root of how many coordinates a hub sends
while the clipped update's norm does not. Here a hub sends only ``A`` (k × classes), and the
shared head is

    W = W0 + T·A,    b = b0 − (μ·T)·A

``W0, b0`` the student's own head; ``T`` (D × k) the top-k principal directions of *public*
embeddings (the subjects the student was trained on, which live in no hub), each scaled to
unit variance on them; ``μ`` their mean. So a coefficient moves a logit by about one unit for
a typical window (noise on ``A`` hurts every direction alike), and the bias follows from the
centring instead of being released: noise on a released bias would shift whole classes.

Numpy only: the hub trains ``A`` (:meth:`HeadBasis.fit`); the basis travels to hubs as bytes
(:meth:`HeadBasis.to_bytes`), since the round's one array record must stay the coefficients
that Flower's DP wrappers clip and noise.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Final

import numpy as np

from edge.errors import EdgeError
from edge.personal.head import MOMENTUM, Head

__all__ = ["BASIS_KEY", "HeadBasis", "SubspaceError", "public_basis"]

BASIS_KEY: Final = "basis"  # the train message's config entry holding the basis bytes
MAX_BASIS_BYTES: Final = 16 * 1024**2  # a few (D × k) float32 matrices of a head's width
_FIELDS: Final = ("W0", "b0", "T", "mu")


class SubspaceError(EdgeError):
    """A basis cannot be built or read (too few public windows, wrong shapes, bad bytes)."""


@dataclass(frozen=True)
class HeadBasis:
    """The fixed, public part of a subspace head; the coefficients ``A`` are what is learnt."""

    W0: np.ndarray  # (D, K) the student's head
    b0: np.ndarray  # (K,)
    T: np.ndarray  # (D, k) whitened public principal directions
    mu: np.ndarray  # (D,) public mean embedding

    def __post_init__(self) -> None:
        d, k = self.W0.shape
        if self.b0.shape != (k,) or self.T.ndim != 2 or self.T.shape[0] != d:
            raise SubspaceError(
                f"basis shapes disagree: W0 {self.W0.shape}, b0 {self.b0.shape}, T {self.T.shape}"
            )
        if self.mu.shape != (d,):
            raise SubspaceError(f"mu must have shape ({d},), got {self.mu.shape}")
        for name in _FIELDS:
            if not np.isfinite(getattr(self, name)).all():
                raise SubspaceError(f"basis {name} holds non-finite values")

    @property
    def k(self) -> int:
        return int(self.T.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.W0.shape[1])

    def zero(self) -> np.ndarray:
        """The coefficients of the student's own head, (k, K) float32."""
        return np.zeros((self.k, self.n_classes), np.float32)

    def head(self, A: np.ndarray) -> Head:
        """The shared head the coefficients stand for."""
        A = self._coefficients(A).astype(np.float64)
        W = self.W0.astype(np.float64) + self.T.astype(np.float64) @ A
        b = self.b0.astype(np.float64) - (self.mu.astype(np.float64) @ self.T) @ A
        return Head(W, b)

    def fit(
        self,
        A: np.ndarray,
        emb: np.ndarray,
        y: np.ndarray,
        *,
        steps: int,
        lr: float,
        l2: float,
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        """``A`` trained on labelled embeddings: class-balanced softmax cross-entropy of
        :meth:`head`, full-batch Nesterov descent with the step capped at 1/L (as
        :func:`edge.personal.head.fit_head` trains a whole head; the logits here carry the
        fixed part ``W0, b0``, which that function has no place for). ``l2`` pulls ``A``
        toward 0 (the student's head), ``prox_mu`` toward the ``A`` it started from."""
        A0 = self._coefficients(A).astype(np.float64)
        x = np.asarray(emb, np.float64)
        t = np.asarray(y, np.int64)
        if x.ndim != 2 or x.shape[0] != t.shape[0] or x.shape[1] != self.W0.shape[0]:
            raise SubspaceError(f"embeddings {x.shape} and labels {t.shape} do not fit the basis")
        n, kc = t.shape[0], self.n_classes
        if n == 0 or steps <= 0:
            return A0.astype(np.float32)
        u = (x - self.mu) @ self.T  # (N, k) whitened public coordinates
        fixed = x @ self.W0 + self.b0  # the student's head's logits
        counts = np.bincount(t, minlength=kc).astype(np.float64)
        w = n / (np.count_nonzero(counts) * counts[t])
        w = w / w.sum()
        onehot = np.eye(kc)[t]
        lam = float(np.linalg.eigvalsh((u * w[:, None]).T @ u)[-1])
        step = min(lr, 1.0 / (0.5 * lam + l2 + prox_mu))
        Acur, v = A0.copy(), np.zeros_like(A0)
        for _ in range(steps):
            look = Acur + MOMENTUM * v
            z = fixed + u @ look
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = u.T @ ((p - onehot) * w[:, None]) + l2 * look + prox_mu * (look - A0)
            v = MOMENTUM * v - step * g
            Acur = Acur + v
        return Acur.astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **{name: getattr(self, name).astype(np.float32) for name in _FIELDS})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> HeadBasis:
        if len(data) > MAX_BASIS_BYTES:
            raise SubspaceError(
                f"a basis of {len(data)} bytes is too large (max {MAX_BASIS_BYTES})"
            )
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {name: z[name].astype(np.float32) for name in _FIELDS}
        except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise SubspaceError(f"not a head basis ({type(e).__name__}: {e})") from e
        return cls(**arrays)

    def _coefficients(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A)
        if A.shape != (self.k, self.n_classes) or not np.isfinite(A).all():
            raise SubspaceError(
                f"coefficients must be finite with shape ({self.k}, {self.n_classes}), "
                f"got {A.shape}"
            )
        return A


def public_basis(head: Head, public_emb: np.ndarray, k: int) -> HeadBasis:
    """The basis of ``head`` over the top-``k`` principal directions of ``public_emb``
    (embeddings the coordinator may hold: the student's own training subjects), each scaled
    to unit variance on them."""
    x = np.asarray(public_emb, np.float64)
    if x.ndim != 2 or x.shape[1] != head.dim:
        raise SubspaceError(f"public embeddings must have shape (N, {head.dim}), got {x.shape}")
    if not 1 <= k <= min(x.shape):
        raise SubspaceError(
            f"a subspace of {k} directions needs 1 <= k <= {min(x.shape)} "
            f"(public windows {x.shape[0]}, embedding width {x.shape[1]})"
        )
    mu = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    scale = s[:k] / np.sqrt(x.shape[0])  # the public std along each direction
    if not (scale > 1e-8).all():
        raise SubspaceError(f"the public embeddings span fewer than {k} directions")
    return HeadBasis(
        head.W.astype(np.float32),
        head.b.astype(np.float32),
        (vt[:k].T / scale).astype(np.float32),
        mu.astype(np.float32),
    )
