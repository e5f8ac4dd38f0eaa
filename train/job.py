"""One fold job: trains every teacher and student variant of a fold, scores them on its test windows.

Statistics fitted on data (global normalization for arrays) use the job's training windows
only (``train.packed.job_inputs``); training windows are thinned to every
``cfg.data.train_stride``-th one of each subject, test windows never. The early-stopping
validation rows are carved out of those training windows (:func:`train.budget.inner_split`):
the job's test windows reach no model before it is scored. Fewer than
``loop.min_val_windows`` validation rows would pick a checkpoint by chance, so then every
model trains its whole budget on all training windows instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.contract import InputContract
from train.budget import inner_split
from train.loop import predict, seed_for, train_student, train_teachers
from train.metrics import softmax
from train.packed import job_inputs
from train.plan import FoldJob, JobPlan
from train.progress import ProgressFn, no_progress

__all__ = ["JobResult", "run_job", "thin"]


@dataclass
class JobResult:
    """What a job sends back: test logits per model, diagnostics, and (if kept) the weights."""

    key: str
    test_logits: dict[str, np.ndarray]  # model -> (n_test, K)
    diag: dict[str, float]
    contract: InputContract  # of the job's X (global normalization stats for arrays)
    n_train: int  # training windows after thinning
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of the process: what the job costs on an idle core
    states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # when keep
    train_logs: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> TrainLog.brief


def thin(idx: np.ndarray, groups: np.ndarray, start: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th training window of each subject, in time order."""
    if stride <= 1:
        return idx
    keep = []
    for g in np.unique(groups[idx]):
        sub = idx[groups[idx] == g]
        keep.append(sub[np.argsort(start[sub], kind="mergesort")][::stride])
    return np.sort(np.concatenate(keep))


def run_job(
    plan: JobPlan, X: np.ndarray, job: FoldJob, progress: ProgressFn = no_progress
) -> JobResult:
    """Train every teacher and student of one job and score them on its test windows."""
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = plan.cfg
    tr = thin(job.train, plan.groups, plan.start, cfg.data.train_stride)
    fit_idx, val_idx = inner_split(
        tr, plan.y, plan.groups, plan.start,
        fraction=cfg.loop.val_fraction, by=cfg.loop.val_by, window_s=plan.contract.window_s,
        rng=np.random.default_rng(seed_for(cfg.seed, job.key, "validation")),
    )  # fmt: skip
    if len(val_idx) < cfg.loop.min_val_windows:
        # a handful of windows picks a checkpoint by chance: train the whole budget on all
        fit_idx, val_idx = tr, tr[:0]
    Xj, contract = job_inputs(X, plan.contract, plan.y, plan.groups, plan.start, job.train)
    teachers, cache, logs = train_teachers(
        plan.specs, Xj, plan.y, fit_idx, val_idx, contract, cfg,
        key=job.key, hint_teacher=plan.hint_teacher, progress=progress,
    )  # fmt: skip
    test_logits = {name: predict(m, Xj, job.test)[0] for name, m in teachers.items()}
    # the ensemble is the equal-weight mixture the students distil from (at T = 1)
    ens = np.mean([softmax(test_logits[n]) for n in cache.names], axis=0)
    test_logits["teacher_ensemble"] = np.log(np.clip(ens, 1e-12, None))
    p_train = F.softmax(cache.logits[: len(fit_idx)], dim=-1)  # (n, n_teachers, K)
    ytr = torch.from_numpy(plan.y[fit_idx])
    diag = {
        "teacher_train_accuracy": float((p_train.argmax(-1) == ytr[:, None]).float().mean()),
        "teacher_train_confidence": float(p_train.max(-1).values.mean()),
    }
    states: dict[str, dict[str, torch.Tensor]] = {}
    for v in plan.variants:
        student, logs[f"student_{v.name}"] = train_student(
            v, Xj, plan.y, fit_idx, val_idx, contract, plan.student_mods, cfg, cache,
            key=job.key, progress=progress,
        )  # fmt: skip
        test_logits[f"student_{v.name}"] = predict(student, Xj, job.test)[0]
        if job.keep:
            states[f"student_{v.name}"] = student.state_dict()
    if job.keep:
        states.update({n: teachers[n].state_dict() for n in cache.names})
    return JobResult(
        job.key,
        test_logits,
        diag,
        contract,
        len(tr),
        time.perf_counter() - t0,
        time.process_time() - c0,
        states,
        {name: log.brief() for name, log in logs.items()},
    )
