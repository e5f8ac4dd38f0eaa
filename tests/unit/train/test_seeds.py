"""train.seeds: mean ± sd over seeds, distilled vs alone paired per fold and seed, acceptance on means."""

from __future__ import annotations

from typing import Any

import pytest

from train.config import load_config, parse_variant
from train.plan import TeacherSpec
from train.seeds import aggregate, variant_by_mean

SPECS = [
    TeacherSpec("teacher_bvp", ("bvp",), "mid", True, True),
    TeacherSpec("teacher_fusion_late", ("bvp", "ecg"), "late", True, False),
]
VARIANTS = [parse_variant(v) for v in ("alone", "kd_equal", "kd_ca")]
FOLDS = [f"S{i}" for i in range(2, 8)]


def _model(f1: float, fold_f1: list[float]) -> dict[str, Any]:
    return {
        "macro_f1": f1,
        "accuracy": f1 + 0.02,
        "auc": 0.9,
        "folds": [{"fold": f, "macro_f1": v} for f, v in zip(FOLDS, fold_f1, strict=True)],
    }


def _seed(shift: float, kd_gain: float) -> dict[str, Any]:
    alone = [0.70 + 0.02 * i + shift for i in range(len(FOLDS))]
    return {
        "teacher_bvp": _model(0.80 + shift, [v + 0.1 for v in alone]),
        "teacher_fusion_late": _model(0.90, [0.9] * len(FOLDS)),
        "student_alone": _model(0.75 + shift, alone),
        "student_kd_equal": _model(0.75 + shift - 0.01, [v - 0.01 for v in alone]),
        "student_kd_ca": _model(0.75 + shift + kd_gain, [v + kd_gain for v in alone]),
    }


def test_means_sds_and_the_paired_comparison() -> None:
    per_seed = [_seed(0.0, 0.04), _seed(0.02, 0.05), _seed(-0.02, 0.06)]
    block = aggregate([7, 8, 9], per_seed, SPECS, VARIANTS)
    assert block["seeds"] == [7, 8, 9]
    alone = block["models"]["student_alone"]
    assert alone["macro_f1_mean"] == pytest.approx(0.75)
    assert alone["macro_f1_sd"] == pytest.approx(0.02)
    assert alone["macro_f1_per_seed"] == pytest.approx([0.75, 0.77, 0.73])
    by = {p["model"]: p for p in block["paired"]}
    assert set(by) == {"student_kd_equal", "student_kd_ca"}  # distilled variants only
    ca = by["student_kd_ca"]
    assert ca["mean_delta"] == pytest.approx(0.05)
    assert ca["n_pairs"] == 18 and ca["better"] == 18 and ca["worse"] == 0
    assert ca["significant"] and ca["wilcoxon"]["p_value"] < 0.001
    assert [r["delta"] for r in ca["per_seed"]] == pytest.approx([0.04, 0.05, 0.06])
    assert "+0.050 macro-F1 on the mean over 3 seeds" in ca["statement"]
    assert "significant at 0.05" in ca["statement"]
    eq = by["student_kd_equal"]
    assert eq["worse"] == 18 and eq["mean_delta"] == pytest.approx(-0.01)
    acc = block["acceptance"]
    assert acc["best_distilled_student"] == "student_kd_ca"
    assert acc["best_wrist_teacher"] == "teacher_bvp"  # the fusion teacher sees the chest
    assert acc["gain_over_alone"] == pytest.approx(0.05) and acc["beats_alone"]
    assert acc["gap_to_teacher"] == pytest.approx(-0.0) and acc["within_gap"]
    assert "Mean over 3 seeds" in acc["verdict"]


def test_a_small_or_mixed_gain_is_not_accepted_nor_significant() -> None:
    per_seed = [_seed(0.0, 0.005), _seed(0.0, -0.004), _seed(0.0, 0.001)]
    for i, seed in enumerate(per_seed):  # alternate the sign per fold: no consistent gain
        for j, f in enumerate(seed["student_kd_ca"]["folds"]):
            f["macro_f1"] += 0.03 if (i + j) % 2 else -0.03
    block = aggregate([0, 1, 2], per_seed, SPECS, VARIANTS)
    ca = {p["model"]: p for p in block["paired"]}["student_kd_ca"]
    assert not ca["significant"] and "not significant" in ca["statement"]
    acc = block["acceptance"]
    assert not acc["beats_alone"] and "NOT met" in acc["verdict"]


def test_the_deployed_variant_is_the_best_on_the_mean() -> None:
    # seed 0 alone would pick kd_equal; the mean over seeds picks kd_ca
    per_seed = [_seed(0.0, -0.02), _seed(0.0, 0.08), _seed(0.0, 0.05)]
    per_seed[0]["student_kd_equal"]["macro_f1"] = 0.8
    block = aggregate([0, 1, 2], per_seed, SPECS, VARIANTS)
    cfg = load_config()
    assert variant_by_mean(cfg, VARIANTS, block).name == "kd_ca"
    fixed = load_config(overrides=["deploy.variant=alone", "student.variants=alone,kd_ca"])
    assert variant_by_mean(fixed, VARIANTS, block).name == "alone"
