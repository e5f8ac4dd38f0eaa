"""Training loops and the ``edge-train fit`` orchestration.

One run, in order:

1. Load windows (WESAD directory, one subject per worker process, or an arrays ``.npz``) and
   pack every modality once into ``X (N, L)`` under the full contract; each model slices
   out its own modalities (``train.models``).
2. Cross-validate (LOSO by default). A fold is one *job*: train every teacher once (one per
   modality group, the fusion teacher, the fusion-mode ablation), cache the mixture
   teachers' training-set logits (and hint features), then train each student variant
   against that cache and score everything on the fold's test windows. Statistics fitted on
   data (global normalization for arrays) use the job's training windows only. Jobs run in
   ``cfg.workers`` processes with ``cfg.threads`` threads each; every job is seeded by its
   own name, so the numbers do not depend on how many run at once.
3. Score every model on the pooled test windows and per fold (``train.metrics``).
4. The deployable student is trained on every subject but the held-out one(s). Under LOSO
   with one held-out subject that is exactly that subject's fold (same training windows,
   same seed), so the fold's models are kept instead of training them twice. Then the
   ``RUN/`` layout that ``train/checkpoint.py`` documents, and ``report.md``.

Class imbalance (baseline is about half of WESAD's labelled time): every loop draws
class-balanced batches, so plain, distillation and auxiliary losses are all balanced
without per-loss weights.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import re
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from torch import nn

from edge.contract import InputContract
from train.config import ConfigError, RunConfig, Variant, dump_toml, parse_variant
from train.cv import make_folds, subject_key
from train.errors import TrainError
from train.losses import HintProjector, distillation_loss, hint_loss
from train.macs import count_macs, count_params
from train.metrics import evaluate, json_safe
from train.models import FusionTeacher, Student, StudentConfig, TeacherConfig, packed_columns
from train.ulgm import AuxHeads, UnimodalLabelGenerator

__all__ = [
    "FitResult",
    "LoadedData",
    "TeacherSpec",
    "fit",
    "load_data",
    "teacher_specs",
    "train_classifier",
]

log = logging.getLogger(__name__)

STUDENT_PARAM_BUDGET: Final = 100_000  # issue 2: the student fits a Pi-class hub's cache
STUDENT_MAC_BUDGET: Final = 10_000_000  # issue 2: ≤ 10M MACs per window
ACCEPT_F1_GAP: Final = 0.03  # issue 2: distilled student within 0.03 macro-F1 of best wrist teacher
EVAL_BATCH: Final = 512  # inference batch: amortises per-call overhead, small in memory
GRAD_CLIP: Final = 1.0  # keeps the first high-LR steps after warm-up stable
WARMUP_FRACTION: Final = 0.1  # of all steps; Transformers diverge without a short warm-up
FOLD_KEYS: Final = ("n", "accuracy", "macro_f1", "auc", "ece")  # what each per-fold entry keeps
# BLAS/OpenMP pools read these when a process starts; a spawned worker gets `threads`
THREAD_ENV: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# -- data ----------------------------------------------------------------------------------
@dataclass
class LoadedData:
    """Everything training needs, in memory: windows packed under the full contract."""

    X: np.ndarray  # (N, L) float32, every modality of `contract`
    y: np.ndarray  # (N,) int64 class index
    groups: np.ndarray  # (N,) str subject id ("all" when the data has none)
    start: np.ndarray  # (N,) float64 window start in its recording (or index order)
    split: np.ndarray | None  # (N,) "train"/"test" when the data carries a fixed split
    contract: InputContract  # of X's columns
    class_names: tuple[str, ...]
    kind: str  # "wesad" | "arrays"
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    has_groups: bool = True  # False: arrays without 'groups' (one pseudo-subject "all")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables for processes spawned inside the block."""
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(threads) for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pool(workers: int, threads: int, **kw: Any) -> cf.ProcessPoolExecutor:
    # spawn, not fork: a forked child of a process whose OpenMP pool has run can deadlock
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), **kw)


def _load_one_subject(root: str, task: str, window_s: float, hop_s: float) -> Any:
    from train import data as tdata

    torch.set_num_threads(1)
    return tdata.load_wesad(root, task, window_s=window_s, hop_s=hop_s, progress=False)


def _load_wesad(path: Path, cfg: RunConfig, progress: bool) -> Any:
    """``train.data.load_wesad``, one subject per worker process when ``cfg.workers > 1``.

    Subjects are windowed independently (each has its own calibration), so the merged
    result equals the sequential one. On any error the sequential loader runs again, so the
    message names the real file rather than a temporary link."""
    from train import data as tdata

    files = sorted(
        (f for f in path.glob("S*/S*.pkl") if re.fullmatch(r"S\d+", f.parent.name)),
        key=lambda f: int(f.parent.name[1:]),
    )
    args = (cfg.data.task, cfg.data.window_s, cfg.data.hop_s)
    subject_dirs = [d for d in path.glob("S*") if d.is_dir() and re.fullmatch(r"S\d+", d.name)]
    # anything unusual (no files, a subject directory without its pickle): the sequential
    # loader raises the error that names it
    if cfg.workers <= 1 or len(files) < 2 or len(files) != len(subject_dirs):
        return tdata.load_wesad(path, *args[:1], window_s=args[1], hop_s=args[2], progress=progress)
    with tempfile.TemporaryDirectory(prefix="edge-train-") as tmp:
        roots = []
        for i, f in enumerate(files):
            d = Path(tmp) / str(i) / f.parent.name
            d.mkdir(parents=True)
            (d / f.name).symlink_to(f.resolve())
            roots.append(str(d.parent))
        try:
            with _thread_env(cfg.threads), _pool(min(cfg.workers, len(files)), cfg.threads) as ex:
                parts = list(ex.map(_load_one_subject, roots, *[[a] * len(roots) for a in args]))
        except (TrainError, OSError, ValueError) as e:
            log.debug("parallel load failed (%s); loading sequentially for the error", e)
            return tdata.load_wesad(path, args[0], window_s=args[1], hop_s=args[2], progress=False)
    return _merge_datasets(parts, str(path))


