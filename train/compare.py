"""Runs side by side: ``edge-train compare RUN RUN ... --out DIR``.

Each run is one ``edge-train fit`` (one seed or ``--seeds N``); the comparison reads only
their ``metrics.json`` and puts, for each run, the student trained alone, its best distilled
variant, the deployed variant and the best teacher that sees what the student sees, as mean ±
sd over the run's seeds (one seed: sd 0), with the student's inputs, parameters and MACs.
That is how the heart-rate student (RR intervals from a stock strap) and the full-wrist
student are compared on the same data and seeds. Writes ``comparison.json``,
``comparison.md`` and ``comparison.png`` (macro-F1 bars with the seed sd as error bars).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from train.errors import DataError

__all__ = ["compare_runs", "load_run_scores", "write_comparison"]


def _scores(metrics: Mapping[str, Any]) -> tuple[list[int], dict[str, dict[str, Any]]]:
    """Seeds and per-model macro-F1 (mean, sd, per seed) of one run's metrics.json."""
    block = metrics.get("seeds")
    if block:
        models = {n: {"mean": m["macro_f1_mean"], "sd": m["macro_f1_sd"],
                      "per_seed": m["macro_f1_per_seed"]} for n, m in block["models"].items()}
        return list(block["seeds"]), models
    models = {}
    for n, m in metrics["models"].items():
        f1 = m.get("macro_f1")
        v = math.nan if f1 is None else float(f1)
        models[n] = {"mean": v, "sd": 0.0, "per_seed": [v]}
    return [int(metrics.get("seed", 0))], models


def load_run_scores(run: Path) -> dict[str, Any]:
    """One run's row of the comparison (DataError naming the file when it is not a run)."""
    path = run / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        seeds, models = _scores(metrics)
        student = metrics["student"]
    except FileNotFoundError as e:
        raise DataError(str(path), "not a finished edge-train fit run (no metrics.json)") from e
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(str(path), f"not a metrics.json of edge-train fit: {e!r}") from e

    def best(names: Sequence[str]) -> str | None:
        scored = [n for n in names if not math.isnan(models[n]["mean"])]
        return max(scored, key=lambda n: models[n]["mean"]) if scored else None

    mods = set(student["modalities"])
    roles = {n: m.get("role") for n, m in metrics["models"].items()}
    # the teacher the acceptance check holds the student to: sees only the student's inputs
    same_view = [n for n, m in metrics["models"].items() if n.startswith("teacher_")
                 and m.get("modalities") is not None and set(m["modalities"]) <= mods]
    distilled = [n for n in models if n.startswith("student_kd")]
    return {
        "run": str(run),
        "dataset": metrics.get("dataset", {}).get("kind") if isinstance(
            metrics.get("dataset"), Mapping) else None,
        "cv": metrics.get("cv", {}).get("kind"),
        "seeds": seeds,
        "modalities": list(student["modalities"]),
        "params": student.get("params"),
        "macs": student.get("macs"),
        "deployed": f"student_{student['variant']}",
        "alone": "student_alone" if "student_alone" in models else None,
        "best_distilled": best(distilled),
        "best_same_view_teacher": best(same_view),
        "best_teacher": best([n for n in models if roles.get(n) == "teacher"]),
        "models": models,
    }


def compare_runs(runs: Sequence[Path]) -> dict[str, Any]:
    """The comparison document of ``runs`` (at least two; their seeds should match)."""
    if len(runs) < 2:
        raise DataError(str(runs[0]) if runs else "-", "compare needs at least two runs")
    rows = [load_run_scores(r) for r in runs]
    seeds = {tuple(r["seeds"]) for r in rows}
    return {"runs": rows, "same_seeds": len(seeds) == 1,
            "note": None if len(seeds) == 1 else
            "the runs used different seeds: differences include the seeds' noise"}


def _pm(row: Mapping[str, Any], name: str | None) -> str:
    if name is None:
        return "–"
    m = row["models"][name]
    return f"{m['mean']:.3f} ± {m['sd']:.3f}"


def render(doc: Mapping[str, Any]) -> str:
    """The comparison as Markdown."""
    lines = ["# Students side by side", "",
             "Macro-F1 of each run's cross-validation, mean ± sd over its seeds.", ""]
    if doc["note"]:
        lines += [f"Note: {doc['note']}.", ""]
    head = ["run", "student inputs", "seeds", "alone", "best distilled", "deployed",
            "teacher on the same inputs", "best teacher", "params / MACs"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["runs"]:
        cells = [
            f"`{r['run']}`", ", ".join(r["modalities"]), ", ".join(map(str, r["seeds"])),
            _pm(r, r["alone"]),
            f"{_pm(r, r['best_distilled'])} ({r['best_distilled'] or '–'})",
            f"{_pm(r, r['deployed'])} ({r['deployed']})",
            f"{_pm(r, r['best_same_view_teacher'])} ({r['best_same_view_teacher'] or '–'})",
            f"{_pm(r, r['best_teacher'])} ({r['best_teacher'] or '–'})",
            f"{r['params']} / {r['macs']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![macro-F1](comparison.png)", ""]
    return "\n".join(lines)


def _plot(doc: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("alone", "student alone"), ("best_distilled", "best distilled"),
            ("best_same_view_teacher", "teacher, same inputs"), ("best_teacher", "best teacher")]
    runs = doc["runs"]
    fig, ax = plt.subplots(figsize=(2.2 + 2.2 * len(runs), 4))
    width = 0.8 / len(keys)
    for k, (key, label) in enumerate(keys):
        xs, ys, es = [], [], []
        for i, r in enumerate(runs):
            name = r[key]
            if name is None:
                continue
            xs.append(i + (k - (len(keys) - 1) / 2) * width)
            ys.append(r["models"][name]["mean"])
            es.append(r["models"][name]["sd"])
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=label)
    ax.set_xticks(range(len(runs)), [" + ".join(r["modalities"]) for r in runs])
    ax.set_xlabel("student inputs (run)")
    ax.set_ylabel("macro-F1 (mean ± sd over seeds)")
    ax.set_ylim(0.0, 1.0)
    ax.set_title("Students and teachers, cross-validated")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_comparison(runs: Sequence[Path], out: Path, *, plot: bool = True) -> dict[str, Any]:
    """Compare ``runs`` and write ``out/comparison.{json,md,png}``; the document."""
    doc = compare_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "comparison.md").write_text(render(doc))
    if plot:
        _plot(doc, out / "comparison.png")
    return doc
