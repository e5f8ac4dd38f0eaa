"""Scores every model of a run on the pooled test windows and per fold, and the ablation table.

Pooled scores concatenate every fold's test windows (under LOSO each window is scored by a
model that never saw its subject); per-fold scores show how much a number moves between
subjects. The metrics themselves are :func:`train.metrics.evaluate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from train.config import Variant
from train.cv import Fold
from train.metrics import evaluate, softmax
from train.plan import TeacherSpec

if TYPE_CHECKING:
    from train.job import JobResult

__all__ = ["FOLD_KEYS", "ablation", "brief", "f1_of", "model_names", "score_models"]

FOLD_KEYS: Final = ("n", "accuracy", "macro_f1", "auc", "ece")  # what each per-fold entry keeps


def f1_of(m: Mapping[str, Any]) -> float:
    """A model's macro-F1 for ranking; -1 when it has none."""
    v = m.get("macro_f1")
    return -1.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def brief(m: Mapping[str, Any]) -> dict[str, Any]:
    """The headline scores a checkpoint carries."""
    return {k: m[k] for k in ("accuracy", "macro_f1", "auc", "ece", "macro_f1_fold_mean")}


def model_names(specs: Sequence[TeacherSpec], variants: Sequence[Variant]) -> list[str]:
    """Every model of the run, in report order: teachers, their ensemble, students."""
    return [s.name for s in specs] + ["teacher_ensemble"] + [f"student_{v.name}" for v in variants]


def score_models(
    folds: Sequence[Fold],
    results: Mapping[str, JobResult],
    y: np.ndarray,
    class_names: Sequence[str],
    specs: Sequence[TeacherSpec],
    variants: Sequence[Variant],
    student_mods: Sequence[str],
) -> dict[str, Any]:
    """``{model: metrics}`` pooled over folds, with per-fold entries and what the model is."""
    mixture = [s for s in specs if s.in_mixture]
    y_all = np.concatenate([y[f.test] for f in folds])
    models: dict[str, Any] = {}
    spec_by_name = {s.name: s for s in specs}
    for name in model_names(specs, variants):
        logits = np.concatenate([results[f.name].test_logits[name] for f in folds])
        m = evaluate(y_all, softmax(logits), class_names)
        per_fold = []
        for f in folds:
            fm = evaluate(y[f.test], softmax(results[f.name].test_logits[name]), class_names)
            per_fold.append({"fold": f.name, **{k: fm[k] for k in FOLD_KEYS}})
        f1s = np.array([p["macro_f1"] for p in per_fold], np.float64)
        m["folds"] = per_fold
        m["macro_f1_fold_mean"] = float(np.nanmean(f1s))
        m["macro_f1_fold_std"] = float(np.nanstd(f1s))
        if name in spec_by_name:
            s = spec_by_name[name]
            m.update(role="teacher", modalities=list(s.modalities), fusion=s.fusion,
                     in_mixture=s.in_mixture, wrist_only=s.wrist_only)  # fmt: skip
        elif name == "teacher_ensemble":
            m.update(role="ensemble", modalities=sorted({x for s in mixture for x in s.modalities}),
                     members=[s.name for s in mixture],
                     wrist_only=all(s.wrist_only for s in mixture))  # fmt: skip
        else:
            m.update(role="student", modalities=list(student_mods), wrist_only=True)
        models[name] = m
    return models


def ablation(models: Mapping[str, Any], order: Sequence[str]) -> list[dict[str, Any]]:
    """One row per model: its scores and its macro-F1 difference to the student alone."""
    alone = models.get("student_alone")
    keys = ("role", "modalities", "wrist_only", "macro_f1", "macro_f1_fold_mean",
            "macro_f1_fold_std", "accuracy", "auc", "ece")  # fmt: skip
    return [
        {
            "model": name,
            **{k: models[name][k] for k in keys},
            "delta_vs_student_alone": (
                None if alone is None else models[name]["macro_f1"] - alone["macro_f1"]
            ),
        }
        for name in order
    ]
