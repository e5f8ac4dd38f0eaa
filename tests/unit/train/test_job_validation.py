"""train.job: early stopping and every other training step never read a test window.

The test windows of the job are NaN: a model that trained on one, or a validation score
computed on one, turns NaN. The two sabotaged runs show the check catches both leaks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import train.job
from core.contract import InputContract, Modality, Normalization
from train.config import load_config, parse_variant
from train.job import JobResult, run_job
from train.plan import FoldJob, JobPlan, TeacherSpec

SUBJECTS, PER, T = 4, 24, 80


def _data() -> tuple[JobPlan, np.ndarray, FoldJob]:
    cfg = load_config(overrides=[
        "workers=1", "teachers.steps=12", "student.steps=12", "loop.evals=3",
        "loop.val_fraction=0.25", "loop.val_by=time", "loop.min_val_windows=5",
        "student.variants=alone,kd_ca_ulgm",
    ])  # fmt: skip
    contract = InputContract(
        modalities=(Modality("signal", "a.u.", 8.0, ("a",)),),
        class_names=("calm", "stress"),
        window_s=10.0,
        hop_s=10.0,
        normalization=Normalization(kind="global"),
    )
    rng = np.random.default_rng(0)
    y = np.tile(np.repeat([0, 1], PER // 2), SUBJECTS)
    X = rng.normal(size=(SUBJECTS * PER, T)).astype(np.float32) + 2.0 * y[:, None]
    groups = np.repeat([f"P{i}" for i in range(SUBJECTS)], PER)
    start = np.tile(np.arange(PER) * 10.0, SUBJECTS)
    spec = TeacherSpec("teacher_all", ("signal",), "mid", True, True)
    variants = tuple(parse_variant(v) for v in cfg.student.variants)
    plan = JobPlan(cfg, contract, y, groups, start, (spec,), variants, ("signal",), spec.name)
    test = np.flatnonzero(groups == "P3")
    X[test] = np.nan  # anything computed from a test window is NaN from here on
    job = FoldJob("P3", np.flatnonzero(groups != "P3"), test, keep=True)
    return plan, X, job


def _touched_test_windows(r: JobResult) -> bool:
    """True when a model trained on, or was scored for early stopping on, a test window."""
    weights = all(torch.isfinite(t).all() for s in r.states.values() for t in s.values()
                  if t.is_floating_point())  # fmt: skip
    return not weights or any(
        not np.isfinite(v)
        for log in r.train_logs.values()
        for v in (log["best_val_loss"], log["best_val_f1"])
    )


def test_no_model_and_no_early_stopping_sees_a_test_window() -> None:
    plan, X, job = _data()
    r = run_job(plan, X, job)
    assert not _touched_test_windows(r)
    for name, log in r.train_logs.items():
        assert log["n_val"] > 0 and log["best_step"] > 0, name  # early stopping did run
        assert log["n_fit"] + log["n_val"] <= len(job.train)


@pytest.mark.parametrize("leak", ["validation", "training"])
def test_the_check_catches_a_leak(monkeypatch: pytest.MonkeyPatch, leak: str) -> None:
    plan, X, job = _data()

    def leaky(train: np.ndarray, *args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        if leak == "validation":
            return train, job.test
        return np.concatenate([train, job.test[:2]]), train[:8]

    monkeypatch.setattr(train.job, "inner_split", leaky)
    assert _touched_test_windows(run_job(plan, X, job))
