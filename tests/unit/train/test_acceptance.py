"""train.acceptance: the verdict on a run, with its reasons and numbers."""

from __future__ import annotations

from typing import Any

import pytest

from train.acceptance import ACCEPT_F1_GAP, acceptance
from train.config import load_config, parse_variant
from train.plan import TeacherSpec


def _fake_models(f1: dict[str, float]) -> dict[str, Any]:
    return {n: {"macro_f1": v} for n, v in f1.items()}


def test_acceptance_verdicts() -> None:
    cfg = load_config()
    specs = [
        TeacherSpec("teacher_bvp", ("bvp",), "mid", True, True),
        TeacherSpec("teacher_eda_temp", ("eda", "temp"), "mid", True, True),
        TeacherSpec("teacher_ecg_resp", ("ecg", "resp"), "mid", True, False),
    ]
    variants = [parse_variant(v) for v in ("alone", "kd_equal", "kd_ca")]
    diag = {"teacher_train_accuracy": [0.99], "teacher_train_confidence": [0.97]}
    good = _fake_models(
        {"teacher_bvp": 0.70, "teacher_eda_temp": 0.75, "teacher_ecg_resp": 0.95,
         "teacher_ensemble": 0.9, "student_alone": 0.70, "student_kd_equal": 0.73,
         "student_kd_ca": 0.74}
    )  # fmt: skip
    out = acceptance(good, specs, variants, diag, cfg)
    assert out["best_wrist_teacher"] == "teacher_eda_temp"  # the chest teacher does not count
    assert out["best_distilled_student"] == "student_kd_ca"
    assert out["within_gap"] and out["beats_alone"]
    assert out["gap_to_teacher"] == pytest.approx(-0.01)
    assert "Why not" not in out["verdict"]
    bad = {**good, "student_kd_ca": {"macro_f1": 0.75 - ACCEPT_F1_GAP - 0.01}}
    bad["student_kd_equal"] = {"macro_f1": 0.6}
    bad["student_alone"] = {"macro_f1": 0.72}
    out = acceptance(bad, specs, variants, diag, cfg)
    assert not out["within_gap"] and not out["beats_alone"]
    assert "NOT met" in out["verdict"] and "Why not" in out["verdict"]
    assert "0.990" in out["verdict"]  # the reason comes with numbers
    assert out["verdict"].count("Why not") == 1  # said once
    assert "alone is -0.030" in out["verdict"] and "reading these signals less well" in out["verdict"]
    # when distillation costs more than the student's own gap, the verdict says so, and gives
    # the per-fold spread the gaps stand in
    worse = {**bad, "student_alone": {"macro_f1": 0.745}}
    for name, f1s in (("student_kd_ca", [0.6, 0.8]), ("student_alone", [0.7, 0.8]),
                      ("teacher_eda_temp", [0.7, 0.7])):
        worse[name] = {**worse[name], "folds": [{"macro_f1": v} for v in f1s]}
    out = acceptance(worse, specs, variants, diag, cfg)
    assert "what distillation does to it" in out["verdict"]
    assert "standard deviation over 2 folds: student_kd_ca 0.141, student_alone 0.071" in out["verdict"]
