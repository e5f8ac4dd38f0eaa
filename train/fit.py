"""Runs ``edge-train fit``: load, cross-validate, score, keep the deployable student, write it all.

One run, in order (each step is one module's job):

1. :func:`train.packed.load_data`: the windows, every modality packed once into ``X (N, L)``.
2. :mod:`train.plan`: the teachers, the student's modalities and variants, one job per fold
   (:func:`train.cv.make_folds`) plus the deployable models' job.
3. :func:`train.pool.run_jobs`: the jobs, inline or in worker processes; each trains and
   scores every model of its fold (:func:`train.job.run_job`, :mod:`train.loop`).
4. :func:`train.scores.score_models`: every model on the pooled test windows and per fold.
5. With ``seeds > 1``, steps 2-4 again for each further seed, and
   :func:`train.seeds.aggregate`: mean ± sd per model and the paired distilled-vs-alone
   comparison; the deployable variant is then chosen on the mean, never on one seed.
6. :func:`train.deploy.write_deployable`: checkpoints, windows for export, the demo recording.
7. :func:`train.acceptance.acceptance`, then ``metrics.json``, ``report.md``
   (:mod:`train.report`) and the run record (:mod:`train.tracking`), at the paths of
   :class:`core.runs.RunLayout`.

Same config and seed, same numbers: every model is seeded by its own job and name, so
results do not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.runs import RunLayout
from train.acceptance import acceptance
from train.checkpoint import dataset_info
from train.config import RunConfig, Variant, dump_toml, parse_variant
from train.cv import Fold, make_folds, resolve_kind, subject_key
from train.deploy import Holdout, choose_variant, partition, write_deployable
from train.job import JobResult
from train.metrics import json_safe
from train.packed import LoadedData, load_data
from train.plan import (
    JobPlan,
    TeacherSpec,
    fold_jobs,
    hint_teacher,
    student_modalities,
    teacher_specs,
)
from train.pool import PoolSettings, run_jobs
from train.progress import ProgressFn, no_progress
from train.report import render_summary, write_report
from train.scores import ablation, model_names, score_models
from train.seeds import aggregate, variant_by_mean
from train.tracking import Tracker, data_fingerprint, write_record

__all__ = ["FitResult", "fit"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """Where the run went, what it measured, and how long it took."""

    run_dir: Path
    metrics: dict[str, Any]
    elapsed_s: float

    def summary(self) -> str:
        return f"run written to {self.run_dir} in {self.elapsed_s:.0f} s\n\n" + render_summary(
            self.metrics
        )


def fit(
    dataset_kind: str,
    data_path: str | Path,
    out_dir: str | Path,
    cfg: RunConfig,
    *,
    progress: ProgressFn = no_progress,
    seeds: int = 1,
    tracker: Tracker | None = None,
) -> FitResult:
    """Cross-validate (for ``seeds`` seeds from ``cfg.seed``), keep the deployable student,
    write the run directory; ``tracker`` (e.g. MLflow) hears of the run when given."""
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
            runs = []
            for i in range(seeds):
                seed_cfg = dataclasses.replace(cfg, seed=cfg.seed + i)
                runs.append(_evaluate(data, seed_cfg, Path(work), progress, timing))
            metrics = _finish(data, cfg, layout, runs, timing)
    finally:
        undo()
    timing["total_s"] = time.perf_counter() - t_start
    metrics["timing"] = {k: round(v, 2) for k, v in timing.items()}
    metrics = json_safe(metrics)
    layout.metrics.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    write_report(layout.root, metrics, plots=cfg.report.plots)
    record = write_record(layout, cfg, metrics, data_fingerprint(data.X, data.y, data.groups))
    if tracker is not None:
        tracker.log_run(layout, record, metrics)
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


@dataclass
class _Evaluation:
    """One seed's cross-validation: what was trained and how every model scored."""

    cfg: RunConfig
    cv_kind: str
    folds: list[Fold]
    specs: list[TeacherSpec]
    variants: list[Variant]
    student_mods: list[str]
    holdout: Holdout
    deploy_key: str
    results: dict[str, JobResult]
    models: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def mixture(self) -> list[TeacherSpec]:
        return [s for s in self.specs if s.in_mixture]


