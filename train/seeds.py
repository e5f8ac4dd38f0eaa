"""Aggregates the evaluations of several seeds: mean ± sd per model and distilled vs alone, paired.

``edge-train fit --seeds N`` trains and scores every model N times (seeds ``seed`` ..
``seed + N - 1``). One seed's differences of a few hundredths are within the noise of
subjects and initialisations, so the run's conclusions come from here: every model's pooled
macro-F1 as mean ± sd over seeds; each distilled variant against the student trained alone
on the same folds and seeds, per fold and per seed, with a Wilcoxon signed-rank test over the
per-(seed, fold) differences (scipy; host only); and the acceptance checks on the means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from train.acceptance import ACCEPT_F1_GAP, ACCEPT_KD_GAIN
from train.config import RunConfig, Variant, parse_variant
from train.plan import TeacherSpec

__all__ = ["SIGNIFICANCE", "aggregate", "variant_by_mean"]

SIGNIFICANCE: Final = 0.05  # two-sided level of the signed-rank test
SCORES: Final = ("macro_f1", "accuracy", "auc")


def _f1(m: Mapping[str, Any], key: str = "macro_f1") -> float:
    v = m.get(key)
    return math.nan if v is None else float(v)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if not math.isnan(v)], np.float64)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _wilcoxon(deltas: Sequence[float]) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of the paired differences (zeros dropped)."""
    from scipy.stats import wilcoxon

    d = np.asarray([v for v in deltas if not math.isnan(v) and v != 0.0], np.float64)
    if len(d) < 5:  # below this no p-value can reach 0.05
        return {"n": len(d), "statistic": None, "p_value": None}
    res = wilcoxon(d, alternative="two-sided")
    return {"n": len(d), "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def _paired(
    name: str, seeds: Sequence[int], per_seed: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``name`` against student_alone on the same seeds and folds."""
    folds, seed_rows = [], []
    for seed, models in zip(seeds, per_seed, strict=True):
        mine, alone = models[name], models["student_alone"]
        seed_rows.append({"seed": seed, "macro_f1": _f1(mine), "alone": _f1(alone),
                          "delta": _f1(mine) - _f1(alone)})  # fmt: skip
        alone_by_fold = {f["fold"]: f for f in alone.get("folds", [])}
        for f in mine.get("folds", []):
            a = alone_by_fold.get(f["fold"])
            if a is None:
                continue
            folds.append({"seed": seed, "fold": f["fold"], "macro_f1": _f1(f), "alone": _f1(a),
                          "delta": _f1(f) - _f1(a)})  # fmt: skip
    deltas = [r["delta"] for r in folds]
    mean_seed, sd_seed = _mean_sd([r["delta"] for r in seed_rows])
    test = _wilcoxon(deltas)
    better = sum(d > 0 for d in deltas)
    worse = sum(d < 0 for d in deltas)
    p = test["p_value"]
    if p is None:
        verdict = "too few paired folds for a test"
    elif p < SIGNIFICANCE:
        verdict = f"significant at {SIGNIFICANCE} (Wilcoxon signed-rank, p = {p:.3g})"
    else:
        verdict = f"not significant at {SIGNIFICANCE} (Wilcoxon signed-rank, p = {p:.3g})"
    statement = (
        f"{name} vs student_alone: {mean_seed:+.3f} macro-F1 on the mean over {len(seeds)} "
        f"seeds (sd {sd_seed:.3f}); better on {better}, worse on {worse} of {len(deltas)} "
        f"(seed, fold) pairs; {verdict}."
    )
    return {
        "model": name,
        "mean_delta": mean_seed,
        "sd_delta": sd_seed,
        "fold_mean_delta": _mean_sd(deltas)[0],
        "better": better,
        "worse": worse,
        "n_pairs": len(deltas),
        "wilcoxon": test,
        "significant": p is not None and p < SIGNIFICANCE,
        "statement": statement,
        "per_seed": seed_rows,
        "per_fold": folds,
    }


def aggregate(
    seeds: Sequence[int],
    per_seed: Sequence[Mapping[str, Any]],
    specs: Sequence[TeacherSpec],
    variants: Sequence[Variant],
) -> dict[str, Any]:
    """The ``seeds`` block of metrics.json from each seed's ``models`` (score_models')."""
    names = list(per_seed[0])
    models: dict[str, Any] = {}
    for n in names:
        row: dict[str, Any] = {}
        for key in SCORES:
            vals = [_f1(m[n], key) for m in per_seed]
            row[f"{key}_mean"], row[f"{key}_sd"] = _mean_sd(vals)
            row[f"{key}_per_seed"] = vals
        models[n] = row
    kd = [f"student_{v.name}" for v in variants if v.weighting is not None]
    paired = [_paired(n, seeds, per_seed) for n in kd] if "student_alone" in names else []
    return {
        "seeds": list(seeds),
        "models": models,
        "paired": paired,
        "acceptance": _acceptance(models, specs, kd, len(seeds)),
    }


def _acceptance(
    models: Mapping[str, Any], specs: Sequence[TeacherSpec], kd: Sequence[str], n_seeds: int
) -> dict[str, Any]:
    """The acceptance checks on the means over seeds, and the verdict in words."""
    wrist = [s.name for s in specs if s.wrist_only and not s.name.startswith("teacher_fusion")]
    if not wrist or not kd or "student_alone" not in models:
        return {"verdict": "acceptance not checked: it needs a wrist-only teacher, "
                           "student_alone and a distilled variant"}  # fmt: skip

    def mean(n: str) -> float:
        v = models[n]["macro_f1_mean"]
        return -1.0 if math.isnan(v) else v

    best_t, best_s = max(wrist, key=mean), max(kd, key=mean)
    ft, fs, fa = mean(best_t), mean(best_s), mean("student_alone")
    within, beats = fs >= ft - ACCEPT_F1_GAP, fs - fa >= ACCEPT_KD_GAIN
    verdict = (
        f"Mean over {n_seeds} seeds: best distilled student {best_s} {fs:.3f} macro-F1; best "
        f"wrist-only teacher {best_t} {ft:.3f} (difference {fs - ft:+.3f}, required ≥ "
        f"{-ACCEPT_F1_GAP:.2f}: {'met' if within else 'NOT met'}); student alone {fa:.3f} "
        f"(gain {fs - fa:+.3f}, required ≥ +{ACCEPT_KD_GAIN:.2f}: "
        f"{'met' if beats else 'NOT met'})."
    )
    return {
        "best_wrist_teacher": best_t,
        "best_wrist_teacher_f1": ft,
        "best_distilled_student": best_s,
        "best_distilled_student_f1": fs,
        "student_alone_f1": fa,
        "gap_to_teacher": fs - ft,
        "gain_over_alone": fs - fa,
        "within_gap": within,
        "beats_alone": beats,
        "required_gap": ACCEPT_F1_GAP,
        "required_gain": ACCEPT_KD_GAIN,
        "over_seeds": n_seeds,
        "verdict": verdict,
    }


def variant_by_mean(
    cfg: RunConfig, variants: Sequence[Variant], block: Mapping[str, Any]
) -> Variant:
    """The configured deploy variant, or (``"best"``) the highest mean macro-F1 over seeds."""
    if cfg.deploy.variant != "best":
        return parse_variant(cfg.deploy.variant)
    models = block["models"]

    def mean(v: Variant) -> float:
        m = models[f"student_{v.name}"]["macro_f1_mean"]
        return -1.0 if math.isnan(m) else m

    return max(variants, key=mean)
