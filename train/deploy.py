"""Writes a run's deployable models: student and teacher checkpoints, export windows, demo recording.

The deployable student is trained on every subject but the held-out one(s)
(:func:`partition`); its job is a fold job (``train.plan.fold_jobs``). Each checkpoint is
rebuilt from its own contract and must answer as the trained model did before it is
written. Paths come from :class:`core.runs.RunLayout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.errors import ConfigError
from core.runs import RunLayout
from train.acceptance import STUDENT_MAC_BUDGET, STUDENT_PARAM_BUDGET, budget_note
from train.attention import modality_importance, patch_importance
from train.checkpoint import dataset_info, make_checkpoint
from train.config import RunConfig, Variant, parse_variant
from train.cv import subject_key
from train.errors import TrainError
from train.loop import EVAL_BATCH, predict, seed_for
from train.macs import count_macs, count_params
from train.metrics import evaluate, softmax
from train.models import Student, StudentConfig
from train.packed import LoadedData, job_inputs, packed_columns
from train.plan import TeacherSpec
from train.scores import FOLD_KEYS, brief, f1_of
from train.teachers import FusionTeacher, TeacherConfig

if TYPE_CHECKING:
    from train.job import JobResult

__all__ = ["Holdout", "choose_variant", "partition", "write_deployable"]


@dataclass(frozen=True)
class Holdout:
    """Which windows the deployable student trains on, and which it never sees."""

    train_mask: np.ndarray  # (N,) bool
    held_mask: np.ndarray  # (N,) bool
    train_subjects: list[str]
    hold_subjects: list[str]  # subject ids, or a description ("split=test")


def partition(data: LoadedData, cfg: RunConfig) -> Holdout:
    """The deployable student's training and held-out windows."""
    subjects = sorted(np.unique(data.groups).tolist(), key=subject_key)
    if data.has_groups:
        hold = list(cfg.data.holdout_subjects) or [subjects[-1]]
        unknown = [s for s in hold if s not in subjects]
        if unknown:
            raise ConfigError(f"no such subjects {unknown}; have {subjects}",
                              key="data.holdout_subjects")  # fmt: skip
        held = np.isin(data.groups, hold)
        if held.all():
            raise ConfigError("holding out every subject leaves nothing to train on",
                              key="data.holdout_subjects")  # fmt: skip
        return Holdout(~held, held, [s for s in subjects if s not in hold], hold)
    if data.split is not None:
        held = data.split == "test"
        return Holdout(~held, held, subjects, ["split=test"])
    # no subjects and no split: hold out the last 10 % in time
    held = data.start >= np.quantile(data.start, 0.9)
    return Holdout(~held, held, subjects, ["last 10% in time"])


def choose_variant(cfg: RunConfig, variants: Sequence[Variant], models: Mapping[str, Any]) -> Variant:
    """The configured student variant, or the best cross-validated one (``"best"``)."""
    if cfg.deploy.variant != "best":
        return parse_variant(cfg.deploy.variant)
    by_name = {f"student_{v.name}": v for v in variants}
    return by_name[max(by_name, key=lambda n: f1_of(models[n]))]


