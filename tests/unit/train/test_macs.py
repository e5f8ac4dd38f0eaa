"""train.macs: multiply-accumulates and parameters, checked against the architecture written out by hand."""

from __future__ import annotations

import pytest
import torch

from core.contract import WESAD_WRIST_MODALITIES, InputContract
from train.macs import count_macs, count_params
from train.models import Student, StudentConfig
from train.teachers import FusionTeacher, TeacherConfig

CLASSES = ("baseline", "stress", "amusement")
WRIST = InputContract(WESAD_WRIST_MODALITIES, CLASSES)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _tokenizer_macs(cfg: StudentConfig) -> int:
    """MACs of the patch tokenizers, written out from the architecture (not from the code)."""
    D, w = cfg.d_model, cfg.stem_channels
    total = 0
    for n, c, p, r in zip(
        cfg.patch_counts, cfg.channels, cfg.patch_samples, cfg.rates_hz, strict=True
    ):
        if cfg.tokenizer == "linear":
            total += n * c * p * D
            continue
        stride = max(1, min(p, round(r / cfg.stem_rate_hz)))
        length = _ceil_div(p, stride)  # odd kernel, "same" padding: ceil(p / stride) outputs
        total += n * length * c * w * (2 * stride + 1)
        for _ in range(cfg.stem_layers):
            length = _ceil_div(length, 2)
            total += n * length * w * w * cfg.stem_kernel
        total += n * w * (2 if cfg.stem_pool == "meanstd" else 1) * D
    total += len(cfg.global_names) * 2 * w * D  # window-level tokens: mean+std, projected
    return total


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tokenizer": "linear"},
        {"stem_pool": "mean", "stem_layers": 3, "stem_channels": 8, "stem_kernel": 3},
        {"global_modalities": ()},
        {"global_modalities": ("acc", "bvp", "eda", "temp")},
    ],
)
def test_count_macs_matches_analytic_student(overrides: dict[str, object]) -> None:
    cfg = StudentConfig.from_contract(WRIST, **overrides)
    D, N, H = cfg.d_model, cfg.n_tokens, cfg.mlp_ratio * cfg.d_model
    per_layer = N * D * 3 * D + 2 * N * N * D + N * D * D + 2 * N * D * H
    expected = _tokenizer_macs(cfg) + cfg.n_layers * per_layer + D * cfg.n_classes
    assert count_macs(Student(cfg), WRIST.input_length) == expected


def test_count_macs_counts_convolutions_and_keeps_train_mode() -> None:
    cfg = TeacherConfig.from_contract(WRIST, modalities=["eda"], n_blocks=1, width=8, hidden=16)
    teacher = FusionTeacher(cfg).train()
    # eda 4 Hz: stem stride 1, kernel 3, 240 steps; one stride-2 block, kernel 5, 120 steps
    expected = 240 * 3 * 1 * 8 + 120 * 5 * 8 * 8 + 16 * 16 + 16 * 3
    assert count_macs(teacher, WRIST.input_length) == expected
    assert teacher.training


def test_count_params_counts_every_parameter() -> None:
    lin = torch.nn.Linear(7, 5)
    assert count_params(lin) == 7 * 5 + 5