def _merge_datasets(parts: Sequence[Any], root: str) -> Any:
    from train import data as tdata

    first = parts[0]
    invalid: Counter[str] = Counter()
    per_subject: dict[str, int] = {}
    mixed = 0
    for p in parts:
        invalid.update(p.info.get("invalid", {}))
        per_subject.update(p.info.get("per_subject", {}))
        mixed += int(p.info.get("mixed_label", 0))
    info = {
        **first.info,
        "root": root,
        "invalid": dict(invalid),
        "mixed_label": mixed,
        "per_subject": per_subject,
        "load_seconds": round(sum(p.info.get("load_seconds", 0.0) for p in parts), 2),
    }
    ds = tdata.WindowedDataset(
        modalities={n: np.concatenate([p.modalities[n] for p in parts]) for n in first.modalities},
        contract=first.contract,
        y=np.concatenate([p.y for p in parts]),
        groups=np.concatenate([p.groups for p in parts]),
        start=np.concatenate([p.start for p in parts]),
        split=None,
        class_names=first.class_names,
        info=info,
    )
    ds.info["class_counts"] = ds.class_counts()
    return ds


def load_data(kind: str, path: Path, cfg: RunConfig, *, progress: bool = False) -> LoadedData:
    """Read the windows with ``train.data`` and pack every modality once."""
    from train import data as tdata

    if kind == "wesad":
        ds = _load_wesad(Path(path), cfg, progress)
    elif kind == "arrays":
        ds = tdata.load_arrays(path)
    else:
        raise TrainError(f"unknown dataset kind {kind!r}; expected wesad or arrays")
    names = list(ds.modality_names)
    contract = ds.contract_for(names)
    X = ds.pack(names)
    groups = np.asarray(ds.groups).astype(str)
    return LoadedData(
        X=X,
        y=np.asarray(ds.y, np.int64),
        groups=groups,
        start=np.asarray(ds.start, np.float64),
        split=None if ds.split is None else np.asarray(ds.split).astype(str),
        contract=contract,
        class_names=tuple(ds.class_names),
        kind=kind,
        path=Path(path),
        info=dict(ds.info),
        # arrays without 'groups' get the single id "all": no subjects to leave out
        has_groups=len(np.unique(groups)) > 1,
    )


def _job_inputs(
    X: np.ndarray,
    contract: InputContract,
    y: np.ndarray,
    groups: np.ndarray,
    start: np.ndarray,
    train_idx: np.ndarray,
) -> tuple[np.ndarray, InputContract]:
    """``X`` and contract for one job. Global normalization (arrays) is fitted on the
    job's training windows only, through ``train.data.fit_global_normalization`` (the same
    transform the hub applies); subject-baseline normalization happened at windowing time."""
    if contract.normalization.kind != "global":
        return X, contract
    from train import data as tdata

    ds = tdata.WindowedDataset(
        modalities={k: np.asarray(v) for k, v in contract.unpack(X).items()},
        contract=contract,
        y=y,
        groups=groups,
        start=start,
    )
    mask = np.zeros(len(y), bool)
    mask[train_idx] = True
    normed = tdata.fit_global_normalization(ds, mask)
    names = list(contract.modality_names)
    return normed.pack(names), normed.contract_for(names)


# -- teachers -------------------------------------------------------------------------------
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


# -- training loop -------------------------------------------------------------------------
def _seed_for(*parts: object) -> int:
    """A stable 31-bit seed per (run seed, job, model): independent of training order."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def _balanced_batches(
    y: np.ndarray, n_classes: int, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """One epoch of class-balanced batches (positions into ``y``), drawn with replacement.

    Every class present is drawn equally often in expectation; an epoch has ``len(y)``
    draws so epoch counts mean what they do with plain shuffling. A trailing batch smaller
    than 2 is dropped (BatchNorm needs two samples)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = 1.0 / counts[y]
    draws = rng.choice(len(y), size=len(y), replace=True, p=w / w.sum())
    for i in range(0, len(draws), batch_size):
        b = draws[i : i + batch_size]
        if len(b) >= 2:
            yield b