def write_deployable(
    data: LoadedData,
    cfg: RunConfig,
    layout: RunLayout,
    result: JobResult,
    mixture: Sequence[TeacherSpec],
    student_mods: Sequence[str],
    variant: Variant,
    models: Mapping[str, Any],
    holdout: Holdout,
    notes: list[str],
) -> dict[str, Any]:
    """Write student.pt, teachers/*.pt, windows/*.npz and the demo recording; the student's summary."""
    contract = result.contract  # the deploy job's (global normalization stats for arrays)
    train_all = np.flatnonzero(holdout.train_mask)
    held = np.flatnonzero(holdout.held_mask)
    if contract.normalization.kind == "global":
        X, _ = job_inputs(data.X, data.contract, data.y, data.groups, data.start, train_all)
    else:
        X = data.X
    common = {
        "train_subjects": holdout.train_subjects,
        "holdout_subjects": holdout.hold_subjects,
        "dataset": dataset_info(data.kind, data.path),
    }
    probe = held[: min(len(held), 8)] if len(held) else train_all[:8]
    teacher_overrides = {k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
    layout.teachers_dir.mkdir(exist_ok=True)
    for spec in mixture:
        # model_args from the teacher's own contract, so its offsets index its own vector
        tcontract = contract.subset(spec.modalities)
        args = TeacherConfig.from_contract(
            tcontract, fusion=spec.fusion, **teacher_overrides
        ).to_dict()
        full = FusionTeacher(
            TeacherConfig.from_contract(
                contract, spec.modalities, fusion=spec.fusion, **teacher_overrides
            )
        )
        full.load_state_dict(result.states[spec.name])
        rebuilt = FusionTeacher(TeacherConfig(**args))
        rebuilt.load_state_dict(result.states[spec.name])
        _same_answers(full, X, rebuilt, X[:, packed_columns(contract, spec.modalities)], probe)
        ck = make_checkpoint(result.states[spec.name], args, tcontract,
                             {**common, "metrics": brief(models[spec.name])})  # fmt: skip
        torch.save(ck, layout.teacher_checkpoint(spec.name))

    name = f"student_{variant.name}"
    wrist = contract.subset(student_mods)
    cols = packed_columns(contract, student_mods)
    args = StudentConfig.from_contract(wrist, **cfg.student.model).to_dict()
    full_student = Student(StudentConfig.from_contract(contract, student_mods, **cfg.student.model))
    full_student.load_state_dict(result.states[name])
    student = Student(StudentConfig(**args))
    student.load_state_dict(result.states[name])
    student.eval()
    Xw = np.ascontiguousarray(X[:, cols])  # (N, L_wrist): what the hub packs
    _same_answers(full_student, X, student, Xw, probe)
    ck = make_checkpoint(
        result.states[name], args, wrist,
        {**common, "variant": variant.name, "metrics": brief(models[name])},
    )  # fmt: skip
    torch.save(ck, layout.student_checkpoint)

    layout.windows_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed_for(cfg.seed, "calib"))
    n_cal = min(cfg.deploy.calib_windows, len(train_all))
    cal = np.sort(rng.choice(train_all, size=n_cal, replace=False))
    np.savez(layout.calib_windows, X=Xw[cal], y=data.y[cal])
    np.savez(
        layout.heldout_windows,
        X=Xw[held],
        y=data.y[held],
        start=data.start[held],
        subject=data.groups[held].astype(str),
    )
    demo = None
    if data.kind == "wesad" and data.has_groups:
        demo = _write_demo(data.path, holdout.hold_subjects[0], layout.demo_recording, notes,
                           rr_source=data.info.get("rr_source"))

    params = count_params(student)
    macs = count_macs(student, wrist.input_length)
    note = budget_note(params, macs)
    if note is not None:
        notes.append(note)
    held_logits, _ = predict(student, Xw, held)
    held_metrics = (
        evaluate(data.y[held], softmax(held_logits), data.class_names) if len(held) else {}
    )
    # a class the student never gets right on people it never saw (F1 0 with support) is a
    # dead class: the export and the hub should hear of it, not find out in a care home
    dead = [c for c, v in held_metrics.get("per_class", {}).items()
            if v.get("support", 0) > 0 and v.get("f1", 0.0) == 0.0]  # fmt: skip
    if dead:
        notes.append(f"the deployable student never predicts {dead} correctly on its held-out "
                     "windows (per-class F1 0)")  # fmt: skip
    return {
        "variant": variant.name,
        "params": params,
        "macs": macs,
        "param_budget": STUDENT_PARAM_BUDGET,
        "mac_budget": STUDENT_MAC_BUDGET,
        "modalities": list(student_mods),
        "input_length": wrist.input_length,
        "model_args": args,
        "train_subjects": holdout.train_subjects,
        "holdout_subjects": holdout.hold_subjects,
        "n_train_windows": result.n_train,
        "n_heldout_windows": len(held),
        "n_calib_windows": n_cal,
        "heldout": {k: held_metrics[k] for k in FOLD_KEYS} if held_metrics else {},
        "heldout_dead_classes": dead,
        "teachers": [s.name for s in mixture],
        "demo_recording": demo,
        **_importance(student, Xw[held], data.y[held], data.class_names),
    }


def _same_answers(
    a: nn.Module, Xa: np.ndarray, b: nn.Module, Xb: np.ndarray, idx: np.ndarray
) -> None:
    """A checkpoint rebuilt from its own contract must answer as the trained model did."""
    la, _ = predict(a, Xa, idx)
    lb, _ = predict(b, Xb, idx)
    if not np.allclose(la, lb, rtol=1e-4, atol=1e-5):
        raise TrainError(
            f"a model rebuilt from its checkpoint contract disagrees with the trained one "
            f"(max |Δlogit| {np.abs(la - lb).max():.2e})"
        )


@torch.no_grad()
def _importance(
    model: Student, X: np.ndarray, y: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Modality-importance shares (overall and per true class) and the mean patch map."""
    if len(X) == 0:
        return {"modality_importance": {}, "patch_importance": {}}
    mods = list(model.config.modalities)
    patches: dict[str, list[torch.Tensor]] = {m: [] for m in mods}
    shares: dict[str, list[torch.Tensor]] = {m: [] for m in mods}
    for i in range(0, len(X), EVAL_BATCH):
        xb = torch.from_numpy(np.ascontiguousarray(X[i : i + EVAL_BATCH]))
        pi, mi = patch_importance(model, xb), modality_importance(model, xb)
        for m in mods:
            patches[m].append(pi[m])
            shares[m].append(mi[m])
    patch = {m: torch.cat(v).numpy() for m, v in patches.items()}  # name -> (n, P_m)
    # name -> (n,): its patches and its window-level token if any; sums to 1 over modalities
    share = {m: torch.cat(v).numpy() for m, v in shares.items()}
    by_class = {
        c: {m: float(share[m][y == k].mean()) for m in mods}
        for k, c in enumerate(class_names)
        if (y == k).any()
    }
    return {
        "modality_importance": {"all": {m: float(share[m].mean()) for m in mods}, **by_class},
        "patch_importance": {m: patch[m].mean(axis=0).tolist() for m in mods},
        "patch_s": model.config.patch_s,
    }


def _write_demo(root: Path, subject: str, path: Path, notes: list[str],
                rr_source: str | None = None) -> str | None:
    """The held-out subject's wrist recording, for the simulator and the demo bundle; with
    ``rr_source`` (a heart-rate model) also its beats, which a simulated strap plays."""
    from train import synth

    src = root / subject / f"{subject}.pkl"
    if not src.is_file():
        notes.append(f"demo recording skipped: no {src}")
        return None
    synth.write_demo_recording(src, path)
    if rr_source:
        from core.recording import load_recording, load_wesad_subject, save_recording
        from train.hr_data import subject_beats

        rec = load_recording(path)
        beats = subject_beats(load_wesad_subject(src), src, rr_source)
        save_recording(replace(rec, beats={"rr": beats},
                               meta={**rec.meta, "rr_source": f"{rr_source} peaks (neurokit2)"}),
                       path, dtype="float16")
    return path.name
