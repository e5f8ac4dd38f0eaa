"""The multi-seed section of ``report.md`` and of the terminal summary (``--seeds N``).

Pure presentation of the ``seeds`` block :func:`train.seeds.aggregate` wrote into
metrics.json: mean ± sd of every model over seeds, then each distilled variant against the
student trained alone, per seed and per fold, with the test's statement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_seeds", "seeds_summary"]


def _pm(m: Mapping[str, Any], key: str) -> str:
    mean, sd = m.get(f"{key}_mean"), m.get(f"{key}_sd")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.3f} ± {sd:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return [*out, *("| " + " | ".join(r) + " |" for r in rows), ""]


def render_seeds(metrics: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the multi-seed section (nothing for a one-seed run)."""
    block = metrics.get("seeds")
    if not block:
        return []
    seeds = block["seeds"]
    lines = [
        f"## Over {len(seeds)} seeds",
        "",
        f"Every model was trained and scored with seeds {', '.join(map(str, seeds))} on the "
        "same folds. Conclusions and the deployed variant use these means; the sections "
        f"below show seed {seeds[0]} alone.",
        "",
    ]
    alone = block["models"].get("student_alone", {}).get("macro_f1_mean")
    rows = []
    for name, m in block["models"].items():
        delta = (
            "–"
            if alone is None or m.get("macro_f1_mean") is None
            else f"{m['macro_f1_mean'] - alone:+.3f}"
        )
        per_seed = " / ".join(f"{v:.3f}" for v in m.get("macro_f1_per_seed", []))
        rows.append([name, _pm(m, "macro_f1"), _pm(m, "accuracy"), _pm(m, "auc"), delta, per_seed])
    lines += _table(
        ["model", "macro-F1", "accuracy", "AUC", "Δ macro-F1 vs alone", "per seed"], rows
    )
    for p in block.get("paired", []):
        lines += [f"**{p['model']} vs student_alone.** {p['statement']}", ""]
        lines += _table(
            ["seed", p["model"], "student_alone", "Δ"],
            [[str(r["seed"]), f"{r['macro_f1']:.3f}", f"{r['alone']:.3f}", f"{r['delta']:+.3f}"]
             for r in p["per_seed"]],
        )  # fmt: skip
    best = max(block.get("paired", []), key=lambda p: p["mean_delta"], default=None)
    if best is not None and best["per_fold"]:
        lines += [f"Per fold, {best['model']} − student_alone (macro-F1):", ""]
        folds = list(dict.fromkeys(r["fold"] for r in best["per_fold"]))
        by = {(r["seed"], r["fold"]): r["delta"] for r in best["per_fold"]}
        lines += _table(
            ["seed", *folds],
            [[str(s), *(f"{by[(s, f)]:+.3f}" if (s, f) in by else "–" for f in folds)]
             for s in seeds],
        )  # fmt: skip
    return lines


def seeds_summary(metrics: Mapping[str, Any]) -> list[str]:
    """Terminal lines: mean ± sd per model and the paired statements."""
    block = metrics.get("seeds")
    if not block:
        return []
    lines = [f"over {len(block['seeds'])} seeds (mean ± sd):"]
    for name, m in block["models"].items():
        lines.append(f"  {name:28s} macro-F1 {_pm(m, 'macro_f1')}  accuracy {_pm(m, 'accuracy')}")
    lines += [p["statement"] for p in block.get("paired", [])]
    return lines
