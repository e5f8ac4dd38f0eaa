"""Training loops and the ``edge-train fit`` orchestration.

One run, in order:

1. Load windows (WESAD directory or arrays ``.npz``) and pack every modality once into
   ``X (N, L)`` under the full contract; each model slices out its own modalities.
2. Cross-validate (LOSO by default). Per fold: train every teacher once (one per modality
   group, the fusion teacher, the fusion-mode ablation), cache the mixture teachers'
   training-set logits (and hint features), then train each student variant against that
   cache. Statistics fitted on data (global normalization for arrays) use training windows
   of the fold only.
3. Score every model on the pooled test windows and per fold (``train.metrics``).
4. Train the deployable student on every subject but the held-out one(s) and write the
   ``RUN/`` layout that ``train/checkpoint.py`` documents; then ``report.md``.

Class imbalance (baseline is about half of WESAD's labelled time): every loop draws
class-balanced batches, so plain, distillation and auxiliary losses are all balanced
without per-loss weights.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import subprocess
import time
import zlib
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
from train.config import RunConfig, Variant, dump_toml, parse_variant
from train.cv import Fold, make_folds
from train.errors import TrainError
from train.losses import HintProjector, distillation_loss, hint_loss
from train.macs import count_macs, count_params
from train.metrics import evaluate, json_safe
from train.models import (
    FusionTeacher,
    Student,
    StudentConfig,
    TeacherConfig,
    packed_columns,
)
from train.ulgm import AuxHeads, UnimodalLabelGenerator

__all__ = ["FitResult", "LoadedData", "TeacherSpec", "fit", "load_data", "train_classifier"]

log = logging.getLogger(__name__)

STUDENT_PARAM_BUDGET: Final = 100_000  # issue 2: the student fits a Pi-class hub's cache
STUDENT_MAC_BUDGET: Final = 10_000_000  # issue 2: ≤ 10M MACs per window
ACCEPT_F1_GAP: Final = 0.03  # issue 2: distilled student within 0.03 macro-F1 of the best wrist teacher
EVAL_BATCH: Final = 512  # inference batch: large enough to amortise overhead, small in memory
GRAD_CLIP: Final = 1.0  # keeps the first high-LR steps of the one-cycle schedule stable
WARMUP_FRACTION: Final = 0.1  # of all steps; Transformers diverge without a short warm-up
FOLD_KEYS: Final = ("n", "accuracy", "macro_f1", "auc", "ece")  # what each per-fold entry keeps


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
    has_groups: bool = True
    dataset: Any = None  # the WindowedDataset (for arrays' per-fold normalization)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def load_data(kind: str, path: Path, cfg: RunConfig, *, progress: bool = False) -> LoadedData:
    """Read the windows with ``train.data`` and pack every modality once."""
    from train import data as tdata

    if kind == "wesad":
        ds = tdata.load_wesad(
            path,
            cfg.data.task,
            window_s=cfg.data.window_s,
            hop_s=cfg.data.hop_s,
            progress=progress,
        )
    elif kind == "arrays":
        ds = tdata.load_arrays(path)
    else:
        raise TrainError(f"unknown dataset kind {kind!r}; expected wesad or arrays")
    names = list(ds.contract.modality_names)
    contract = ds.contract_for(names)
    X = np.ascontiguousarray(ds.pack(names), dtype=np.float32)
    n = X.shape[0]
    groups = np.asarray(ds.groups).astype(str)
    # arrays without 'groups' get the single id "all": no subjects to leave out
    has_groups = len(np.unique(groups)) > 1
    start = np.asarray(ds.start, np.float64)
    split = ds.split
    return LoadedData(
        X=X,
        y=np.asarray(ds.y, np.int64),
        groups=groups,
        start=start,
        split=None if split is None else np.asarray(split).astype(str),
        contract=contract,
        class_names=tuple(ds.class_names),
        kind=kind,
        path=Path(path),
        info=dict(ds.info),
        has_groups=has_groups,
        dataset=ds,
    )


def _fold_inputs(data: LoadedData, train_idx: np.ndarray) -> tuple[np.ndarray, InputContract]:
    """``X`` and contract for one fold. Global normalization (arrays) is fitted on the
    fold's training windows only; subject-baseline normalization was applied per subject
    at windowing time and needs nothing here."""
    if data.contract.normalization.kind != "global" or data.dataset is None:
        return data.X, data.contract
    from train import data as tdata

    mask = np.zeros(len(data.y), bool)
    mask[train_idx] = True
    normed = tdata.fit_global_normalization(data.dataset, mask)
    names = list(data.contract.modality_names)
    return (
        np.ascontiguousarray(normed.pack(names), dtype=np.float32),
        normed.contract_for(names),
    )


# -- teachers -----------------------------------------------------------------------------
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
    avail = set(available)
    wrist = set(student_modalities)
    wanted = set(cfg.distill.teachers)
    specs: list[TeacherSpec] = []
    for group, mods in cfg.teachers.groups.items():
        missing = [m for m in mods if m not in avail]
        if missing:
            notes.append(f"teacher group {group!r} skipped: data has no {missing}")
            continue
        specs.append(
            TeacherSpec(
                f"teacher_{group}",
                tuple(mods),
                "mid",
                "all" in wanted or group in wanted,
                set(mods) <= wrist,
            )
        )
    if len(available) > 1:
        modes = [cfg.teachers.fusion] + [
            m for m in cfg.teachers.fusion_ablation if m != cfg.teachers.fusion
        ]
        for mode in modes:
            specs.append(
                TeacherSpec(
                    f"teacher_fusion_{mode}",
                    tuple(available),
                    mode,
                    mode == cfg.teachers.fusion and ("all" in wanted or "fusion" in wanted),
                    set(available) <= wrist,
                )
            )
    if not specs:
        specs.append(TeacherSpec("teacher_all", tuple(available), "mid", True, set(available) <= wrist))
        notes.append("no configured teacher group fits the data: one teacher over all modalities")
    if not any(s.in_mixture for s in specs):
        raise TrainError(f"distill.teachers={cfg.distill.teachers} selects no trained teacher")
    return specs, notes


# -- training loop -------------------------------------------------------------------------
def _seed_for(*parts: object) -> int:
    """A stable 31-bit seed per (run seed, fold, model): independent of training order."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def _balanced_batches(
    y: np.ndarray, n_classes: int, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """One epoch of class-balanced batches (positions into ``y``), drawn with replacement.

    Every class is drawn equally often in expectation; the epoch has ``len(y)`` draws so
    epoch counts mean the same as with plain shuffling. Batches smaller than 2 are dropped
    (BatchNorm needs two samples)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.where(present[y], 1.0 / np.maximum(counts[y], 1.0), 0.0)
    w /= w.sum()
    draws = rng.choice(len(y), size=len(y), replace=True, p=w)
    for i in range(0, len(draws) - 1, batch_size):
        b = draws[i : i + batch_size]
        if len(b) >= 2:
            yield b


def _lr_lambda(total_steps: int) -> Callable[[int], float]:
    warm = max(1, int(total_steps * WARMUP_FRACTION))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


class _Bars:
    """rich progress for folds and epochs; a no-op (``disable``) when not a TTY or in tests."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not enabled,
            transient=False,
        )
        self.model_task: TaskID | None = None

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

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
    """AdamW + warm-up/cosine on class-balanced batches of ``X[idx]``.

    ``loss_fn(model, xb, yb, pos)`` gets the batch and its positions into ``idx`` (to look up
    cached teacher outputs); default plain cross-entropy. ``extra`` modules (hint projector,
    auxiliary heads) are optimised with the model. ``on_epoch(e)`` runs before epoch ``e``.
    """
    rng = np.random.default_rng(seed)
    params = [p for m in (model, *extra) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, len(idx) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(epochs * steps_per_epoch))
    y_idx = y[idx]
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y_idx)
    for e in range(epochs):
        if on_epoch is not None:
            on_epoch(e)
        model.train()
        for m in extra:
            m.train()
        for pos in _balanced_batches(y_idx, n_classes, batch_size, rng):
            xb = Xt[torch.from_numpy(idx[pos])]  # (B, L)
            yb = yt[torch.from_numpy(pos)]
            if loss_fn is None:
                loss = F.cross_entropy(model(xb), yb)
            else:
                loss = loss_fn(model, xb, yb, pos)
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
    """Logits ``(n, K)`` (and teacher/student features ``(n, D)``) for ``X[idx]``, eval mode."""
    model.eval()
    Xt = torch.from_numpy(X)
    logits, feats = [], []
    for i in range(0, len(idx), EVAL_BATCH):
        xb = Xt[torch.from_numpy(idx[i : i + EVAL_BATCH])]
        if features:
            out = model.forward_features(xb)  # type: ignore[operator]
            logits.append(out.logits)
            f = out.features if hasattr(out, "features") else out.fused
            feats.append(f)
        else:
            logits.append(model(xb))
    lg = torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32)
    ft = torch.cat(feats).numpy() if feats else None
    return lg, ft


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# -- one fold ------------------------------------------------------------------------------
def _build_teacher(spec: TeacherSpec, contract: InputContract, cfg: RunConfig) -> FusionTeacher:
    overrides = {k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
    try:
        tc = TeacherConfig.from_contract(contract, spec.modalities, fusion=spec.fusion, **overrides)
    except TypeError as e:
        raise TrainError(f"teachers.model: {e}") from e
    return FusionTeacher(tc)


def _build_student(
    contract: InputContract, modalities: Sequence[str], cfg: RunConfig
) -> Student:
    try:
        sc = StudentConfig.from_contract(contract, modalities, **cfg.student.model)
    except TypeError as e:
        raise TrainError(f"student.model: {e}") from e
    return Student(sc)


@dataclass
class _TeacherCache:
    """Mixture teachers' outputs on one training set (logits per teacher, hint features)."""

    logits: torch.Tensor  # (n_train, n_teachers, K)
    features: torch.Tensor | None  # (n_train, D_t) of the hint teacher
    names: list[str]


def _train_teachers(
    specs: Sequence[TeacherSpec],
    X: np.ndarray,
    data: LoadedData,
    contract: InputContract,
    train_idx: np.ndarray,
    cfg: RunConfig,
    fold_key: str,
    bars: _Bars,
    *,
    hint_teacher: str | None,
) -> tuple[dict[str, FusionTeacher], _TeacherCache]:
    teachers: dict[str, FusionTeacher] = {}
    cached_logits, feats, names = [], None, []
    for spec in specs:
        seed = _seed_for(cfg.seed, fold_key, spec.name)
        torch.manual_seed(seed)
        model = _build_teacher(spec, contract, cfg)
        bars.model(f"{fold_key} {spec.name}", cfg.teachers.epochs)
        train_classifier(
            model,
            X,
            data.y,
            train_idx,
            n_classes=data.n_classes,
            epochs=cfg.teachers.epochs,
            batch_size=cfg.teachers.batch_size,
            lr=cfg.teachers.lr,
            weight_decay=cfg.teachers.weight_decay,
            seed=seed,
            bars=bars,
        )
        teachers[spec.name] = model
        if spec.in_mixture:
            lg, ft = _predict(model, X, train_idx, features=spec.name == hint_teacher)
            cached_logits.append(torch.from_numpy(lg))
            names.append(spec.name)
            if ft is not None:
                feats = torch.from_numpy(ft)
    cache = _TeacherCache(torch.stack(cached_logits, dim=1), feats, names)
    return teachers, cache


def _train_student(
    variant: Variant,
    X: np.ndarray,
    data: LoadedData,
    contract: InputContract,
    modalities: Sequence[str],
    train_idx: np.ndarray,
    cache: _TeacherCache,
    cfg: RunConfig,
    fold_key: str,
    bars: _Bars,
    epochs: int,
) -> Student:
    seed = _seed_for(cfg.seed, fold_key, f"student_{variant.name}")
    torch.manual_seed(seed)
    model = _build_student(contract, modalities, cfg)
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
        aux = AuxHeads(mods, d, data.n_classes)
        extra.append(aux)
        ulgm = UnimodalLabelGenerator(
            len(train_idx),
            data.n_classes,
            mods,
            [d] * len(mods),
            momentum=cfg.distill.ulgm_momentum,
            fused_dim=d,
        )
    dc = cfg.distill
    epoch = [0]  # read by loss_fn: Self-MM leaves the unimodal labels alone in epoch 0

    def on_epoch(e: int) -> None:
        epoch[0] = e

    def loss_fn(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor, pos: np.ndarray) -> torch.Tensor:
        out = m.forward_features(xb)  # type: ignore[operator]
        p = torch.from_numpy(pos)
        if variant.weighting is None:
            loss = F.cross_entropy(out.logits, yb)
        else:
            t_logits = cache.logits[p]  # (B, n_teachers, K)
            loss, _ = distillation_loss(
                out.logits,
                list(t_logits.unbind(dim=1)),
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

    bars.model(f"{fold_key} student_{variant.name}", epochs)
    train_classifier(
        model,
        X,
        data.y,
        train_idx,
        n_classes=data.n_classes,
        epochs=epochs,
        batch_size=cfg.student.batch_size,
        lr=cfg.student.lr,
        weight_decay=cfg.student.weight_decay,
        seed=seed,
        loss_fn=loss_fn,
        extra=extra,
        on_epoch=on_epoch,
        bars=bars,
    )
    return model


def _thin(idx: np.ndarray, data: LoadedData, stride: int) -> np.ndarray:
    """Every ``stride``-th training window of each subject in time order."""
    if stride <= 1:
        return idx
    keep = []
    for g in np.unique(data.groups[idx]):
        sub = idx[data.groups[idx] == g]
        sub = sub[np.argsort(data.start[sub], kind="mergesort")]
        keep.append(sub[::stride])
    return np.sort(np.concatenate(keep))


# -- the run -------------------------------------------------------------------------------
@dataclass
class FitResult:
    run_dir: Path
    metrics: dict[str, Any]
    elapsed_s: float

    def summary(self) -> str:
        lines = [f"run written to {self.run_dir} in {self.elapsed_s:.0f} s", ""]
        lines.append(f"{'model':32s} {'macro-F1':>8s} {'acc':>6s} {'AUC':>6s} {'ECE':>6s}")
        for row in self.metrics["ablation"]:
            auc = row["auc"] if row["auc"] is not None else math.nan
            lines.append(
                f"{row['model']:32s} {row['macro_f1']:8.3f} {row['accuracy']:6.3f} "
                f"{auc:6.3f} {row['ece']:6.3f}"
            )
        acc = self.metrics.get("acceptance", {})
        if acc:
            lines += ["", acc.get("verdict", "")]
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
    return out.stdout.strip() or None if out.returncode == 0 else None


def _dataset_info(data: LoadedData) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": data.kind, "path": str(data.path)}
    if data.path.is_file():
        h = hashlib.sha256()
        with data.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        d["sha256"] = h.hexdigest()
    return d


def _summarise(
    y: np.ndarray,
    logits: np.ndarray,
    class_names: Sequence[str],
    per_fold: Sequence[tuple[Fold, np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    m = evaluate(y, _softmax(logits), class_names)
    folds = []
    for fold, fy, fl in per_fold:
        fm = evaluate(fy, _softmax(fl), class_names)
        folds.append({"fold": fold.name, **{k: fm[k] for k in FOLD_KEYS}})
    f1s = np.array([f["macro_f1"] for f in folds], np.float64)
    m["folds"] = folds
    m["macro_f1_fold_mean"] = float(np.nanmean(f1s)) if len(f1s) else math.nan
    m["macro_f1_fold_std"] = float(np.nanstd(f1s)) if len(f1s) else math.nan
    return m


def fit(
    dataset_kind: str,
    data_path: str | Path,
    out_dir: str | Path,
    cfg: RunConfig,
    *,
    progress: bool = False,
) -> FitResult:
    """Cross-validate, train the deployable student, write the run directory."""
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
        with _Bars(progress) as bars:
            metrics = _run(data, cfg, run, bars, timing)
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
    data: LoadedData, cfg: RunConfig, run: Path, bars: _Bars, timing: dict[str, float]
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
    log.info(
        "%d windows, %d subjects, %d folds (%s); teachers %s; student on %s; variants %s",
        len(data.y),
        len(np.unique(data.groups)),
        len(folds),
        cfg.cv.kind,
        [s.name for s in specs],
        student_mods,
        cfg.student.variants,
    )
    model_names = (
        [s.name for s in specs] + ["teacher_ensemble"] + [f"student_{v.name}" for v in variants]
    )
    per_model: dict[str, list[tuple[Fold, np.ndarray, np.ndarray]]] = {m: [] for m in model_names}
    mixture_names = [s.name for s in mixture]
    diag: dict[str, list[float]] = {"teacher_train_accuracy": [], "teacher_train_confidence": []}

    t0 = time.perf_counter()
    fold_task = bars.task("folds", len(folds) + 1)
    for fold in folds:
        tr = _thin(fold.train, data, cfg.data.train_stride)
        te = fold.test
        X, contract = _fold_inputs(data, fold.train)
        teachers, cache = _train_teachers(
            specs, X, data, contract, tr, cfg, fold.name, bars, hint_teacher=hint_teacher
        )
        yt = data.y[te]
        test_logits: dict[str, np.ndarray] = {}
        for name, model in teachers.items():
            test_logits[name], _ = _predict(model, X, te)
        # the ensemble is the equal-weight mixture the students distil from (at T = 1)
        ens = np.mean([_softmax(test_logits[n]) for n in mixture_names], axis=0)
        test_logits["teacher_ensemble"] = np.log(np.clip(ens, 1e-12, None))
        p_train = F.softmax(cache.logits, dim=-1)  # (n, n_teachers, K)
        ytr = torch.from_numpy(data.y[tr])
        diag["teacher_train_accuracy"].append(
            float((p_train.argmax(-1) == ytr[:, None]).float().mean())
        )
        diag["teacher_train_confidence"].append(float(p_train.max(-1).values.mean()))
        for v in variants:
            student = _train_student(
                v, X, data, contract, student_mods, tr, cache, cfg, fold.name, bars,
                cfg.student.epochs,
            )
            test_logits[f"student_{v.name}"], _ = _predict(student, X, te)
        for name in model_names:
            per_model[name].append((fold, yt, test_logits[name]))
        f1 = {n: evaluate(yt, _softmax(test_logits[n]), data.class_names)["macro_f1"] for n in model_names}
        log.info(
            "fold %s: %s",
            fold.name,
            ", ".join(f"{n}={f1[n]:.3f}" for n in model_names),
        )
        bars.progress.advance(fold_task)
    timing["cv_s"] = time.perf_counter() - t0

    y_all = np.concatenate([fy for _, fy, _ in per_model[model_names[0]]])
    models: dict[str, Any] = {}
    spec_by_name = {s.name: s for s in specs}
    for name in model_names:
        logits = np.concatenate([fl for _, _, fl in per_model[name]])
        m = _summarise(y_all, logits, data.class_names, per_model[name])
        if name in spec_by_name:
            s = spec_by_name[name]
            m.update(
                role="teacher",
                modalities=list(s.modalities),
                fusion=s.fusion,
                in_mixture=s.in_mixture,
                wrist_only=s.wrist_only,
            )
        elif name == "teacher_ensemble":
            m.update(
                role="ensemble",
                modalities=sorted({x for s in mixture for x in s.modalities}),
                members=mixture_names,
                wrist_only=all(s.wrist_only for s in mixture),
            )
        else:
            m.update(role="student", modalities=list(student_mods), wrist_only=True)
        models[name] = m

    # -- deployable student ---------------------------------------------------------------
    t0 = time.perf_counter()
    student_variants = {f"student_{v.name}": v for v in variants}
    if cfg.deploy.variant == "best":
        best = max(student_variants, key=lambda n: _f1(models[n]))
        deploy_variant = student_variants[best]
    else:
        deploy_variant = parse_variant(cfg.deploy.variant)
    deploy_info = _deploy(
        data, cfg, run, specs, mixture, student_mods, deploy_variant, models, bars, hint_teacher,
        notes,
    )
    bars.progress.advance(fold_task)
    timing["deploy_s"] = time.perf_counter() - t0

    ablation = _ablation(models, model_names)
    acceptance = _acceptance(models, specs, variants, diag, cfg)
    notes += acceptance.pop("notes")
    return {
        "task": cfg.data.task,
        "cv": {
            "kind": cfg.cv.kind,
            "folds": [
                {"name": f.name, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                 "test_subjects": list(f.test_subjects)}
                for f in folds
            ],
            "train_stride": cfg.data.train_stride,
        },
        "subjects": sorted(np.unique(data.groups).tolist()),
        "class_names": list(data.class_names),
        "n_windows": int(len(data.y)),
        "class_counts": {
            c: int((data.y == i).sum()) for i, c in enumerate(data.class_names)
        },
        "dataset": _dataset_info(data),
        "models": models,
        "student": deploy_info,
        "ablation": ablation,
        "acceptance": acceptance,
        "diagnostics": {k: [float(x) for x in v] for k, v in diag.items()},
        "notes": notes,
        "seed": cfg.seed,
    }


def _f1(m: Mapping[str, Any]) -> float:
    v = m.get("macro_f1")
    return -1.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _ablation(models: Mapping[str, Any], order: Sequence[str]) -> list[dict[str, Any]]:
    alone = models.get("student_alone")
    rows = []
    for name in order:
        m = models[name]
        rows.append(
            {
                "model": name,
                "role": m["role"],
                "modalities": m["modalities"],
                "wrist_only": m["wrist_only"],
                "macro_f1": m["macro_f1"],
                "macro_f1_fold_mean": m["macro_f1_fold_mean"],
                "macro_f1_fold_std": m["macro_f1_fold_std"],
                "accuracy": m["accuracy"],
                "auc": m["auc"],
                "ece": m["ece"],
                "delta_vs_student_alone": (
                    None if alone is None else m["macro_f1"] - alone["macro_f1"]
                ),
            }
        )
    return rows


def _acceptance(
    models: Mapping[str, Any],
    specs: Sequence[TeacherSpec],
    variants: Sequence[Variant],
    diag: Mapping[str, Sequence[float]],
    cfg: RunConfig,
) -> dict[str, Any]:
    """Issue 2's "what must hold", checked on this run's numbers (with reasons if not)."""
    notes: list[str] = []
    wrist_teachers = [s.name for s in specs if s.wrist_only and not s.name.startswith("teacher_fusion")]
    kd = [f"student_{v.name}" for v in variants if v.weighting is not None]
    out: dict[str, Any] = {"notes": notes}
    if not wrist_teachers or not kd or "student_alone" not in models:
        out["verdict"] = "acceptance not checked: needs wrist-only teachers, student_alone and a KD variant"
        return out
    best_t = max(wrist_teachers, key=lambda n: _f1(models[n]))
    best_s = max(kd, key=lambda n: _f1(models[n]))
    ft, fs, fa = _f1(models[best_t]), _f1(models[best_s]), _f1(models["student_alone"])
    within = fs >= ft - ACCEPT_F1_GAP
    beats = fs > fa
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
    verdict = [
        f"best distilled student {best_s} macro-F1 {fs:.3f}; best wrist-only teacher {best_t} "
        f"{ft:.3f} (gap {fs - ft:+.3f}, required ≥ {-ACCEPT_F1_GAP:.2f}: "
        f"{'met' if within else 'NOT met'}); student alone {fa:.3f} "
        f"({'beaten' if beats else 'NOT beaten'} by {fs - fa:+.3f})."
    ]
    if not (within and beats):
        acc = np.mean(diag["teacher_train_accuracy"]) if diag["teacher_train_accuracy"] else math.nan
        conf = np.mean(diag["teacher_train_confidence"]) if diag["teacher_train_confidence"] else math.nan
        ens = _f1(models.get("teacher_ensemble", {}))
        why = (
            f"Why: the mixture teachers reach {acc:.3f} accuracy on their own training windows "
            f"with mean top-class probability {conf:.3f} (soft targets near one-hot carry little "
            f"extra information), the teacher ensemble scores {ens:.3f} on held-out subjects, "
            f"and the student trains {cfg.student.epochs} epochs at alpha={cfg.distill.alpha}, "
            f"T={cfg.distill.temperature}."
        )
        verdict.append(why)
        notes.append(why)
    out["verdict"] = " ".join(verdict)
    return out


# -- deployment ----------------------------------------------------------------------------
def _partition_deploy(
    data: LoadedData, cfg: RunConfig
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(train mask, held-out mask, train subjects, held-out subjects) of the deployable student."""
    subjects = sorted(np.unique(data.groups).tolist())
    if data.has_groups and len(subjects) > 1:
        hold = list(cfg.data.holdout_subjects) or [subjects[-1]]
        unknown = [s for s in hold if s not in subjects]
        if unknown:
            from train.config import ConfigError

            raise ConfigError(f"no such subjects {unknown}; have {subjects}", key="data.holdout_subjects")
        held = np.isin(data.groups, hold)
        return ~held, held, [s for s in subjects if s not in hold], hold
    if data.split is not None:
        held = np.char.lower(data.split) == "test"
        return ~held, held, subjects, ["test split"]
    # no subjects, no split: hold out the last 10 % in time
    cut = np.quantile(data.start, 0.9)
    held = data.start >= cut
    return ~held, held, subjects, ["last 10% in time"]


def _checkpoint(
    model: nn.Module,
    model_args: dict[str, Any],
    contract: InputContract,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "model_args": model_args,
        "contract": contract.to_dict(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        **extra,
        "git_commit": _git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _deploy(
    data: LoadedData,
    cfg: RunConfig,
    run: Path,
    specs: Sequence[TeacherSpec],
    mixture: Sequence[TeacherSpec],
    student_mods: Sequence[str],
    variant: Variant,
    models: Mapping[str, Any],
    bars: _Bars,
    hint_teacher: str,
    notes: list[str],
) -> dict[str, Any]:
    train_mask, held_mask, train_subjects, hold_subjects = _partition_deploy(data, cfg)
    train_all = np.flatnonzero(train_mask)
    tr = _thin(train_all, data, cfg.data.train_stride)
    held = np.flatnonzero(held_mask)
    X, contract = _fold_inputs(data, train_all)
    teachers, cache = _train_teachers(
        mixture, X, data, contract, tr, cfg, "deploy", bars, hint_teacher=hint_teacher
    )
    epochs = cfg.deploy.epochs or cfg.student.epochs
    student = _train_student(
        variant, X, data, contract, student_mods, tr, cache, cfg, "deploy", bars, epochs
    )
    common = {
        "train_subjects": train_subjects,
        "holdout_subjects": hold_subjects,
        "dataset": _dataset_info(data),
    }
    # teachers
    (run / "teachers").mkdir(exist_ok=True)
    for spec in mixture:
        t = teachers[spec.name]
        tcontract = contract.subset(spec.modalities)
        args = TeacherConfig.from_contract(
            tcontract, fusion=spec.fusion, **{k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
        ).to_dict()
        ck = _checkpoint(t, args, tcontract, {**common, "metrics": _brief(models[spec.name])})
        FusionTeacher(TeacherConfig(**args)).load_state_dict(ck["state_dict"])  # rebuilds alone
        torch.save(ck, run / "teachers" / f"{spec.name}.pt")
    # student: model_args from the wrist contract, so its offsets index the hub's vector
    wrist = contract.subset(student_mods)
    args = StudentConfig.from_contract(wrist, **cfg.student.model).to_dict()
    name = f"student_{variant.name}"
    ck = _checkpoint(
        student, args, wrist, {**common, "variant": variant.name, "metrics": _brief(models[name])}
    )
    rebuilt = Student(StudentConfig(**args))
    rebuilt.load_state_dict(ck["state_dict"])
    rebuilt.eval()
    cols = packed_columns(contract, student_mods)
    Xw_held = np.ascontiguousarray(X[held][:, cols])
    # the rebuilt wrist-only model must answer exactly as the trained one did
    probe = held[: min(len(held), 16)]
    a, _ = _predict(student, X, probe)
    b, _ = _predict(rebuilt, Xw_held, np.arange(len(probe)))
    if not np.allclose(a, b, atol=1e-5):
        raise TrainError("the student rebuilt from its wrist contract disagrees with the trained one")
    torch.save(ck, run / "student.pt")
    # windows
    (run / "windows").mkdir(exist_ok=True)
    rng = np.random.default_rng(_seed_for(cfg.seed, "calib"))
    n_cal = min(cfg.deploy.calib_windows, len(train_all))
    cal = np.sort(rng.choice(train_all, size=n_cal, replace=False))
    np.savez(
        run / "windows" / "calib.npz",
        X=np.ascontiguousarray(X[cal][:, cols], dtype=np.float32),
        y=data.y[cal].astype(np.int64),
    )
    np.savez(
        run / "windows" / "heldout.npz",
        X=Xw_held.astype(np.float32),
        y=data.y[held].astype(np.int64),
        start=data.start[held].astype(np.float64),
        subject=data.groups[held].astype(str),
    )
    # demo recording (WESAD data sets)
    demo = None
    if data.kind == "wesad" and data.has_groups:
        demo = _write_demo(data, hold_subjects[0], run / "demo_recording.npz", notes)
    # budget, attention / modality importance on the held-out windows
    params = count_params(rebuilt)
    macs = count_macs(rebuilt, wrist.input_length)
    if params > STUDENT_PARAM_BUDGET or macs > STUDENT_MAC_BUDGET:
        notes.append(
            f"student exceeds the budget: {params} params (≤ {STUDENT_PARAM_BUDGET}), "
            f"{macs} MACs (≤ {STUDENT_MAC_BUDGET})"
        )
    importance = _importance(rebuilt, Xw_held, data.y[held], data.class_names)
    held_logits, _ = _predict(rebuilt, Xw_held, np.arange(len(held)))
    held_metrics = evaluate(data.y[held], _softmax(held_logits), data.class_names) if len(held) else {}
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
        "n_train_windows": int(len(tr)),
        "n_heldout_windows": int(len(held)),
        "n_calib_windows": int(n_cal),
        "heldout": {k: held_metrics[k] for k in ("accuracy", "macro_f1", "auc", "ece")} if held_metrics else {},
        "teachers": [s.name for s in mixture],
        "demo_recording": demo,
        **importance,
    }


def _brief(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in ("accuracy", "macro_f1", "auc", "ece", "macro_f1_fold_mean")}


@torch.no_grad()
def _importance(
    model: Student, X: np.ndarray, y: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Modality-importance shares (overall and per true class) and the mean patch map."""
    if len(X) == 0:
        return {"modality_importance": {}, "patch_importance": {}}
    Xt = torch.from_numpy(X)
    mods = list(model.config.modalities)
    shares = {m: [] for m in mods}
    patches = {m: [] for m in mods}
    for i in range(0, len(X), EVAL_BATCH):
        pi = model.patch_importance(Xt[i : i + EVAL_BATCH])
        for m in mods:
            patches[m].append(pi[m])
            shares[m].append(pi[m].sum(dim=1))
    share = {m: torch.cat(v).numpy() for m, v in shares.items()}
    patch = {m: torch.cat(v).numpy() for m, v in patches.items()}
    by_class = {
        c: {m: float(share[m][y == k].mean()) for m in mods}
        for k, c in enumerate(class_names)
        if (y == k).any()
    }
    return {
        "modality_importance": {
            "all": {m: float(share[m].mean()) for m in mods},
            **by_class,
        },
        "patch_importance": {m: patch[m].mean(axis=0).tolist() for m in mods},
        "patch_s": model.config.patch_s,
    }


def _write_demo(data: LoadedData, subject: str, path: Path, notes: list[str]) -> str | None:
    """The held-out subject's wrist recording for the simulator / demo bundle."""
    from train import synth

    src = _subject_file(data.path, subject)
    if src is None:
        notes.append(f"demo recording skipped: no file for subject {subject} under {data.path}")
        return None
    synth.write_demo_recording(src, path)
    return path.name


def _subject_file(root: Path, subject: str) -> Path | None:
    for cand in (root / subject / f"{subject}.pkl", root / f"{subject}.pkl"):
        if cand.is_file():
            return cand
    return None
