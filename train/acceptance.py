"""The run's acceptance checks and their prose: does the distilled student meet the bar, and why not.

What must hold: the best distilled student is within :data:`ACCEPT_F1_GAP` macro-F1 of the
best wrist-only teacher and beats the student trained alone by :data:`ACCEPT_KD_GAIN`; the
deployable student keeps within its parameter and MAC budgets. The verdict names the
numbers, the larger cause of a miss and the per-fold noise the differences stand in. These
are one seed's checks; ``--seeds N`` checks the means instead (:mod:`train.seeds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from train.config import RunConfig, Variant
from train.plan import TeacherSpec
from train.scores import f1_of

__all__ = [
    "ACCEPT_F1_GAP",
    "ACCEPT_KD_GAIN",
    "STUDENT_MAC_BUDGET",
    "STUDENT_PARAM_BUDGET",
    "acceptance",
    "budget_note",
    "fold_spread",
]

# int8 weights of this many parameters stay in a Pi-class core's cache and an MCU's flash
STUDENT_PARAM_BUDGET: Final = 100_000
# per window: one hub core then decides for many wearables well within the 5 s hop
STUDENT_MAC_BUDGET: Final = 10_000_000
# the wrist-only student is worth deploying only close to the best teacher it could replace
ACCEPT_F1_GAP: Final = 0.02
# and distillation only if it buys something over the same student trained on labels alone
ACCEPT_KD_GAIN: Final = 0.01


def budget_note(params: int, macs: int) -> str | None:
    """A note when the deployable student exceeds its budgets, else None."""
    if params > STUDENT_PARAM_BUDGET or macs > STUDENT_MAC_BUDGET:
        return (
            f"the student exceeds its budget: {params} parameters (≤ {STUDENT_PARAM_BUDGET}), "
            f"{macs} MACs (≤ {STUDENT_MAC_BUDGET})"
        )
    return None


def acceptance(
    models: Mapping[str, Any],
    specs: Sequence[TeacherSpec],
    variants: Sequence[Variant],
    diag: Mapping[str, Sequence[float]],
    cfg: RunConfig,
) -> dict[str, Any]:
    """The acceptance checks on this run's numbers, with a verdict (and reasons if not met)."""
    out: dict[str, Any] = {}
    wrist_teachers = [
        s.name for s in specs if s.wrist_only and not s.name.startswith("teacher_fusion")
    ]
    kd = [f"student_{v.name}" for v in variants if v.weighting is not None]
    if not wrist_teachers or not kd or "student_alone" not in models:
        out["verdict"] = (
            "acceptance not checked: it needs a wrist-only teacher, student_alone and a "
            "distilled variant"
        )
        return out
    best_t = max(wrist_teachers, key=lambda n: f1_of(models[n]))
    best_s = max(kd, key=lambda n: f1_of(models[n]))
    ft, fs, fa = f1_of(models[best_t]), f1_of(models[best_s]), f1_of(models["student_alone"])
    within, beats = fs >= ft - ACCEPT_F1_GAP, fs - fa >= ACCEPT_KD_GAIN
    out.update(
        best_wrist_teacher=best_t,
        best_wrist_teacher_f1=ft,
        best_distilled_student=best_s,
        best_distilled_student_f1=fs,
        student_alone_f1=fa,
        gap_to_teacher=fs - ft,
        gain_over_alone=fs - fa,
        within_gap=within,
        beats_alone=beats,
        required_gap=ACCEPT_F1_GAP,
        required_gain=ACCEPT_KD_GAIN,
    )
    verdict = (
        f"Best distilled student {best_s}: macro-F1 {fs:.3f}; best wrist-only teacher {best_t}: "
        f"{ft:.3f} (difference {fs - ft:+.3f}, required ≥ {-ACCEPT_F1_GAP:.2f}: "
        f"{'met' if within else 'NOT met'}); student alone {fa:.3f} (gain {fs - fa:+.3f}, "
        f"required ≥ +{ACCEPT_KD_GAIN:.2f}: {'met' if beats else 'NOT met'}). One seed: "
        "compare seeds with --seeds before concluding."
    )
    if not (within and beats):
        acc = float(np.mean(diag["teacher_train_accuracy"]))
        conf = float(np.mean(diag["teacher_train_confidence"]))
        gap_alone, kd_gain = fa - ft, fs - fa
        cause = (
            "most of the gap is the compact student reading these signals less well than a "
            "CNN teacher"
            if abs(gap_alone) >= abs(kd_gain)
            else "most of the gap is what distillation does to it"
        )
        why = (
            f"Why not: the student trained alone is {gap_alone:+.3f} from {best_t} and "
            f"distillation moves it by {kd_gain:+.3f}, so {cause}. The mixture teachers "
            f"reach {acc:.3f} accuracy on their own training windows with mean top-class "
            f"probability {conf:.3f}, so their soft targets carry little beyond the labels; "
            f"the teacher ensemble scores {f1_of(models.get('teacher_ensemble', {})):.3f} on "
            f"held-out subjects. {fold_spread(models, (best_s, 'student_alone', best_t))} "
            f"Settings: a budget of {cfg.student.steps} student steps, "
            f"alpha={cfg.distill.alpha}, T={cfg.distill.temperature}, 1 in "
            f"{cfg.data.train_stride} training windows."
        )
        verdict += " " + why
    out["verdict"] = verdict
    return out


def fold_spread(models: Mapping[str, Any], names: Sequence[str]) -> str:
    """How much the per-fold macro-F1 of ``names`` varies: the noise the gaps stand in."""
    parts = []
    for n in names:
        f1s = [f["macro_f1"] for f in models[n].get("folds", []) if f.get("macro_f1") is not None]
        if len(f1s) >= 2:
            parts.append(f"{n} {float(np.std(f1s, ddof=1)):.3f}")
    if not parts:
        return ""
    k = max(len(models[n].get("folds", [])) for n in names)
    return (
        f"Per-fold macro-F1 standard deviation over {k} folds: {', '.join(parts)}; one seed's "
        "differences of a few hundredths are within that noise."
    )
