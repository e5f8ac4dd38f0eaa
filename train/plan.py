"""What a run trains: its teachers, the student's modalities and variants, and the fold jobs.

A fold is one *job*: train every teacher once (one per modality group, the fusion teacher,
the fusion-mode ablation), then each student variant against the mixture teachers, and
score everything on the fold's test windows (``train.job``). The deployable models are one
more job, trained on every subject but the held-out one(s); when a cross-validation fold has
exactly that training and test set (LOSO with one held-out subject) its job keeps its models
instead, so they are not trained twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.contract import InputContract
from core.errors import ConfigError
from train.config import RunConfig, Variant
from train.cv import Fold

__all__ = [
    "DEPLOY_JOB",
    "FoldJob",
    "JobPlan",
    "TeacherSpec",
    "fold_jobs",
    "hint_teacher",
    "student_modalities",
    "teacher_specs",
]

DEPLOY_JOB = "deploy"  # key of the deployable models' own job, when no fold can stand in


@dataclass(frozen=True)
class TeacherSpec:
    """One teacher of the run."""

    name: str  # "teacher_bvp", "teacher_fusion_mid"
    modalities: tuple[str, ...]
    fusion: str  # early | mid | late
    in_mixture: bool  # joins the distillation mixture (else: ablation only)
    wrist_only: bool  # sees only modalities the wearable has


def teacher_specs(
    cfg: RunConfig, available: Sequence[str], student_modalities: Sequence[str]
) -> tuple[list[TeacherSpec], list[str]]:
    """Teachers the config asks for that the data can feed, and notes on what was skipped."""
    notes: list[str] = []
    avail, wrist, wanted = set(available), set(student_modalities), set(cfg.distill.teachers)
    specs: list[TeacherSpec] = []
    for group, mods in cfg.teachers.groups.items():
        missing = [m for m in mods if m not in avail]
        if missing:
            notes.append(f"teacher group {group!r} skipped: the data has no {missing}")
            continue
        in_mix = "all" in wanted or group in wanted
        specs.append(
            TeacherSpec(f"teacher_{group}", tuple(mods), "mid", in_mix, set(mods) <= wrist)
        )
    if len(available) > 1:
        modes = [cfg.teachers.fusion] + [
            m for m in cfg.teachers.fusion_ablation if m != cfg.teachers.fusion
        ]
        for mode in modes:
            in_mix = mode == cfg.teachers.fusion and ("all" in wanted or "fusion" in wanted)
            specs.append(
                TeacherSpec(
                    f"teacher_fusion_{mode}", tuple(available), mode, in_mix, avail <= wrist
                )
            )
    if not specs:
        specs.append(TeacherSpec("teacher_all", tuple(available), "mid", True, avail <= wrist))
        notes.append("no configured teacher group fits the data: one teacher over all modalities")
    if not any(s.in_mixture for s in specs):
        raise ConfigError(
            f"{cfg.distill.teachers} selects no trained teacher", key="distill.teachers"
        )
    return specs, notes


def student_modalities(cfg: RunConfig, available: Sequence[str]) -> tuple[list[str], list[str]]:
    """The modalities the student sees (the configured ones the data has), and notes."""
    mods = [m for m in cfg.data.student_modalities if m in available]
    if mods:
        return mods, []
    return list(available), [
        f"none of data.student_modalities {cfg.data.student_modalities} is in the data: "
        f"the student sees every modality ({list(available)})"
    ]


def hint_teacher(cfg: RunConfig, mixture: Sequence[TeacherSpec]) -> str:
    """The teacher whose features ``_hint`` variants imitate: the fusion teacher if mixed."""
    fusion_name = f"teacher_fusion_{cfg.teachers.fusion}"
    return fusion_name if any(s.name == fusion_name for s in mixture) else mixture[0].name


@dataclass(frozen=True)
class JobPlan:
    """What every job needs besides ``X`` (picklable: it is sent to worker processes)."""

    cfg: RunConfig
    contract: InputContract  # of X's columns
    y: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) str
    start: np.ndarray  # (N,) float64
    specs: tuple[TeacherSpec, ...]
    variants: tuple[Variant, ...]
    student_mods: tuple[str, ...]
    hint_teacher: str

    @property
    def n_classes(self) -> int:
        return self.contract.n_classes


@dataclass(frozen=True)
class FoldJob:
    """One job: the models of a fold (or the deployable models)."""

    key: str  # fold name ("S2", "block 1/4", "fixed") or "deploy"; seeds derive from it
    train: np.ndarray  # window indices before thinning
    test: np.ndarray
    keep: bool  # return the trained mixture teachers and students (for deployment)


def fold_jobs(
    folds: Sequence[Fold], train_mask: np.ndarray, held_mask: np.ndarray
) -> tuple[list[FoldJob], str]:
    """One job per fold, plus the deployable models' job; returns (jobs, its key).

    The deployable models are a fold's models when that fold has the same training set."""
    train_idx, held_idx = np.flatnonzero(train_mask), np.flatnonzero(held_mask)
    jobs = [FoldJob(f.name, f.train, f.test, False) for f in folds]
    deploy_key = DEPLOY_JOB
    for i, f in enumerate(folds):
        if np.array_equal(f.train, train_idx) and np.array_equal(f.test, held_idx):
            jobs[i] = FoldJob(f.name, f.train, f.test, True)
            deploy_key = f.name
    if deploy_key == DEPLOY_JOB:
        jobs.append(FoldJob(DEPLOY_JOB, train_idx, held_idx, True))
    return jobs, deploy_key
