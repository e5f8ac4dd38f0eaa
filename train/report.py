"""``RUN/report.md`` and ``RUN/plots/*.png`` from ``RUN/metrics.json``: the run for a person.

Pure presentation: everything shown is read from the metrics dict ``train.fit`` writes, so a
report can be regenerated from metrics.json alone (:func:`write_report`). matplotlib runs on
the Agg backend (no display), imported only here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.runs import RunLayout
from train.report_seeds import render_seeds, seeds_summary

__all__ = ["PLOT_FILES", "render_markdown", "render_summary", "write_plots", "write_report"]

PLOT_FILES: Final = {
    "ablation": "ablation.png",
    "folds": "folds.png",
    "confusion": "confusion.png",
    "importance": "importance.png",
}  # report section -> file under RUN/plots/
DPI: Final = 110  # readable on a laptop screen, small in a repository


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def render_markdown(metrics: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The report text; ``plots`` maps a section to its PNG path relative to the run."""
    m = metrics
    models = m["models"]
    lines = ["# Training report", ""]
    ds = m.get("dataset", {})
    timing = m.get("timing", {})
    cv = m.get("cv", {})
    lines += [
        f"- data: {ds.get('kind', '?')} `{ds.get('path', '?')}`, task **{m.get('task')}**, "
        f"{m.get('n_windows')} windows, {len(m.get('subjects', []))} subjects",
        "- class counts: " + ", ".join(f"{k} {v}" for k, v in m.get("class_counts", {}).items()),
        f"- cross-validation: **{cv.get('kind')}**, {len(cv.get('folds', []))} folds "
        f"(1 in {cv.get('train_stride', 1)} training windows used; "
        "test windows all)",
        f"- seed {m.get('seed')}, {m.get('workers')} worker process(es); wall time "
        f"{_fmt(timing.get('total_s'), 0)} s (loading {_fmt(timing.get('load_s'), 0)} s, "
        f"training and scoring {_fmt(timing.get('train_s'), 0)} s, writing the deployable "
        f"models {_fmt(timing.get('deploy_s'), 0)} s); the training jobs used "
        f"{_fmt(timing.get('job_cpu_s_sum'), 0)} CPU-seconds (wall time on a shared machine "
        "overstates what idle cores need)",
        "",
        "Scores are computed on the pooled test windows of all folds (every window is scored by "
        "a model that never saw its subject under LOSO); *fold mean ± sd* is the macro-F1 "
        "averaged over folds. AUC is one-vs-rest (binary: the positive class); ECE uses 15 bins.",
        "",
    ]
    acc = m.get("acceptance", {})
    if acc:
        lines += ["## Acceptance", ""]
        if m.get("profile") == "quick":
            lines += [
                "*This is the CI-sized quick profile (two folds, tiny step budgets): it runs "
                "every model and every output to show they work, and its acceptance figures "
                "are not meant to pass. Judge the models on a full run.*",
                "",
            ]
        lines += [acc.get("verdict", ""), ""]
        if "within_gap" in acc:
            lines += _table(
                ["check", "value", "required", "holds"],
                [
                    [
                        f"{acc['best_distilled_student']} − {acc['best_wrist_teacher']}",
                        f"{acc['gap_to_teacher']:+.3f}",
                        f"≥ {-acc['required_gap']:.2f}",
                        "yes" if acc["within_gap"] else "**no**",
                    ],
                    [
                        f"{acc['best_distilled_student']} − student_alone",
                        f"{acc['gain_over_alone']:+.3f}",
                        f"≥ +{acc.get('required_gain', 0.0):.2f}",
                        "yes" if acc["beats_alone"] else "**no**",
                    ],
                ],
            )
    lines += render_seeds(m)
    lines += ["## Ablation", ""]
    rows = []
    for r in m.get("ablation", []):
        rows.append(
            [
                r["model"],
                r["role"],
                "+".join(r["modalities"]) if len(r["modalities"]) < 7 else "all",
                "yes" if r["wrist_only"] else "no",
                r["macro_f1"],
                f"{_fmt(r['macro_f1_fold_mean'])} ± {_fmt(r['macro_f1_fold_std'])}",
                r["accuracy"],
                r["auc"],
                r["ece"],
                None
                if r["delta_vs_student_alone"] is None
                else f"{r['delta_vs_student_alone']:+.3f}",
            ]
        )
    lines += _table(
        [
            "model",
            "role",
            "modalities",
            "wrist only",
            "macro-F1",
            "fold mean ± sd",
            "accuracy",
            "AUC",
            "ECE",
            "Δ vs student alone",
        ],
        rows,
    )
    lines += [
        "Teachers marked *no* under *wrist only* see chest signals the wearable does not have "
        "(privileged information); `teacher_ensemble` is the equal-weight mixture the students "
        "distil from. `kd_equal`/`kd_ca`: distillation with equal / confidence-adaptive "
        "(CA-MKD) teacher weights; `_ulgm`: Self-MM unimodal label generation heads; "
        "`_hint`: feature hints.",
        "",
    ]
    if "ablation" in plots:
        lines += [f"![ablation]({plots['ablation']})", ""]

    st = m.get("student", {})
    if st:
        lines += ["## Deployable student", ""]
        lines += [
            f"- variant **{st.get('variant')}** over {', '.join(st.get('modalities', []))} "
            f"(input length {st.get('input_length')})",
            f"- {st.get('params')} parameters (budget {st.get('param_budget')}), "
            f"{st.get('macs')} MACs per window (budget {st.get('mac_budget')})",
            f"- trained on {len(st.get('train_subjects', []))} subjects "
            f"({st.get('n_train_windows')} windows); held out: "
            f"{', '.join(st.get('holdout_subjects', []))} ({st.get('n_heldout_windows')} windows)",
        ]
        h = st.get("heldout", {})
        if h:
            lines.append(
                f"- on the held-out windows: macro-F1 {_fmt(h.get('macro_f1'))}, accuracy "
                f"{_fmt(h.get('accuracy'))}, AUC {_fmt(h.get('auc'))}, ECE {_fmt(h.get('ece'))}"
            )
        lines.append("")
        imp = st.get("modality_importance", {})
        if imp:
            mods = list(next(iter(imp.values())).keys())
            lines += [
                "Share of the last layer's attention each modality's tokens receive "
                "(held-out windows, by true class):",
                "",
            ]
            lines += _table(
                ["windows", *mods], [[k, *[v[x] for x in mods]] for k, v in imp.items()]
            )
        if "importance" in plots:
            lines += [f"![attention]({plots['importance']})", ""]

    lines += ["## Per-class scores", ""]
    focus = [n for n in (f"student_{st.get('variant')}", "student_alone") if n in models]
    if acc.get("best_wrist_teacher"):
        focus.append(acc["best_wrist_teacher"])
    focus += [n for n in ("teacher_ensemble",) if n in models]
    for name in dict.fromkeys(focus):
        pc = models[name]["per_class"]
        lines += [f"**{name}**", ""]
        lines += _table(
            ["class", "precision", "recall", "F1", "AUC", "support"],
            [
                [c, v["precision"], v["recall"], v["f1"], v["auc"], v["support"]]
                for c, v in pc.items()
            ],
        )
    if "confusion" in plots:
        lines += [f"![confusion matrices]({plots['confusion']})", ""]

    lines += _training(m)
    lines += ["## Per-fold macro-F1", ""]
    names = list(models)
    folds = [f["fold"] for f in models[names[0]]["folds"]]
    short = [n.replace("teacher_", "t_").replace("student_", "s_") for n in names]
    rows = [
        [fold, *[models[n]["folds"][i]["macro_f1"] for n in names]] for i, fold in enumerate(folds)
    ]
    lines += _table(["fold", *short], rows)
    if "folds" in plots:
        lines += [f"![per-fold scores]({plots['folds']})", ""]

    notes = m.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _training(m: Mapping[str, Any]) -> list[str]:
    """How each model trained, averaged over folds: batch, rate, steps, early stopping."""
    logs: dict[str, list[Mapping[str, Any]]] = {}
    for f in m.get("cv", {}).get("folds", []):
        for name, log in f.get("training", {}).items():
            logs.setdefault(name, []).append(log)
    if not logs:
        return []
    rows = []
    for name, ls in logs.items():
        stopped = sum(log["steps"] < log["max_steps"] for log in ls)
        rows.append([
            name, str(ls[0]["batch_size"]), f"{ls[0]['lr']:.2g}",
            f"{np.mean([log['steps'] for log in ls]):.0f} / {ls[0]['max_steps']}",
            f"{np.mean([log['best_step'] for log in ls]):.0f}" if ls[0]["n_val"] else "–",
            f"{stopped} of {len(ls)}", str(ls[0]["n_val"]),
        ])  # fmt: skip
    header = ["model", "batch", "lr", "steps / budget", "best step", "stopped early",
              "validation windows (first fold)"]  # fmt: skip
    return [
        "## Training",
        "",
        "Sized by the data (`train/budget.py`): the batch is about an eighth of a small set, "
        "the steps are what the compute budget buys (at most the cap), and early stopping "
        "scores each model on validation windows carved from its fold's training windows. "
        "Means over folds:",
        "",
        *_table(header, rows),
    ]


