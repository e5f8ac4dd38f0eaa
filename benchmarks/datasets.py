"""``edge-bench datasets``: the default student against MiniRocket on public data sets aeon ships.

For each data set (UEA/UCR archive files inside the aeon wheel: nothing is downloaded) the
default ``edge-train fit`` runs on the archive's own train/test split with 3 seeds; beside
it, in the same process and on the same series (the loader's fitted length, the same
split), MiniRocket (aeon's ``MiniRocketClassifier``) with the same 3 seeds. Results go to
``benchmarks/results/datasets/``: ``results.json`` (a top-level ``datasets`` list with
``name``, ``student_acc_mean``, ``minirocket_acc_mean`` and the rest), ``results.md`` and
``accuracy.png``.

    edge-bench datasets                        # the five default sets, 3 seeds (~1 h on 2 cores)
    edge-bench datasets --sets GunPoint --seeds 1 --out /tmp/ds   # one set, a smoke run

Needs the ``bench`` extra (aeon). The student is the run's deployable variant, chosen on the
mean over seeds; its accuracy is that variant's pooled test accuracy per seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.errors import WearableEdgeError

__all__ = [
    "DEFAULT_SETS",
    "DatasetBenchError",
    "aeon_data_dir",
    "main",
    "minirocket_accuracy",
    "run_dataset",
]

log = logging.getLogger("edge-bench.datasets")

OUT_DIR: Final = Path(__file__).resolve().parent / "results" / "datasets"
# univariate and multivariate, equal and unequal length, 2 to 10 classes, 36 to 270 cases
DEFAULT_SETS: Final = (
    "GunPoint",
    "JapaneseVowels",
    "PickupGestureWiimoteZ",
    "ArrowHead",
    "ItalyPowerDemand",
)
SEEDS: Final = 3


class DatasetBenchError(WearableEdgeError):
    """The data-set benchmark cannot run (aeon missing, an unknown data set)."""


def aeon_data_dir() -> Path:
    """The folder of data sets inside the installed aeon wheel."""
    try:
        import aeon
    except ImportError:
        raise DatasetBenchError(
            "edge-bench datasets needs aeon: pip install 'wearable-edge[bench]'"
        ) from None
    return Path(aeon.__file__).resolve().parent / "datasets" / "data"


def minirocket_accuracy(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, seed: int
) -> tuple[float, float]:
    """(test accuracy, fit seconds of CPU) of aeon's MiniRocket on ``(N, C, T)`` arrays."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    clf = MiniRocketClassifier(random_state=seed, n_jobs=1)
    t0 = time.process_time()
    clf.fit(X_train.astype(np.float64), y_train)
    fit_s = time.process_time() - t0
    acc = float(np.mean(clf.predict(X_test.astype(np.float64)) == y_test))
    return acc, fit_s