def _evaluate(
    data: LoadedData,
    cfg: RunConfig,
    work: Path,
    progress: ProgressFn,
    timing: dict[str, float],
) -> _Evaluation:
    """Train and score every model of every fold (and the deployable models' job) for
    ``cfg.seed``; CPU and wall times add up in ``timing``."""
    available = list(data.contract.modality_names)
    student_mods, notes = student_modalities(cfg, available)
    specs, spec_notes = teacher_specs(cfg, available, student_mods)
    notes += spec_notes
    variants = [parse_variant(v) for v in cfg.student.variants]
    cv_kind = resolve_kind(cfg.cv.kind, has_split=data.split is not None,
                           has_groups=data.has_groups)  # fmt: skip
    folds = make_folds(
        cv_kind,
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
    mixture = [s for s in specs if s.in_mixture]
    plan = JobPlan(
        cfg, data.contract, data.y, data.groups, data.start, tuple(specs), tuple(variants),
        tuple(student_mods), hint_teacher(cfg, mixture),
    )  # fmt: skip
    log.info(
        "seed %d: %d windows, %d subjects, %d folds (%s) + deployable models (%s); teachers "
        "%s; student on %s; variants %s; %d worker(s)",
        cfg.seed, len(data.y), len(np.unique(data.groups)), len(folds), cv_kind, deploy_key,
        [s.name for s in specs], student_mods, cfg.student.variants, cfg.workers,
    )  # fmt: skip
    t0 = time.perf_counter()
    settings = PoolSettings(cfg.workers, cfg.threads, cfg.deterministic)
    results = run_jobs(plan, data.X, jobs, work, settings, progress)
    timing["train_s"] = timing.get("train_s", 0.0) + time.perf_counter() - t0
    timing["job_s_sum"] = timing.get("job_s_sum", 0.0) + sum(r.seconds for r in results.values())
    timing["job_cpu_s_sum"] = timing.get("job_cpu_s_sum", 0.0) + sum(
        r.cpu_seconds for r in results.values()
    )
    models = score_models(folds, results, data.y, data.class_names, specs, variants, student_mods)
    return _Evaluation(cfg, cv_kind, folds, specs, variants, student_mods, holdout, deploy_key,
                       results, models, notes)  # fmt: skip


def _finish(
    data: LoadedData,
    cfg: RunConfig,
    layout: RunLayout,
    runs: list[_Evaluation],
    timing: dict[str, float],
) -> dict[str, Any]:
    """The deployable student (from the first seed, its variant chosen on every seed's
    mean) and the metrics document."""
    first = runs[0]
    seeds_block = None
    if len(runs) > 1:
        seeds_block = aggregate([r.cfg.seed for r in runs], [r.models for r in runs],
                                first.specs, first.variants)  # fmt: skip
        variant = variant_by_mean(cfg, first.variants, seeds_block)
        for r in runs[1:]:  # the other seeds' documents, for comparing runs later
            doc = _document(data, r, None)
            path = layout.root / "seeds" / f"seed_{r.cfg.seed}" / "metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n")
    else:
        variant = choose_variant(cfg, first.variants, first.models)
    t0 = time.perf_counter()
    student_info = write_deployable(
        data, first.cfg, layout, first.results[first.deploy_key], first.mixture,
        first.student_mods, variant, first.models, first.holdout, first.notes,
    )  # fmt: skip
    timing["deploy_s"] = time.perf_counter() - t0
    doc = _document(data, first, student_info)
    if seeds_block is not None:
        doc["seeds"] = seeds_block
        doc["acceptance"] = seeds_block["acceptance"]
    doc["profile"] = cfg.report.profile
    return doc


def _document(
    data: LoadedData, ev: _Evaluation, student_info: dict[str, Any] | None
) -> dict[str, Any]:
    """The metrics document of one seed's evaluation (``student`` empty when it deployed
    nothing)."""
    results, folds, cfg = ev.results, ev.folds, ev.cfg
    diag = {
        k: [float(results[f.name].diag[k]) for f in folds]
        for k in ("teacher_train_accuracy", "teacher_train_confidence")
    }
    verdict = acceptance(ev.models, ev.specs, ev.variants, diag, cfg)
    return {
        "task": cfg.data.task,
        "cv": {
            "kind": ev.cv_kind,
            "folds": [
                {
                    "name": f.name,
                    "n_train": len(f.train),
                    "n_train_used": results[f.name].n_train,
                    "n_test": len(f.test),
                    "test_subjects": list(f.test_subjects),
                    "seconds": round(results[f.name].seconds, 1),
                    "cpu_seconds": round(results[f.name].cpu_seconds, 1),
                    "training": results[f.name].train_logs,
                }
                for f in folds
            ],
            "train_stride": cfg.data.train_stride,
        },
        "subjects": sorted(np.unique(data.groups).tolist(), key=subject_key),
        "class_names": list(data.class_names),
        "n_windows": len(data.y),
        "class_counts": {c: int((data.y == i).sum()) for i, c in enumerate(data.class_names)},
        "dataset": {**dataset_info(data.kind, data.path), **_data_summary(data)},
        "models": ev.models,
        "student": student_info or {},
        "ablation": ablation(ev.models, model_names(ev.specs, ev.variants)),
        "acceptance": verdict,
        "diagnostics": diag,
        "notes": list(ev.notes),
        "seed": cfg.seed,
        "workers": cfg.workers,
    }


def _data_summary(data: LoadedData) -> dict[str, Any]:
    """What a reader of the report wants to know about the data beyond its path."""
    keys = ("length", "length_mode", "lengths_min_max", "fitted_cases", "missing_values_filled")
    return {k: data.info[k] for k in keys if k in data.info}