def _lr_lambda(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 0 (as a multiplier of the base LR)."""
    warm = max(1, int(total_steps * WARMUP_FRACTION))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


class _Bars:
    """rich progress for jobs and epochs; ``disable`` when not a TTY or in tests."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not enabled,
        )
        self.model_task: TaskID | None = None

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def task(self, description: str, total: int) -> TaskID:
        return self.progress.add_task(description, total=total)

    def model(self, description: str, epochs: int) -> None:
        if self.model_task is None:
            self.model_task = self.progress.add_task(description, total=epochs)
        else:
            self.progress.reset(self.model_task, total=epochs, description=description)

    def epoch(self) -> None:
        if self.model_task is not None:
            self.progress.advance(self.model_task)


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]


def train_classifier(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    *,
    n_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    loss_fn: LossFn | None = None,
    extra: Sequence[nn.Module] = (),
    on_epoch: Callable[[int], None] | None = None,
    bars: _Bars | None = None,
) -> nn.Module:
    """AdamW + warm-up/cosine on class-balanced batches of ``X[idx]`` (``X`` may be a memmap).

    ``loss_fn(model, xb, yb, pos)`` gets the batch and its positions into ``idx`` (to look
    up cached teacher outputs); default plain cross-entropy. ``extra`` modules (hint
    projector, auxiliary heads) are optimised with the model. ``on_epoch(e)`` runs before
    epoch ``e``. Returns the model in eval mode.
    """
    rng = np.random.default_rng(seed)
    params = [p for m in (model, *extra) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(idx) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(epochs * steps_per_epoch))
    y_idx = y[idx]
    yt = torch.from_numpy(y_idx)
    for e in range(epochs):
        if on_epoch is not None:
            on_epoch(e)
        for m in (model, *extra):
            m.train()
        for pos in _balanced_batches(y_idx, n_classes, batch_size, rng):
            xb = torch.from_numpy(np.ascontiguousarray(X[idx[pos]], dtype=np.float32))  # (B, L)
            yb = yt[torch.from_numpy(pos)]
            loss = (
                F.cross_entropy(model(xb), yb) if loss_fn is None else loss_fn(model, xb, yb, pos)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            opt.step()
            sched.step()
        if bars is not None:
            bars.epoch()
    model.eval()
    return model


@torch.no_grad()
def _predict(
    model: nn.Module, X: np.ndarray, idx: np.ndarray, *, features: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits ``(n, K)`` (and penultimate features ``(n, D)``) for ``X[idx]``, eval mode."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(idx), EVAL_BATCH):
        xb = torch.from_numpy(np.ascontiguousarray(X[idx[i : i + EVAL_BATCH]], dtype=np.float32))
        if features:
            out = model.forward_features(xb)  # type: ignore[operator]
            logits.append(out.logits)
            feats.append(out.features if hasattr(out, "features") else out.fused)
        else:
            logits.append(model(xb))
    if not logits:
        return np.zeros((0, 0), np.float32), None
    return torch.cat(logits).numpy(), (torch.cat(feats).numpy() if feats else None)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _build_teacher(spec: TeacherSpec, contract: InputContract, cfg: RunConfig) -> FusionTeacher:
    overrides = {k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
    try:
        tc = TeacherConfig.from_contract(contract, spec.modalities, fusion=spec.fusion, **overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), key="teachers.model") from e
    return FusionTeacher(tc)


def _build_student(contract: InputContract, modalities: Sequence[str], cfg: RunConfig) -> Student:
    try:
        sc = StudentConfig.from_contract(contract, modalities, **cfg.student.model)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), key="student.model") from e
    return Student(sc)


@dataclass
class _TeacherCache:
    """Mixture teachers' outputs on one training set, computed once per job."""

    logits: torch.Tensor  # (n_train, n_teachers, K)
    features: torch.Tensor | None  # (n_train, D_t) of the hint teacher
    names: list[str]


# -- one job: a fold (or the deployable models) ---------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """What every job needs besides ``X`` (picklable: it is sent to worker processes)."""

    cfg: RunConfig
    contract: InputContract
    y: np.ndarray
    groups: np.ndarray
    start: np.ndarray
    specs: tuple[TeacherSpec, ...]
    variants: tuple[Variant, ...]
    student_mods: tuple[str, ...]
    hint_teacher: str

    @property
    def n_classes(self) -> int:
        return self.contract.n_classes


@dataclass(frozen=True)
class _Job:
    key: str  # fold name ("S2", "block 1/4", "fixed") or "deploy"; seeds derive from it
    train: np.ndarray  # window indices before thinning
    test: np.ndarray
    keep: bool  # return the trained mixture teachers and students (for deployment)


@dataclass
class _JobResult:
    key: str
    test_logits: dict[str, np.ndarray]  # model -> (n_test, K)
    diag: dict[str, float]
    contract: InputContract  # of the job's X (global normalization stats for arrays)
    n_train: int  # training windows after thinning
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of the process: what the job costs on an idle core
    states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # when keep