def _series(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(X, y, split, info) exactly as ``edge-train fit --dataset ts`` reads ``folder``."""
    from train.ts_data import load_ts

    ds = load_ts(folder)
    assert ds.split is not None  # the archive's folders hold a train/test pair
    return ds.modalities["signal"], ds.y, ds.split, ds.info


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def run_dataset(name: str, data_dir: Path, work: Path, seeds: int) -> dict[str, Any]:
    """Train the default student (``seeds`` seeds) and MiniRocket on one data set."""
    from train.config import load_config
    from train.fit import fit

    folder = data_dir / name
    X, y, split, info = _series(folder)
    tr, te = split == "train", split == "test"
    cfg = load_config(overrides=["report.plots=false"])
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit("ts", folder, work / name, cfg, seeds=seeds)
    student_cpu = time.process_time() - c0
    m = res.metrics
    variant = f"student_{m['student']['variant']}"
    block = m.get("seeds")
    per_seed = (
        block["models"][variant]["accuracy_per_seed"]
        if block
        else [m["models"][variant]["accuracy"]]
    )
    alone = (
        block["models"]["student_alone"]["accuracy_per_seed"]
        if block
        else [m["models"]["student_alone"]["accuracy"]]
    )
    teacher = [
        v for k, v in (block["models"] if block else m["models"]).items() if k == "teacher_all"
    ]
    mr = [minirocket_accuracy(X[tr], y[tr], X[te], y[te], seed) for seed in range(seeds)]
    s_mean, s_sd = _mean_sd(per_seed)
    a_mean, a_sd = _mean_sd(alone)
    r_mean, r_sd = _mean_sd([a for a, _ in mr])
    row: dict[str, Any] = {
        "name": name,
        "n_train": int(tr.sum()),
        "n_test": int(te.sum()),
        "channels": int(X.shape[1]),
        "length": int(X.shape[2]),
        "length_range": info.get("lengths_min_max"),
        "classes": len(np.unique(y)),
        "student_variant": m["student"]["variant"],
        "student_acc_mean": s_mean,
        "student_acc_sd": s_sd,
        "student_acc_per_seed": list(per_seed),
        "student_alone_acc_mean": a_mean,
        "student_alone_acc_sd": a_sd,
        "minirocket_acc_mean": r_mean,
        "minirocket_acc_sd": r_sd,
        "minirocket_acc_per_seed": [a for a, _ in mr],
        "student_params": m["student"]["params"],
        "student_macs": m["student"]["macs"],
        "student_train_cpu_s": student_cpu / seeds,
        "student_train_wall_s": (time.perf_counter() - t0) / seeds,
        "minirocket_train_cpu_s": float(np.mean([s for _, s in mr])),
        "gap_to_minirocket": s_mean - r_mean,
    }
    if teacher:
        t = teacher[0]
        row["teacher_acc_mean"] = t["accuracy_mean"] if block else t["accuracy"]
    log.info("%s: student %.3f ± %.3f, MiniRocket %.3f ± %.3f", name, s_mean, s_sd, r_mean, r_sd)
    return row


def render(doc: Mapping[str, Any]) -> str:
    """results.md from results.json's document."""
    rows = doc["datasets"]
    lines = [
        "# The default student against MiniRocket on public data sets",
        "",
        f"`{doc['command']}` on {doc['machine']}, {doc['date']}; {doc['seeds']} seeds each; "
        "data sets from the aeon wheel (archive train/test split, nothing downloaded). "
        "Accuracy on the archive's test cases, mean ± sd over seeds; the student is the "
        "default `edge-train fit` run's deployable variant (chosen on the mean over seeds), "
        "trained with no per-data-set setting; MiniRocket sees the same series (the same "
        "fitted length) and split. Train times are CPU seconds per seed on this machine "
        f"(load average at the start {doc['load_average']}), the student's including its "
        "teacher and every ablation variant of the default run.",
        "",
        "| data set | train / test | channels × length | classes | student | MiniRocket | "
        "Δ | student alone | params / MACs | train s (student / MiniRocket) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['n_train']} / {r['n_test']} | {r['channels']} × {r['length']}"
            f" | {r['classes']} | {r['student_acc_mean']:.3f} ± {r['student_acc_sd']:.3f} "
            f"({r['student_variant']}) | {r['minirocket_acc_mean']:.3f} ± "
            f"{r['minirocket_acc_sd']:.3f} | {r['gap_to_minirocket']:+.3f} | "
            f"{r['student_alone_acc_mean']:.3f} | {r['student_params']} / {r['student_macs']} "
            f"| {r['student_train_cpu_s']:.0f} / {r['minirocket_train_cpu_s']:.1f} |"
        )
    within = sum(r["gap_to_minirocket"] >= -0.02 for r in rows)
    ahead = sum(r["gap_to_minirocket"] > 0 for r in rows)
    lines += [
        "",
        f"The student is within 0.02 of MiniRocket on {within} of {len(rows)} data sets and "
        f"ahead on {ahead}.",
        "",
        "![accuracy](accuracy.png)",
        "",
    ]
    return "\n".join(lines)


def plot(doc: Mapping[str, Any], path: Path) -> None:
    """Accuracy per data set, student beside MiniRocket, with ± sd bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["datasets"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.6))
    for off, key, label in ((-0.2, "student", "student (default config)"),
                            (0.2, "minirocket", "MiniRocket")):  # fmt: skip
        ax.bar(x + off, [r[f"{key}_acc_mean"] for r in rows], 0.4,
               yerr=[r[f"{key}_acc_sd"] for r in rows], capsize=3, label=label)  # fmt: skip
    ax.set_xticks(x, [r["name"] for r in rows], rotation=15)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="edge-bench datasets",
        description="The default student against MiniRocket on data sets aeon ships.",
    )
    p.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated names")
    p.add_argument("--seeds", type=int, default=SEEDS, help="seeds per data set (default 3)")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="results folder")
    p.add_argument("--keep-runs", type=Path, help="keep the training runs here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    try:
        data_dir = aeon_data_dir()
        missing = [n for n in names if not (data_dir / n).is_dir()]
        if missing:
            raise DatasetBenchError(f"not among the data sets aeon ships: {missing}")
        if args.seeds < 1:
            raise DatasetBenchError(f"--seeds must be at least 1, got {args.seeds}")
    except WearableEdgeError as e:
        print(f"edge-bench datasets: error: {e}", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-ds-") as tmp:
        work = args.keep_runs or Path(tmp)
        for name in names:
            rows.append(run_dataset(name, data_dir, work, args.seeds))
    doc = {
        "command": "edge-bench datasets " + shlex.join(list(argv or sys.argv[2:])),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "load_average": round(load, 2) if load is not None else None,
        "date": time.strftime("%Y-%m-%d"),
        "seeds": args.seeds,
        "datasets": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "results.md").write_text(render(doc))
    plot(doc, args.out / "accuracy.png")
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
