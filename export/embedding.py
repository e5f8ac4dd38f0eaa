"""The student's embedding as a second model output, its classifier as ``head.npz``, and their parity.

The hub personalizes by refitting only the final Linear (``logits = embedding @ W + b``) on a
resident's confirmed labels, so every exported file returns the vector that Linear reads beside
the logits, and the bundle carries ``W`` and ``b``. :func:`head_parity` is the export's proof
that the two agree on real windows: the shared head applied to the shipped model's embedding
decides as the shipped model does.
"""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from edge.bundle import EMBEDDING_NAME, HEAD_NAME
from export.errors import ExportError

__all__ = [
    "EMBEDDING_NAME",
    "HEAD_FP32_MAX_ABS_DIFF",
    "HEAD_INT8_MIN_AGREEMENT",
    "HEAD_NAME",
    "WithEmbedding",
    "check_head_parity",
    "head_arrays",
    "head_parity",
    "with_embedding",
    "write_head",
]

# fp32: the runtime's matmul and numpy's differ only by float rounding over D terms
HEAD_FP32_MAX_ABS_DIFF: Final = 1e-4
# int8: both outputs are rounded to their own 8-bit grids, so only decisions are compared, and
# on windows near a class boundary two roundings may pick different classes. The fp32 check
# is what proves head.npz is the model's head; this bar only catches an int8 file whose
# embedding output is broken (a wrong head agrees on about 1 / K of the windows)
HEAD_INT8_MIN_AGREEMENT: Final = 0.9


class WithEmbedding(nn.Module):
    """``model`` with two outputs: ``(logits (B, K), embedding (B, D))``.

    ``body`` is a copy of ``model`` whose ``head`` is the identity, so its forward returns what
    the head reads; this holds for any model whose forward ends in ``self.head(features)``
    (the student and the tests' stand-in both do)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = model.head
        self.body = copy.deepcopy(model)
        self.body.head = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.body(x)  # (B, D)
        return self.head(emb), emb  # (B, K), (B, D)


def with_embedding(model: nn.Module, probe: np.ndarray) -> WithEmbedding | None:
    """The two-output wrapper, or None when ``model`` has no final ``head`` Linear or its
    forward does more than ``head(features)`` on the ``probe`` windows (N, L) (such a bundle
    ships without an embedding: the hub then cannot personalize it)."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        return None
    wrapped = WithEmbedding(model).eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(probe, dtype=np.float32))
        ref = model.eval()(x)
        logits, emb = wrapped(x)
    if emb.ndim != 2 or emb.shape[1] != head.in_features or not torch.allclose(ref, logits):
        return None
    return wrapped


def head_arrays(model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """``W`` (D, K) and ``b`` (K,) float32 of ``model.head``: ``logits = emb @ W + b``."""
    head = model.head
    W = head.weight.detach().cpu().numpy().T.astype(np.float32)  # (D, K)
    b = (
        head.bias.detach().cpu().numpy() if head.bias is not None else np.zeros(head.out_features)
    ).astype(np.float32)  # (K,)
    return np.ascontiguousarray(W), b


def write_head(root: Path, W: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Write ``root/head.npz`` (arrays ``W``, ``b``) and return its manifest entry."""
    buf = io.BytesIO()
    np.savez(buf, W=W.astype(np.float32), b=b.astype(np.float32))
    data = buf.getvalue()
    (root / HEAD_NAME).write_bytes(data)
    return {
        "path": HEAD_NAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "shape": {"W": list(W.shape), "b": list(b.shape)},
    }


def head_parity(
    logits: np.ndarray, emb: np.ndarray, W: np.ndarray, b: np.ndarray
) -> dict[str, float]:
    """How far ``emb @ W + b`` is from ``logits``: max abs difference and top-1 agreement."""
    mine = emb.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)  # (N, K)
    return {
        "max_abs_diff": float(np.abs(mine - logits).max()) if len(logits) else 0.0,
        "agreement": float((mine.argmax(1) == logits.argmax(1)).mean()) if len(logits) else 1.0,
        "windows": len(logits),
    }


def check_head_parity(
    parity: Mapping[str, Mapping[str, float]], precisions: Mapping[str, str]
) -> None:
    """Raise ExportError naming the first file whose embedding and head disagree with its logits."""
    for key, p in parity.items():
        if precisions[key] == "fp32":
            ok = p["max_abs_diff"] <= HEAD_FP32_MAX_ABS_DIFF
            bar = f"max |logits - (emb @ W + b)| {p['max_abs_diff']:.2e} > {HEAD_FP32_MAX_ABS_DIFF}"
        else:
            ok = p["agreement"] >= HEAD_INT8_MIN_AGREEMENT
            bar = f"top-1 agreement of emb @ W + b {p['agreement']:.3f} < {HEAD_INT8_MIN_AGREEMENT}"
        if not ok:
            raise ExportError(
                f"head.npz does not reproduce the model's logits: {bar}",
                path=key,
                stage="head_parity",
            )