def write_plots(run: Path, metrics: Mapping[str, Any]) -> dict[str, str]:
    """Write the PNGs; returns section -> path relative to ``run``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layout = RunLayout(run)
    out_dir = layout.plots_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    models = metrics["models"]
    names = list(models)
    classes = metrics.get("class_names") or list(next(iter(models.values()))["per_class"])
    written: dict[str, str] = {}

    def colour(name: str) -> str:
        role = models[name]["role"]
        if role == "student":
            return "tab:green"
        if role == "ensemble":
            return "tab:purple"
        return "tab:blue" if models[name].get("wrist_only") else "tab:orange"

    # ablation bars
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    f1 = [models[n]["macro_f1"] or 0.0 for n in names]
    sd = [models[n].get("macro_f1_fold_std") or 0.0 for n in names]
    ypos = np.arange(len(names))[::-1]
    ax.barh(ypos, f1, xerr=sd, color=[colour(n) for n in names], capsize=3)
    ax.set_yticks(ypos, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("macro-F1 (pooled test windows; error bar: sd over folds)")
    ax.set_title(
        "Ablation  (blue: wrist teacher, orange: privileged, purple: ensemble, green: student)",
        fontsize=9,
    )
    for y, v in zip(ypos, f1, strict=True):
        ax.text(0.01, y, f"{v:.3f}", va="center", fontsize=8, color="white", weight="bold")
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES["ablation"], dpi=DPI)
    plt.close(fig)
    written["ablation"] = _relative(layout, "ablation")

    # per-fold scores
    folds = [f["fold"] for f in models[names[0]]["folds"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(folds) + 3), 4))
    x = np.arange(len(folds))
    for n in names:
        v = [f["macro_f1"] if f["macro_f1"] is not None else np.nan for f in models[n]["folds"]]
        style = "-o" if models[n]["role"] == "student" else "--."
        ax.plot(
            x,
            v,
            style,
            label=n,
            color=colour(n),
            alpha=0.9 if models[n]["role"] == "student" else 0.5,
        )
    ax.set_xticks(x, folds, rotation=45 if len(folds) > 6 else 0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("macro-F1")
    ax.set_title("Per-fold macro-F1")
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES["folds"], dpi=DPI)
    plt.close(fig)
    written["folds"] = _relative(layout, "folds")

    # confusion matrices (row-normalized), every model
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.9 * rows), squeeze=False)
    for ax, n in zip(axes.flat, names, strict=False):
        cm = np.asarray(models[n]["confusion"], float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black",
                )
        # full class names: "basel / stres / amuse" is a puzzle for a reader
        ax.set_xticks(range(len(classes)), classes, fontsize=7, rotation=30, ha="right")
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(f"{n}\nF1 {models[n]['macro_f1'] or 0:.3f}", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.supxlabel("predicted", fontsize=8)
    fig.supylabel("true", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / PLOT_FILES["confusion"], dpi=DPI)
    plt.close(fig)
    written["confusion"] = _relative(layout, "confusion")

    # attention: modality shares per class + the mean patch map
    st = metrics.get("student", {})
    imp, patch = st.get("modality_importance", {}), st.get("patch_importance", {})
    if imp and patch:
        mods = list(patch)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 2]})
        groups = list(imp)
        w = 0.8 / len(groups)
        for gi, g in enumerate(groups):
            a1.bar(np.arange(len(mods)) + gi * w, [imp[g][mm] for mm in mods], w, label=g)
        a1.set_xticks(np.arange(len(mods)) + 0.4 - w / 2, mods)
        a1.set_ylabel("attention share")
        a1.set_title("Modality importance (held-out)", fontsize=9)
        a1.legend(fontsize=7, loc="lower right", framealpha=0.9)
        n_p = max(len(v) for v in patch.values())
        grid = np.full((len(mods), n_p), np.nan)
        for i, mm in enumerate(mods):
            grid[i, : len(patch[mm])] = patch[mm]
        # from zero: a colour scale fitted to 0.0202-0.0206 makes a near-uniform map look
        # meaningful; the uniform share is marked on the colour bar
        n_tokens = int(np.isfinite(grid).sum())
        uniform = 1.0 / n_tokens if n_tokens else 0.0
        im = a2.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0,
                       vmax=max(float(np.nanmax(grid)), 2.0 * uniform))
        a2.set_yticks(range(len(mods)), mods)
        ps = st.get("patch_s", 1.0)
        a2.set_xlabel(f"patch (× {ps:g} s into the window)")
        a2.set_title("Mean attention each patch receives (last layer)", fontsize=9)
        bar = fig.colorbar(im, ax=a2)
        bar.set_label("attention share")
        if uniform:
            bar.ax.axhline(uniform, color="white", linewidth=1.5)
            bar.ax.text(1.05, uniform, " uniform", transform=bar.ax.get_yaxis_transform(),
                        va="center", fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / PLOT_FILES["importance"], dpi=DPI)
        plt.close(fig)
        written["importance"] = _relative(layout, "importance")
    return written


def _relative(layout: RunLayout, section: str) -> str:
    """Where the report links a section's plot: relative to the run, so the run can move."""
    return layout.plot(PLOT_FILES[section]).relative_to(layout.root).as_posix()


def render_summary(metrics: Mapping[str, Any]) -> str:
    """The run in a few lines for the terminal: the ablation table and the verdict."""
    lines = [f"{'model':28s} {'macro-F1':>8s} {'acc':>6s} {'AUC':>6s} {'ECE':>6s}"]
    for row in metrics["ablation"]:
        cells = [row[k] if row[k] is not None else math.nan for k in ("auc", "ece")]
        lines.append(
            f"{row['model']:28s} {row['macro_f1']:8.3f} {row['accuracy']:6.3f} "
            f"{cells[0]:6.3f} {cells[1]:6.3f}"
        )
    seeds = seeds_summary(metrics)
    if seeds:
        lines += ["", *seeds]
    verdict = metrics.get("acceptance", {}).get("verdict")
    if verdict:
        lines += ["", verdict]
    return "\n".join(lines)


def write_report(run: str | Path, metrics: Mapping[str, Any], *, plots: bool = True) -> Path:
    """Write ``RUN/report.md`` (and ``RUN/plots/*.png`` when ``plots``); returns the report."""
    run = Path(run)
    written = write_plots(run, metrics) if plots else {}
    path = RunLayout(run).report
    path.write_text(render_markdown(metrics, written), encoding="utf-8")
    return path
