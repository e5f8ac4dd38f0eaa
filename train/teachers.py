"""The teachers: bigger 1-D CNNs over any group of modalities, host-only, never exported.

Teachers may see signals the wearable never has (chest ECG, respiration, EMG); each reads its
modalities out of the same packed float32 input ``(B, L)`` the student reads
(:func:`train.models.slice_modality`), so ``build_teacher(ckpt["model_args"])`` rebuilds one.
:class:`FusionTeacher` joins its modalities early (one encoder on stacked inputs), mid (a joint
head over per-modality encoders) or late (the mean of per-modality heads);
:class:`ModalityTeacher` is the one-group case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from core.contract import InputContract
from train.models import slice_modality, tuplify_fields
from train.packed import check_layout, layout_fields

__all__ = [
    "FUSIONS",
    "LATE_SPACES",
    "ConvEncoder",
    "FusionTeacher",
    "ModalityTeacher",
    "TeacherConfig",
    "TeacherOutput",
    "build_teacher",
]

FUSIONS: Final = ("early", "mid", "late")  # where a teacher joins its modalities
LATE_SPACES: Final = ("logit", "prob")  # what a late-fusion teacher averages


@dataclass
class TeacherConfig:
    """Hyperparameters and input layout of a teacher (all fields JSON-able)."""

    # input layout, filled by from_contract: one entry per modality the teacher sees
    modalities: tuple[str, ...] = ()
    offsets: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    samples: tuple[int, ...] = ()
    rates_hz: tuple[float, ...] = ()
    input_length: int = 0  # L of the packed vector the teacher reads (may hold more modalities)
    n_classes: int = 3
    fusion: str = (
        "mid"  # early: one encoder on stacked inputs; mid: joint head; late: mean of heads
    )
    late_space: str = "logit"  # late fusion averages logits or probabilities
    width: int = 16  # conv channels; teachers train 10+ times in LOSO on 2 cores, keep them cheap
    n_blocks: int = 3  # stride-2 conv blocks after the stem: 8 Hz -> 1 Hz features
    kernel: int = 5  # taps of the block convs (5 at 4 Hz covers ~1 s, a heartbeat to an SCR rise)
    stem_rate_hz: float = 8.0  # the stem strides every modality down to about this rate
    common_rate_hz: float = 8.0  # early fusion resamples every modality to this rate
    hidden: int = 64  # joint head width; also the hint feature size D_t for early/mid
    dropout: float = 0.2  # teachers overfit the few subjects faster than the student

    def __post_init__(self) -> None:
        tuplify_fields(self)
        check_layout(self)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r} not in {FUSIONS}")
        if self.late_space not in LATE_SPACES:
            raise ValueError(f"late_space {self.late_space!r} not in {LATE_SPACES}")

    @classmethod
    def from_contract(
        cls, contract: InputContract, modalities: Sequence[str] | None = None, **overrides: Any
    ) -> TeacherConfig:
        """A teacher over ``modalities`` (default: all) of ``contract``'s packed vector; it may
        be the full wrist+chest contract, the teacher slices out its own modalities."""
        return cls(**{**layout_fields(contract, modalities), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class TeacherOutput(NamedTuple):
    logits: torch.Tensor  # (B, K)
    features: torch.Tensor  # (B, D_t): penultimate representation, for hint distillation


class ConvEncoder(nn.Module):
    """(B, C, T) at ``rate_hz`` -> (B, 2*width): strided stem to ~stem_rate_hz, stride-2
    conv blocks, then mean and standard deviation over time (level and variability both
    carry the arousal signal: tonic EDA vs. HRV)."""

    def __init__(self, channels: int, rate_hz: float, config: TeacherConfig) -> None:
        super().__init__()
        stride = max(1, round(rate_hz / config.stem_rate_hz))
        k = 2 * stride + 1  # odd, spans two output steps so no input sample is skipped
        w = config.width
        layers: list[nn.Module] = [
            nn.Conv1d(channels, w, k, stride=stride, padding=k // 2),
            nn.BatchNorm1d(w),
            nn.GELU(),
        ]
        for _ in range(config.n_blocks):
            layers += [
                nn.Conv1d(w, w, config.kernel, stride=2, padding=config.kernel // 2),
                nn.BatchNorm1d(w),
                nn.GELU(),
            ]
        self.net = nn.Sequential(*layers)
        self.out_dim = 2 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)  # (B, w, T')
        return torch.cat([h.mean(dim=2), h.std(dim=2, unbiased=False)], dim=1)  # (B, 2w)


def _head(d_in: int, config: TeacherConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(config.dropout),
        nn.Linear(d_in, config.hidden),
        nn.GELU(),
    )


class FusionTeacher(nn.Module):
    """A teacher over any group of modalities with early, mid or late fusion.

    - early: each modality resampled to ``common_rate_hz`` (mean-pooling down, linear
      interpolation up), stacked channel-wise, one encoder.
    - mid: one encoder per modality, features concatenated, one joint head.
    - late: one encoder and classifier per modality; logits (or probabilities) averaged.
      With ``late_space="prob"`` the returned logits are log mean-probabilities, so
      ``softmax(logits)`` is the averaged distribution.
    """

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        K = c.n_classes
        if c.fusion == "early":
            self.common_len = max(1, round(c.samples[0] / c.rates_hz[0] * c.common_rate_hz))
            self.encoders = nn.ModuleList([ConvEncoder(sum(c.channels), c.common_rate_hz, c)])
        else:
            self.encoders = nn.ModuleList(
                ConvEncoder(ch, r, c) for ch, r in zip(c.channels, c.rates_hz, strict=True)
            )
        d_enc = self.encoders[0].out_dim
        if c.fusion == "late":
            self.heads = nn.ModuleList(_head(d_enc, c) for _ in c.modalities)
            self.classifiers = nn.ModuleList(nn.Linear(c.hidden, K) for _ in c.modalities)
            self.feature_dim = c.hidden * len(c.modalities)
        else:
            n_in = 1 if c.fusion == "early" else len(c.modalities)
            self.heads = nn.ModuleList([_head(d_enc * n_in, c)])
            self.classifiers = nn.ModuleList([nn.Linear(c.hidden, K)])
            self.feature_dim = c.hidden

    def _inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        c = self.config
        return [
            slice_modality(x, o, ch, s) for o, ch, s in zip(c.offsets, c.channels, c.samples, strict=True)
        ]  # each (B, C_m, T_m)

    def _resample(self, xm: torch.Tensor) -> torch.Tensor:
        if xm.shape[2] >= self.common_len:
            return F.adaptive_avg_pool1d(xm, self.common_len)  # averaging is the anti-alias
        return F.interpolate(xm, size=self.common_len, mode="linear", align_corners=False)

    def forward_features(self, x: torch.Tensor) -> TeacherOutput:
        xs = self._inputs(x)
        if self.config.fusion == "early":
            stacked = torch.cat([self._resample(xm) for xm in xs], dim=1)  # (B, ΣC, T_c)
            h = self.heads[0](self.encoders[0](stacked))  # (B, hidden)
            return TeacherOutput(self.classifiers[0](h), h)
        feats = [enc(xm) for enc, xm in zip(self.encoders, xs, strict=True)]  # M x (B, 2w)
        if self.config.fusion == "mid":
            h = self.heads[0](torch.cat(feats, dim=1))  # (B, hidden)
            return TeacherOutput(self.classifiers[0](h), h)
        hs = [head(f) for head, f in zip(self.heads, feats, strict=True)]  # M x (B, hidden)
        logits = torch.stack(
            [clf(h) for clf, h in zip(self.classifiers, hs, strict=True)]
        )  # (M, B, K)
        if self.config.late_space == "prob":
            fused = torch.logsumexp(F.log_softmax(logits, dim=-1), dim=0) - math.log(len(hs))
        else:
            fused = logits.mean(dim=0)
        return TeacherOutput(fused, torch.cat(hs, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) packed windows -> (B, K) logits."""
        return self.forward_features(x).logits


class ModalityTeacher(FusionTeacher):
    """The teacher of one modality group (e.g. ``("ecg",)``, ``("resp",)``, or all wrist
    modalities): per-modality encoders joined by mid fusion unless the config says otherwise.
    Same module layout as :class:`FusionTeacher`, so either class loads the other's weights."""


def build_teacher(model_args: dict[str, Any]) -> FusionTeacher:
    """Rebuild a teacher from a checkpoint's ``model_args``."""
    return FusionTeacher(TeacherConfig(**model_args))
