"""Multi-teacher knowledge distillation losses: the student's loss against a mixture of teachers.

    L = α·CE(y, z_s) + (1−α)·T²·KL(p̄ ‖ σ(z_s/T)),   p̄ = Σ_k w_k·σ(z_k/T)

with teacher weights either equal (``w_k = 1/K``) or confidence-adaptive per sample
(CA-MKD: ``w_k = (1 − softmax_k(CE_1..CE_K))/(K−1)``, ``CE_k = CE(y, z_k)``), plus optional
feature ("hint") distillation ``‖r(h_s) − h_t‖²`` through a learned projection ``r``.
Teacher outputs are always detached: teachers are trained first and frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "WEIGHTINGS",
    "HintProjector",
    "confidence_adaptive_weights",
    "distillation_loss",
    "equal_weights",
    "hint_loss",
    "kd_loss",
    "mix_teachers",
]

WEIGHTINGS: Final = ("equal", "confidence")  # how the teachers' distributions are mixed


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, T: float) -> torch.Tensor:
    """``T²·KL(teacher_probs ‖ σ(z_s/T))``, averaged over the batch.

    ``T²`` keeps the soft-target gradients on the scale of the hard-label ones as T grows
    (Hinton et al.). ``reduction="batchmean"`` is the true KL per sample; "mean" would also
    divide by the number of classes.
    """
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (B, K)
    return T * T * F.kl_div(log_p_s, teacher_probs, reduction="batchmean")


def equal_weights(n_teachers: int, batch: int, device: torch.device | None = None) -> torch.Tensor:
    """``(B, K_teachers)`` all ``1/K``."""
    return torch.full((batch, n_teachers), 1.0 / n_teachers, device=device)


def confidence_adaptive_weights(
    teacher_logits: Sequence[torch.Tensor], y: torch.Tensor
) -> torch.Tensor:
    """CA-MKD per-sample teacher weights ``(B, K_teachers)``, each row summing to 1.

    ``w_k = (1 − softmax_k(CE_1..CE_K)) / (K−1)`` with ``CE_k`` the cross-entropy of teacher
    k's (untempered) logits on the true label: the more a teacher is wrong on this sample,
    the larger its share of the softmax and the smaller its weight. One teacher: weight 1.
    """
    n = len(teacher_logits)
    B = teacher_logits[0].shape[0]
    if n == 1:
        return torch.ones(B, 1, device=teacher_logits[0].device)
    ce = torch.stack(
        [F.cross_entropy(z.detach(), y, reduction="none") for z in teacher_logits], dim=1
    )  # (B, K_teachers)
    return (1.0 - F.softmax(ce, dim=1)) / (n - 1)


def mix_teachers(
    teacher_logits: Sequence[torch.Tensor], T: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``p̄ = Σ_k w_k·σ(z_k/T)`` -> ``(B, K)``; ``weights`` ``(B, K_teachers)``, None = equal."""
    if not teacher_logits:
        raise ValueError("need at least one teacher")
    probs = torch.stack(
        [F.softmax(z.detach() / T, dim=-1) for z in teacher_logits], dim=1
    )  # (B, K_teachers, K)
    if weights is None:
        return probs.mean(dim=1)
    return (weights.unsqueeze(-1) * probs).sum(dim=1)  # (B, K)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: Sequence[torch.Tensor],
    y: torch.Tensor,
    *,
    alpha: float,
    T: float,
    weighting: str = "equal",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``α·CE(y, z_s) + (1−α)·T²·KL(p̄ ‖ σ(z_s/T))``.

    Returns the loss and its detached parts: ``ce``, ``kd`` (already times T²) and
    ``teacher_weights`` ``(B, K_teachers)`` (for logging which teacher the student followed).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must be in [0, 1]")
    if T <= 0:
        raise ValueError(f"T={T} must be positive")
    if weighting == "equal":
        w = equal_weights(len(teacher_logits), student_logits.shape[0], student_logits.device)
    elif weighting == "confidence":
        w = confidence_adaptive_weights(teacher_logits, y)
    else:
        raise ValueError(f"weighting {weighting!r} not in {WEIGHTINGS}")
    ce = F.cross_entropy(student_logits, y)
    kd = kd_loss(student_logits, mix_teachers(teacher_logits, T, w), T)
    loss = alpha * ce + (1.0 - alpha) * kd
    return loss, {"ce": ce.detach(), "kd": kd.detach(), "teacher_weights": w.detach()}


class HintProjector(nn.Module):
    """``r``: student features ``(B, d_s)`` -> teacher feature space ``(B, d_t)``.

    Trained with the student, dropped after training (never exported)."""

    def __init__(self, d_s: int, d_t: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_s, d_t)

    def forward(self, h_s: torch.Tensor) -> torch.Tensor:
        return self.proj(h_s)


def hint_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, projector: HintProjector
) -> torch.Tensor:
    """``mean_b ‖r(h_s) − h_t‖² / d_t``: the squared error averaged over batch and features,
    so its scale does not grow with the teacher's width."""
    return F.mse_loss(projector(student_features), teacher_features.detach())
