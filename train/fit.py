"""Runs ``edge-train fit``: load, cross-validate, score, keep the deployable student, write it all.

One run, in order (each step is one module's job):

1. :func:`train.packed.load_data`: the windows, every modality packed once into ``X (N, L)``.
2. :mod:`train.plan`: the teachers, the student's modalities and variants, one job per fold
   (:func:`train.cv.make_folds`) plus the deployable models' job.
3. :func:`train.pool.run_jobs`: the jobs, inline or in worker processes; each trains and
   scores every model of its fold (:func:`train.job.run_job`, :mod:`train.loop`).
4. :func:`train.scores.score_models`: every model on the pooled test windows and per fold.
5. :func:`train.deploy.write_deployable`: checkpoints, windows for export, the demo recording.
6. :func:`train.acceptance.acceptance`, then ``metrics.json`` and ``report.md``
   (:mod:`train.report`), at the paths of :class:`core.runs.RunLayout`.

Same config and seed, same numbers: every model is seeded by its own job and name, so
results do not depend on the number of workers.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.runs import RunLayout
from train.acceptance import acceptance
from train.checkpoint import dataset_info
from train.config import RunConfig, dump_toml, parse_variant
from train.cv import make_folds, subject_key
from train.deploy import choose_variant, partition, write_deployable
from train.metrics import json_safe
from train.packed import LoadedData, load_data
from train.plan import JobPlan, fold_jobs, hint_teacher, student_modalities, teacher_specs
from train.pool import PoolSettings, run_jobs
from train.progress import ProgressFn, no_progress
from train.report import render_summary, write_report
from train.scores import ablation, model_names, score_models

__all__ = ["FitResult", "fit"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """Where the run went, what it measured, and how long it took."""

    run_dir: Path
    metrics: dict[str, Any]
    elapsed_s: float

    def summary(self) -> str:
        return (
            f"run written to {self.run_dir} in {self.elapsed_s:.0f} s\n\n"
            + render_summary(self.metrics)
        )


def fit(
    dataset_kind: str,
    data_path: str | Path,
    out_dir: str | Path,
    cfg: RunConfig,
    *,
    progress: ProgressFn = no_progress,
) -> FitResult:
    """Cross-validate, keep the deployable student, write the run directory."""
    t_start = time.perf_counter()
    layout = RunLayout(Path(out_dir))
    layout.root.mkdir(parents=True, exist_ok=True)
    dump_toml(cfg, layout.config)
    undo = _setup_torch(cfg)
    timing: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        data = load_data(dataset_kind, Path(data_path), cfg, progress=progress)
        timing["load_s"] = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(dir=layout.root, prefix=".work-") as work:
            metrics = _run(data, cfg, layout, Path(work), progress, timing)
    finally:
        undo()
    timing["total_s"] = time.perf_counter() - t_start
    metrics["timing"] = {k: round(v, 2) for k, v in timing.items()}
    metrics = json_safe(metrics)
    layout.metrics.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    write_report(layout.root, metrics, plots=cfg.report.plots)
    return FitResult(layout.root, metrics, time.perf_counter() - t_start)


def _setup_torch(cfg: RunConfig) -> Callable[[], None]:
    """Fix threads and determinism for the run; returns the function that undoes it."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(cfg.deterministic)

    def undo() -> None:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)

    return undo


def _run(
    data: LoadedData,
    cfg: RunConfig,
    layout: RunLayout,
    work: Path,
    progress: ProgressFn,
    timing: dict[str, float],
) -> dict[str, Any]:
    # -- what to train -------------------------------------------------------------------
    available = list(data.contract.modality_names)
    student_mods, notes = student_modalities(cfg, available)
    specs, spec_notes = teacher_specs(cfg, available, student_mods)
    notes += spec_notes
    variants = [parse_variant(v) for v in cfg.student.variants]
    mixture = [s for s in specs if s.in_mixture]
    folds = make_folds(
        cfg.cv.kind,
        groups=data.groups if data.has_groups else None,
        start=data.start,
        split=data.split,
        n_splits=cfg.cv.n_splits,
        scope=cfg.cv.forward_scope,
        window_s=data.contract.window_s,  # the windows' real length (arrays: T / rate)
        purge=cfg.cv.purge,
        max_folds=cfg.cv.max_folds,
    )
    holdout = partition(data, cfg)
    jobs, deploy_key = fold_jobs(folds, holdout.train_mask, holdout.held_mask)
    plan = JobPlan(
        cfg, data.contract, data.y, data.groups, data.start, tuple(specs), tuple(variants),
        tuple(student_mods), hint_teacher(cfg, mixture),
    )  # fmt: skip
    log.info(
        "%d windows, %d subjects, %d folds (%s) + deployable models (%s); teachers %s; "
        "student on %s; variants %s; %d worker(s)",
        len(data.y), len(np.unique(data.groups)), len(folds), cfg.cv.kind, deploy_key,
        [s.name for s in specs], student_mods, cfg.student.variants, cfg.workers,
    )  # fmt: skip

    # -- train and score -----------------------------------------------------------------
    t0 = time.perf_counter()
    settings = PoolSettings(cfg.workers, cfg.threads, cfg.deterministic)
    results = run_jobs(plan, data.X, jobs, work, settings, progress)
    timing["train_s"] = time.perf_counter() - t0
    timing["job_s_sum"] = sum(r.seconds for r in results.values())
    timing["job_cpu_s_sum"] = sum(r.cpu_seconds for r in results.values())
    models = score_models(
        folds, results, data.y, data.class_names, specs, variants, student_mods
    )

    # -- the deployable student ----------------------------------------------------------
    t0 = time.perf_counter()
    student_info = write_deployable(
        data, cfg, layout, results[deploy_key], mixture, student_mods,
        choose_variant(cfg, variants, models), models, holdout, notes,
    )  # fmt: skip
    timing["deploy_s"] = time.perf_counter() - t0

    # -- acceptance and the metrics document ---------------------------------------------
    diag = {
        k: [float(results[f.name].diag[k]) for f in folds]
        for k in ("teacher_train_accuracy", "teacher_train_confidence")
    }
    verdict = acceptance(models, specs, variants, diag, cfg)
    notes += verdict.pop("notes")
    return {
        "task": cfg.data.task,
        "cv": {
            "kind": cfg.cv.kind,
            "folds": [
                {
                    "name": f.name,
                    "n_train": len(f.train),
                    "n_train_used": results[f.name].n_train,
                    "n_test": len(f.test),
                    "test_subjects": list(f.test_subjects),
                    "seconds": round(results[f.name].seconds, 1),
                    "cpu_seconds": round(results[f.name].cpu_seconds, 1),
                }
                for f in folds
            ],
            "train_stride": cfg.data.train_stride,
        },
        "subjects": sorted(np.unique(data.groups).tolist(), key=subject_key),
        "class_names": list(data.class_names),
        "n_windows": len(data.y),
        "class_counts": {c: int((data.y == i).sum()) for i, c in enumerate(data.class_names)},
        "dataset": dataset_info(data.kind, data.path),
        "models": models,
        "student": student_info,
        "ablation": ablation(models, model_names(specs, variants)),
        "acceptance": verdict,
        "diagnostics": diag,
        "notes": notes,
        "seed": cfg.seed,
        "workers": cfg.workers,
    }
