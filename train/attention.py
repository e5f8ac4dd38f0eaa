"""What the student attends to: the share of last-layer attention each patch and modality receives.

The report's modality and patch importance (``train.deploy``) read it. Attention is written
by hand in :class:`train.models.Student`, so its maps come out of ``forward_features``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from train.models import Student

__all__ = ["modality_importance", "patch_importance"]


@torch.no_grad()
def _received(model: Student, x: torch.Tensor) -> torch.Tensor:
    """(B, N): attention each token receives in the last layer, averaged over heads; from
    the CLS query with CLS pooling (the CLS token itself gets 0 and the rest sum to 1), else
    averaged over all queries (mean pooling weighs every token's output equally)."""
    att = model.forward_features(x).attention.mean(dim=1)  # (B, N, N)
    received = att[:, 0] if model.cls is not None else att.mean(dim=1)  # (B, N)
    if model.cls is not None:
        received = received[:, 1:] / received[:, 1:].sum(dim=1, keepdim=True).clamp_min(1e-12)
        received = F.pad(received, (1, 0))  # keep token indices aligned with token_slices
    return received


def patch_importance(model: Student, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Modality -> (B, P_m): attention each patch token receives in the last layer (with
    window-level tokens, those take the rest of the unit total)."""
    received = _received(model, x)
    return {name: received[:, a:b] for name, (a, b) in model.token_slices.items()}


def modality_importance(model: Student, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Modality -> (B,): share of last-layer attention its tokens (patches and its
    window-level token) receive; sums to 1 over modalities."""
    received, glob = _received(model, x), model.global_index
    out = {}
    for name, (a, b) in model.token_slices.items():
        share = received[:, a:b].sum(dim=1)  # (B,)
        out[name] = share + received[:, glob[name]] if name in glob else share
    return out