def _thin(idx: np.ndarray, groups: np.ndarray, start: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th training window of each subject, in time order."""
    if stride <= 1:
        return idx
    keep = []
    for g in np.unique(groups[idx]):
        sub = idx[groups[idx] == g]
        keep.append(sub[np.argsort(start[sub], kind="mergesort")][::stride])
    return np.sort(np.concatenate(keep))


def _train_teachers(
    plan: _Plan,
    X: np.ndarray,
    contract: InputContract,
    tr: np.ndarray,
    key: str,
    bars: _Bars | None,
) -> tuple[dict[str, FusionTeacher], _TeacherCache]:
    cfg = plan.cfg
    teachers: dict[str, FusionTeacher] = {}
    logits, feats, names = [], None, []
    for spec in plan.specs:
        seed = _seed_for(cfg.seed, key, spec.name)
        torch.manual_seed(seed)
        model = _build_teacher(spec, contract, cfg)
        if bars is not None:
            bars.model(f"{key} {spec.name}", cfg.teachers.epochs)
        train_classifier(
            model, X, plan.y, tr,
            n_classes=plan.n_classes,
            epochs=cfg.teachers.epochs,
            batch_size=cfg.teachers.batch_size,
            lr=cfg.teachers.lr,
            weight_decay=cfg.teachers.weight_decay,
            seed=seed,
            bars=bars,
        )  # fmt: skip
        teachers[spec.name] = model
        if spec.in_mixture:
            lg, ft = _predict(model, X, tr, features=spec.name == plan.hint_teacher)
            logits.append(torch.from_numpy(lg))
            names.append(spec.name)
            if ft is not None:
                feats = torch.from_numpy(ft)
    return teachers, _TeacherCache(torch.stack(logits, dim=1), feats, names)


def _train_student(
    plan: _Plan,
    variant: Variant,
    X: np.ndarray,
    contract: InputContract,
    tr: np.ndarray,
    cache: _TeacherCache,
    key: str,
    bars: _Bars | None,
) -> Student:
    cfg, dc = plan.cfg, plan.cfg.distill
    seed = _seed_for(cfg.seed, key, f"student_{variant.name}")
    torch.manual_seed(seed)
    model = _build_student(contract, plan.student_mods, cfg)
    d = model.config.d_model
    extra: list[nn.Module] = []
    projector: HintProjector | None = None
    aux: AuxHeads | None = None
    ulgm: UnimodalLabelGenerator | None = None
    if variant.hint:
        if cache.features is None:
            raise TrainError("a _hint variant needs a hint teacher with features")
        projector = HintProjector(d, cache.features.shape[1])
        extra.append(projector)
    if variant.ulgm:
        mods = model.config.modalities
        aux = AuxHeads(mods, d, plan.n_classes)
        extra.append(aux)
        ulgm = UnimodalLabelGenerator(
            len(tr), plan.n_classes, mods, [d] * len(mods), momentum=dc.ulgm_momentum, fused_dim=d
        )
    epoch = [0]  # read by loss_fn: Self-MM leaves the unimodal labels alone in epoch 0

    def on_epoch(e: int) -> None:
        epoch[0] = e

    def loss_fn(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor, pos: np.ndarray) -> torch.Tensor:
        out = m.forward_features(xb)  # type: ignore[operator]
        p = torch.from_numpy(pos)
        if variant.weighting is None:
            loss = F.cross_entropy(out.logits, yb)
        else:
            loss, _ = distillation_loss(
                out.logits,
                list(cache.logits[p].unbind(dim=1)),  # n_teachers x (B, K)
                yb,
                alpha=dc.alpha,
                T=dc.temperature,
                weighting=variant.weighting,
            )
        if projector is not None and cache.features is not None:
            loss = loss + dc.hint_weight * hint_loss(out.fused, cache.features[p], projector)
        if aux is not None and ulgm is not None:
            if epoch[0] > 0:
                ulgm.update(out.per_modality, out.fused, p, yb)
            loss = loss + dc.ulgm_weight * ulgm.loss(aux(out.per_modality), p, yb)
        return loss

    if bars is not None:
        bars.model(f"{key} student_{variant.name}", cfg.student.epochs)
    train_classifier(
        model, X, plan.y, tr,
        n_classes=plan.n_classes,
        epochs=cfg.student.epochs,
        batch_size=cfg.student.batch_size,
        lr=cfg.student.lr,
        weight_decay=cfg.student.weight_decay,
        seed=seed,
        loss_fn=loss_fn,
        extra=extra,
        on_epoch=on_epoch,
        bars=bars,
    )  # fmt: skip
    return model


def _run_job(plan: _Plan, X: np.ndarray, job: _Job, bars: _Bars | None = None) -> _JobResult:
    """Train every teacher and student of one job and score them on its test windows."""
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = plan.cfg
    tr = _thin(job.train, plan.groups, plan.start, cfg.data.train_stride)
    Xj, contract = _job_inputs(X, plan.contract, plan.y, plan.groups, plan.start, job.train)
    teachers, cache = _train_teachers(plan, Xj, contract, tr, job.key, bars)
    test_logits = {name: _predict(m, Xj, job.test)[0] for name, m in teachers.items()}
    # the ensemble is the equal-weight mixture the students distil from (at T = 1)
    ens = np.mean([_softmax(test_logits[n]) for n in cache.names], axis=0)
    test_logits["teacher_ensemble"] = np.log(np.clip(ens, 1e-12, None))
    p_train = F.softmax(cache.logits, dim=-1)  # (n, n_teachers, K)
    ytr = torch.from_numpy(plan.y[tr])
    diag = {
        "teacher_train_accuracy": float((p_train.argmax(-1) == ytr[:, None]).float().mean()),
        "teacher_train_confidence": float(p_train.max(-1).values.mean()),
    }
    states: dict[str, dict[str, torch.Tensor]] = {}
    for v in plan.variants:
        student = _train_student(plan, v, Xj, contract, tr, cache, job.key, bars)
        test_logits[f"student_{v.name}"] = _predict(student, Xj, job.test)[0]
        if job.keep:
            states[f"student_{v.name}"] = student.state_dict()
    if job.keep:
        states.update({n: teachers[n].state_dict() for n in cache.names})
    return _JobResult(
        job.key,
        test_logits,
        diag,
        contract,
        len(tr),
        time.perf_counter() - t0,
        time.process_time() - c0,
        states,
    )


_WORKER: dict[str, Any] = {}  # the plan and X of a worker process (set by _init_worker)


def _init_worker(plan: _Plan, x_path: str, threads: int, deterministic: bool) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    _WORKER["plan"] = plan
    _WORKER["X"] = np.load(x_path, mmap_mode="r")  # shared page cache, no copy per worker


def _run_job_in_worker(job: _Job) -> _JobResult:
    return _run_job(_WORKER["plan"], _WORKER["X"], job)


def _run_jobs(
    plan: _Plan, X: np.ndarray, jobs: Sequence[_Job], work_dir: Path, bars: _Bars
) -> dict[str, _JobResult]:
    """Run the jobs inline (one worker) or in a pool of spawned processes."""
    cfg = plan.cfg
    task = bars.task("cross-validation + deployable models", len(jobs))
    results: dict[str, _JobResult] = {}

    def done(r: _JobResult) -> None:
        results[r.key] = r
        f1 = {
            n: evaluate(plan.y[_test_of(jobs, r.key)], _softmax(z), plan.contract.class_names)[
                "macro_f1"
            ]
            for n, z in r.test_logits.items()
        }
        log.info(
            "job %s (%.0f s, %.0f s CPU): macro-F1 %s",
            r.key,
            r.seconds,
            r.cpu_seconds,
            " ".join(f"{n}={v:.3f}" for n, v in f1.items()),
        )
        bars.progress.advance(task)

    workers = min(cfg.workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            done(_run_job(plan, X, job, bars))
        return results
    x_path = work_dir / "X.npy"
    np.save(x_path, X)
    try:
        with (
            _thread_env(cfg.threads),
            _pool(
                workers,
                cfg.threads,
                initializer=_init_worker,
                initargs=(plan, str(x_path), cfg.threads, cfg.deterministic),
            ) as ex,
        ):
            futures = [ex.submit(_run_job_in_worker, job) for job in jobs]
            for fut in cf.as_completed(futures):
                done(fut.result())
    finally:
        x_path.unlink(missing_ok=True)
    return results


def _test_of(jobs: Sequence[_Job], key: str) -> np.ndarray:
    return next(j.test for j in jobs if j.key == key)


# -- the run -------------------------------------------------------------------------------
@dataclass
class FitResult:
    run_dir: Path
    metrics: dict[str, Any]
    elapsed_s: float

    def summary(self) -> str:
        lines = [f"run written to {self.run_dir} in {self.elapsed_s:.0f} s", ""]
        lines.append(f"{'model':28s} {'macro-F1':>8s} {'acc':>6s} {'AUC':>6s} {'ECE':>6s}")
        for row in self.metrics["ablation"]:
            cells = [row[k] if row[k] is not None else math.nan for k in ("auc", "ece")]
            lines.append(
                f"{row['model']:28s} {row['macro_f1']:8.3f} {row['accuracy']:6.3f} "
                f"{cells[0]:6.3f} {cells[1]:6.3f}"
            )
        verdict = self.metrics.get("acceptance", {}).get("verdict")
        if verdict:
            lines += ["", verdict]
        return "\n".join(lines)


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


def fit(
    dataset_kind: str,
    data_path: str | Path,
    out_dir: str | Path,
    cfg: RunConfig,
    *,
    progress: bool = False,
) -> FitResult:
    """Cross-validate, keep the deployable student, write the run directory."""
    t_start = time.perf_counter()
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
    dump_toml(cfg, run / "config.toml")
    undo = _setup_torch(cfg)
    timing: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        data = load_data(dataset_kind, Path(data_path), cfg, progress=progress)
        timing["load_s"] = time.perf_counter() - t0
        with _Bars(progress) as bars, tempfile.TemporaryDirectory(dir=run, prefix=".work-") as work:
            metrics = _run(data, cfg, run, Path(work), bars, timing)
    finally:
        undo()
    timing["total_s"] = time.perf_counter() - t_start
    metrics["timing"] = {k: round(v, 2) for k, v in timing.items()}
    metrics = json_safe(metrics)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    from train.report import write_report

    write_report(run, metrics, plots=cfg.report.plots)
    return FitResult(run, metrics, time.perf_counter() - t_start)


def _run(
    data: LoadedData,
    cfg: RunConfig,
    run: Path,
    work: Path,
    bars: _Bars,
    timing: dict[str, float],
) -> dict[str, Any]:
    notes: list[str] = []
    available = list(data.contract.modality_names)
    student_mods = [m for m in cfg.data.student_modalities if m in available]
    if not student_mods:
        student_mods = available
        notes.append(
            f"none of data.student_modalities {cfg.data.student_modalities} is in the data: "
            f"the student sees every modality ({available})"
        )
    specs, spec_notes = teacher_specs(cfg, available, student_mods)
    notes += spec_notes
    variants = [parse_variant(v) for v in cfg.student.variants]
    mixture = [s for s in specs if s.in_mixture]
    fusion_name = f"teacher_fusion_{cfg.teachers.fusion}"
    hint_teacher = fusion_name if any(s.name == fusion_name for s in mixture) else mixture[0].name
    folds = make_folds(
        cfg.cv.kind,
        groups=data.groups if data.has_groups else None,
        start=data.start,
        split=data.split,
        n_splits=cfg.cv.n_splits,
        scope=cfg.cv.forward_scope,
        window_s=cfg.data.window_s,
        purge=cfg.cv.purge,
        max_folds=cfg.cv.max_folds,
    )
    train_mask, held_mask, train_subjects, hold_subjects = _partition_deploy(data, cfg)
    # the deployable models are a fold's models when that fold has the same training set
    jobs = [_Job(f.name, f.train, f.test, False) for f in folds]
    deploy_key = "deploy"
    for i, f in enumerate(folds):
        if np.array_equal(f.train, np.flatnonzero(train_mask)) and np.array_equal(
            f.test, np.flatnonzero(held_mask)
        ):
            jobs[i] = _Job(f.name, f.train, f.test, True)
            deploy_key = f.name
    if deploy_key == "deploy":
        jobs.append(_Job("deploy", np.flatnonzero(train_mask), np.flatnonzero(held_mask), True))
    plan = _Plan(
        cfg, data.contract, data.y, data.groups, data.start, tuple(specs), tuple(variants),
        tuple(student_mods), hint_teacher,
    )  # fmt: skip
    log.info(
        "%d windows, %d subjects, %d folds (%s) + deployable models (%s); teachers %s; "
        "student on %s; variants %s; %d worker(s)",
        len(data.y), len(np.unique(data.groups)), len(folds), cfg.cv.kind, deploy_key,
        [s.name for s in specs], student_mods, cfg.student.variants, cfg.workers,
    )  # fmt: skip
    t0 = time.perf_counter()
    results = _run_jobs(plan, data.X, jobs, work, bars)
    timing["train_s"] = time.perf_counter() - t0
    timing["job_s_sum"] = sum(r.seconds for r in results.values())
    timing["job_cpu_s_sum"] = sum(r.cpu_seconds for r in results.values())

    model_names = (
        [s.name for s in specs] + ["teacher_ensemble"] + [f"student_{v.name}" for v in variants]
    )
    y_all = np.concatenate([data.y[f.test] for f in folds])
    models: dict[str, Any] = {}
    spec_by_name = {s.name: s for s in specs}
    for name in model_names:
        logits = np.concatenate([results[f.name].test_logits[name] for f in folds])
        m = evaluate(y_all, _softmax(logits), data.class_names)
        per_fold = []
        for f in folds:
            fm = evaluate(
                data.y[f.test], _softmax(results[f.name].test_logits[name]), data.class_names
            )
            per_fold.append({"fold": f.name, **{k: fm[k] for k in FOLD_KEYS}})
        f1s = np.array([p["macro_f1"] for p in per_fold], np.float64)
        m["folds"] = per_fold
        m["macro_f1_fold_mean"] = float(np.nanmean(f1s))
        m["macro_f1_fold_std"] = float(np.nanstd(f1s))
        if name in spec_by_name:
            s = spec_by_name[name]
            m.update(role="teacher", modalities=list(s.modalities), fusion=s.fusion,
                     in_mixture=s.in_mixture, wrist_only=s.wrist_only)  # fmt: skip
        elif name == "teacher_ensemble":
            m.update(role="ensemble", modalities=sorted({x for s in mixture for x in s.modalities}),
                     members=[s.name for s in mixture],
                     wrist_only=all(s.wrist_only for s in mixture))  # fmt: skip
        else:
            m.update(role="student", modalities=list(student_mods), wrist_only=True)
        models[name] = m

    # -- deployable student ---------------------------------------------------------------
    t0 = time.perf_counter()
    by_name = {f"student_{v.name}": v for v in variants}
    if cfg.deploy.variant == "best":
        deploy_variant = by_name[max(by_name, key=lambda n: _f1(models[n]))]
    else:
        deploy_variant = parse_variant(cfg.deploy.variant)
    student_info = _deploy(
        data, cfg, run, results[deploy_key], mixture, student_mods, deploy_variant, models,
        train_mask, held_mask, train_subjects, hold_subjects, notes,
    )  # fmt: skip
    timing["deploy_s"] = time.perf_counter() - t0

    diag = {
        k: [float(results[f.name].diag[k]) for f in folds]
        for k in ("teacher_train_accuracy", "teacher_train_confidence")
    }
    acceptance = _acceptance(models, specs, variants, diag, cfg)
    notes += acceptance.pop("notes")
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
        "dataset": _dataset_info(data),
        "models": models,
        "student": student_info,
        "ablation": _ablation(models, model_names),
        "acceptance": acceptance,
        "diagnostics": diag,
        "notes": notes,
        "seed": cfg.seed,
        "workers": cfg.workers,
    }


def _f1(m: Mapping[str, Any]) -> float:
    v = m.get("macro_f1")
    return -1.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _ablation(models: Mapping[str, Any], order: Sequence[str]) -> list[dict[str, Any]]:
    alone = models.get("student_alone")
    keys = ("role", "modalities", "wrist_only", "macro_f1", "macro_f1_fold_mean",
            "macro_f1_fold_std", "accuracy", "auc", "ece")  # fmt: skip
    return [
        {
            "model": name,
            **{k: models[name][k] for k in keys},
            "delta_vs_student_alone": (
                None if alone is None else models[name]["macro_f1"] - alone["macro_f1"]
            ),
        }
        for name in order
    ]


def _acceptance(
    models: Mapping[str, Any],
    specs: Sequence[TeacherSpec],
    variants: Sequence[Variant],
    diag: Mapping[str, Sequence[float]],
    cfg: RunConfig,
) -> dict[str, Any]:
    """Issue 2's "what must hold", checked on this run's numbers (with reasons if not)."""
    notes: list[str] = []
    out: dict[str, Any] = {"notes": notes}
    wrist_teachers = [
        s.name for s in specs if s.wrist_only and not s.name.startswith("teacher_fusion")
    ]
    kd = [f"student_{v.name}" for v in variants if v.weighting is not None]
    if not wrist_teachers or not kd or "student_alone" not in models:
        out["verdict"] = (
            "acceptance not checked: it needs a wrist-only teacher, student_alone and a "
            "distilled variant"
        )
        return out
    best_t = max(wrist_teachers, key=lambda n: _f1(models[n]))
    best_s = max(kd, key=lambda n: _f1(models[n]))
    ft, fs, fa = _f1(models[best_t]), _f1(models[best_s]), _f1(models["student_alone"])
    within, beats = fs >= ft - ACCEPT_F1_GAP, fs > fa
    out.update(
        best_wrist_teacher=best_t,
        best_wrist_teacher_f1=ft,
        best_distilled_student=best_s,
        best_distilled_student_f1=fs,
        student_alone_f1=fa,
        gap_to_teacher=fs - ft,
        gain_over_alone=fs - fa,
        within_gap=within,
        beats_alone=beats,
        required_gap=ACCEPT_F1_GAP,
    )
    verdict = (
        f"Best distilled student {best_s}: macro-F1 {fs:.3f}; best wrist-only teacher {best_t}: "
        f"{ft:.3f} (difference {fs - ft:+.3f}, required ≥ {-ACCEPT_F1_GAP:.2f}: "
        f"{'met' if within else 'NOT met'}); student alone {fa:.3f} "
        f"({'beaten' if beats else 'NOT beaten'}, {fs - fa:+.3f})."
    )
    if not (within and beats):
        acc = float(np.mean(diag["teacher_train_accuracy"]))
        conf = float(np.mean(diag["teacher_train_confidence"]))
        gap_alone, kd_gain = fa - ft, fs - fa
        cause = (
            "most of the gap is the compact student reading these signals less well than a "
            "CNN teacher"
            if abs(gap_alone) >= abs(kd_gain)
            else "most of the gap is what distillation does to it"
        )
        why = (
            f"Why not: the student trained alone is {gap_alone:+.3f} from {best_t} and "
            f"distillation moves it by {kd_gain:+.3f}, so {cause}. The mixture teachers "
            f"reach {acc:.3f} accuracy on their own training windows with mean top-class "
            f"probability {conf:.3f}, so their soft targets carry little beyond the labels; "
            f"the teacher ensemble scores {_f1(models.get('teacher_ensemble', {})):.3f} on "
            f"held-out subjects. {_fold_spread(models, (best_s, 'student_alone', best_t))} "
            f"Settings: {cfg.student.epochs} student epochs, "
            f"alpha={cfg.distill.alpha}, T={cfg.distill.temperature}, 1 in "
            f"{cfg.data.train_stride} training windows."
        )
        verdict += " " + why
        notes.append(why)
    out["verdict"] = verdict
    return out


def _fold_spread(models: Mapping[str, Any], names: Sequence[str]) -> str:
    """How much the per-fold macro-F1 of ``names`` varies: the noise the gaps stand in."""
    parts = []
    for n in names:
        f1s = [f["macro_f1"] for f in models[n].get("folds", []) if f.get("macro_f1") is not None]
        if len(f1s) >= 2:
            parts.append(f"{n} {float(np.std(f1s, ddof=1)):.3f}")
    if not parts:
        return ""
    k = max(len(models[n].get("folds", [])) for n in names)
    return (
        f"Per-fold macro-F1 standard deviation over {k} folds: {', '.join(parts)}; one seed's "
        "differences of a few hundredths are within that noise."
    )


# -- deployment ----------------------------------------------------------------------------
def _partition_deploy(
    data: LoadedData, cfg: RunConfig
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(train mask, held-out mask, train subjects, held-out subjects) of the deployable student."""
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
        return ~held, held, [s for s in subjects if s not in hold], hold
    if data.split is not None:
        held = data.split == "test"
        return ~held, held, subjects, ["split=test"]
    # no subjects and no split: hold out the last 10 % in time
    held = data.start >= np.quantile(data.start, 0.9)
    return ~held, held, subjects, ["last 10% in time"]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _dataset_info(data: LoadedData) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": data.kind, "path": str(data.path)}
    if data.path.is_file():
        h = hashlib.sha256()
        with data.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        d["sha256"] = h.hexdigest()
    return d


def _brief(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("accuracy", "macro_f1", "auc", "ece", "macro_f1_fold_mean")}


def _checkpoint(
    state: Mapping[str, torch.Tensor],
    model_args: dict[str, Any],
    contract: InputContract,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "model_args": model_args,
        "contract": contract.to_dict(),
        "state_dict": dict(state),
        **extra,
        "git_commit": _git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _deploy(
    data: LoadedData,
    cfg: RunConfig,
    run: Path,
    result: _JobResult,
    mixture: Sequence[TeacherSpec],
    student_mods: Sequence[str],
    variant: Variant,
    models: Mapping[str, Any],
    train_mask: np.ndarray,
    held_mask: np.ndarray,
    train_subjects: list[str],
    hold_subjects: list[str],
    notes: list[str],
) -> dict[str, Any]:
    """Write student.pt, teachers/*.pt, windows/*.npz and the demo recording."""
    contract = result.contract  # the deploy job's (global normalization stats for arrays)
    train_all = np.flatnonzero(train_mask)
    held = np.flatnonzero(held_mask)
    if contract.normalization.kind == "global":
        X, _ = _job_inputs(data.X, data.contract, data.y, data.groups, data.start, train_all)
    else:
        X = data.X
    common = {
        "train_subjects": train_subjects,
        "holdout_subjects": hold_subjects,
        "dataset": _dataset_info(data),
    }
    probe = held[: min(len(held), 8)] if len(held) else train_all[:8]
    teacher_overrides = {k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
    (run / "teachers").mkdir(exist_ok=True)
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
        ck = _checkpoint(result.states[spec.name], args, tcontract,
                         {**common, "metrics": _brief(models[spec.name])})  # fmt: skip
        torch.save(ck, run / "teachers" / f"{spec.name}.pt")

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
    ck = _checkpoint(
        result.states[name], args, wrist,
        {**common, "variant": variant.name, "metrics": _brief(models[name])},
    )  # fmt: skip
    torch.save(ck, run / "student.pt")

    (run / "windows").mkdir(exist_ok=True)
    rng = np.random.default_rng(_seed_for(cfg.seed, "calib"))
    n_cal = min(cfg.deploy.calib_windows, len(train_all))
    cal = np.sort(rng.choice(train_all, size=n_cal, replace=False))
    np.savez(run / "windows" / "calib.npz", X=Xw[cal], y=data.y[cal])
    np.savez(
        run / "windows" / "heldout.npz",
        X=Xw[held],
        y=data.y[held],
        start=data.start[held],
        subject=data.groups[held].astype(str),
    )
    demo = None
    if data.kind == "wesad" and data.has_groups:
        demo = _write_demo(data.path, hold_subjects[0], run / "demo_recording.npz", notes)

    params = count_params(student)
    macs = count_macs(student, wrist.input_length)
    if params > STUDENT_PARAM_BUDGET or macs > STUDENT_MAC_BUDGET:
        notes.append(
            f"the student exceeds its budget: {params} parameters (≤ {STUDENT_PARAM_BUDGET}), "
            f"{macs} MACs (≤ {STUDENT_MAC_BUDGET})"
        )
    held_logits, _ = _predict(student, Xw, held)
    held_metrics = (
        evaluate(data.y[held], _softmax(held_logits), data.class_names) if len(held) else {}
    )
    return {
        "variant": variant.name,
        "params": params,
        "macs": macs,
        "param_budget": STUDENT_PARAM_BUDGET,
        "mac_budget": STUDENT_MAC_BUDGET,
        "modalities": list(student_mods),
        "input_length": wrist.input_length,
        "model_args": args,
        "train_subjects": train_subjects,
        "holdout_subjects": hold_subjects,
        "n_train_windows": result.n_train,
        "n_heldout_windows": len(held),
        "n_calib_windows": n_cal,
        "heldout": {k: held_metrics[k] for k in FOLD_KEYS} if held_metrics else {},
        "teachers": [s.name for s in mixture],
        "demo_recording": demo,
        **_importance(student, Xw[held], data.y[held], data.class_names),
    }


def _same_answers(
    a: nn.Module, Xa: np.ndarray, b: nn.Module, Xb: np.ndarray, idx: np.ndarray
) -> None:
    """A checkpoint rebuilt from its own contract must answer as the trained model did."""
    la, _ = _predict(a, Xa, idx)
    lb, _ = _predict(b, Xb, idx)
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
        pi, mi = model.patch_importance(xb), model.modality_importance(xb)
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


def _write_demo(root: Path, subject: str, path: Path, notes: list[str]) -> str | None:
    """The held-out subject's wrist recording, for the simulator and the demo bundle."""
    from train import synth

    src = root / subject / f"{subject}.pkl"
    if not src.is_file():
        notes.append(f"demo recording skipped: no {src}")
        return None
    synth.write_demo_recording(src, path)
    return path.name
