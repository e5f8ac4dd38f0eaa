"""The training loop: optimizer, step budget and early stopping of a model, and the teacher and student steps.

- :func:`train_classifier`: AdamW with warm-up and cosine decay on class-balanced,
  augmented batches for a step budget (:mod:`train.budget`); with validation rows, the
  weights that scored best there are kept and training stops once they stop improving.
- :func:`fit_model`: that, then (with ``loop.refit``) a fresh model on the training and
  validation rows together for the step count that scored best.
- :func:`train_teachers`: every teacher of a job, then the mixture teachers' outputs on the
  training windows, computed once (:class:`TeacherCache`).
- :func:`train_student`: one student variant against that cache (distillation, hints,
  unimodal label generation, as the variant asks).

Class imbalance (baseline is about half of WESAD's labelled time): every loop draws
class-balanced batches, so plain, distillation and auxiliary losses are all balanced
without per-loss weights. Every teacher is seeded by ``(run seed, job, teacher name)`` and
every student variant by ``(run seed, job)``, so a model's weights do not depend on what was
trained before it or in which process, and the variants of a fold differ only by their loss.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.contract import InputContract
from core.errors import ConfigError
from train.augment import AugmentConfig, Layout, augment_batch, layout_for
from train.budget import Budget, plan_budget
from train.config import LoopConfig, RunConfig, Variant
from train.errors import TrainError
from train.losses import HintProjector, distillation_loss, hint_loss
from train.macs import count_macs
from train.models import Student, StudentConfig
from train.plan import TeacherSpec
from train.progress import ProgressEvent, ProgressFn, no_progress
from train.teachers import FusionTeacher, TeacherConfig
from train.ulgm import AuxHeads, UnimodalLabelGenerator

__all__ = [
    "EVAL_BATCH",
    "LossFn",
    "Schedule",
    "TeacherCache",
    "TrainLog",
    "augment_config",
    "balanced_batches",
    "budget_for",
    "build_student",
    "build_teacher",
    "fit_model",
    "lr_lambda",
    "predict",
    "seed_for",
    "train_classifier",
    "train_student",
    "train_teachers",
]

EVAL_BATCH: Final = 512  # inference batch: amortises per-call overhead, small in memory
GRAD_CLIP: Final = 1.0  # keeps the first high-LR steps after warm-up stable
WARMUP_FRACTION: Final = 0.1  # of all steps; Transformers diverge without a short warm-up

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]


class Schedule(Protocol):
    """How long and how fast a model trains: the config's ``teachers`` or ``student`` section."""

    steps: int
    budget_gmacs: float
    batch_size: int
    lr: float
    weight_decay: float


def budget_for(schedule: Schedule, loop: LoopConfig, n_train: int, macs: int) -> Budget:
    """The :class:`train.budget.Budget` of a model of ``macs`` per window trained on
    ``n_train`` windows."""
    return plan_budget(
        n_train,
        batch_size=schedule.batch_size,
        lr=schedule.lr,
        steps=schedule.steps,
        macs_per_window=macs,
        budget_gmacs=schedule.budget_gmacs,
        evals=loop.evals,
        patience=loop.patience,
        min_fraction=loop.min_fraction,
    )


def augment_config(loop: LoopConfig) -> AugmentConfig | None:
    """The augmentation the config asks for, or None."""
    if not loop.augment:
        return None
    return AugmentConfig(
        p=loop.aug_p,
        jitter=loop.jitter,
        scale=loop.scale,
        magnitude_warp=loop.magnitude_warp,
        time_warp=loop.time_warp,
        crop_min=loop.crop_min,
    )


def seed_for(*parts: object) -> int:
    """A stable 31-bit seed per (run seed, job, model): independent of training order."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def balanced_batches(
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


def lr_lambda(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 0 (as a multiplier of the base LR)."""
    warm = max(1, int(total_steps * WARMUP_FRACTION))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass
class TrainLog:
    """What happened while one model trained (reported per fold in metrics.json)."""

    batch_size: int = 0
    lr: float = 0.0
    steps: int = 0  # optimizer steps taken
    max_steps: int = 0  # the budget
    best_step: int = 0  # the step whose weights were kept (0: no validation, the last)
    best_val_loss: float = math.nan
    best_val_f1: float = math.nan
    n_fit: int = 0  # training rows
    n_val: int = 0  # validation rows (inside the job's training windows)
    refit_steps: int = 0  # steps of the refit on training + validation rows (0: none)
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (step, loss, F1)

    def brief(self) -> dict[str, Any]:
        """The JSON-able summary (no curve)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "curve"}


@torch.no_grad()
def val_scores(
    model: nn.Module, X: np.ndarray, y: np.ndarray, idx: np.ndarray
) -> tuple[float, float]:
    """(class-balanced cross-entropy, macro-F1 over the classes present) on ``X[idx]``."""
    logits, _ = predict(model, X, idx)
    z, yt = torch.from_numpy(logits), torch.from_numpy(y[idx])
    ce = F.cross_entropy(z, yt, reduction="none")
    loss = float(torch.stack([ce[yt == c].mean() for c in torch.unique(yt)]).mean())
    pred = z.argmax(1)
    f1s = []
    for c in torch.unique(torch.cat([yt, pred])):
        tp = int(((pred == c) & (yt == c)).sum())
        wrong = int(((pred == c) & (yt != c)).sum()) + int(((pred != c) & (yt == c)).sum())
        f1s.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return loss, float(np.mean(f1s))


def train_classifier(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    budget: Budget,
    *,
    weight_decay: float,
    n_classes: int,
    seed: int,
    val_idx: np.ndarray | None = None,
    select: str = "loss",
    loss_fn: LossFn | None = None,
    extra: Sequence[nn.Module] = (),
    on_epoch: Callable[[int], None] | None = None,
    augment: AugmentConfig | None = None,
    layout: Layout = (),
    progress: ProgressFn = no_progress,
    name: str = "model",
) -> TrainLog:
    """AdamW + warm-up/cosine on class-balanced batches of ``X[idx]`` (``X`` may be a memmap),
    ``budget.max_steps`` steps of ``budget.batch_size`` windows.

    ``loss_fn(model, xb, yb, pos)`` gets the batch and its positions into ``idx`` (to look
    up cached teacher outputs); default plain cross-entropy. ``extra`` modules (hint
    projector, auxiliary heads) are optimised with the model. ``on_epoch(e)`` runs before
    each pass over ``idx``. ``augment`` transforms the ``layout`` columns of every batch.
    With ``val_idx`` the model is scored there every ``budget.eval_every`` steps
    (``select``: "loss" is the class-balanced cross-entropy, "f1" the macro-F1), training
    stops after ``budget.patience`` scores without a better one (never before
    ``budget.min_steps``), and the best weights are restored. ``progress`` hears of the
    steps (task ``"steps"``). Leaves the model in eval mode.
    """
    rng = np.random.default_rng(seed)
    params = [p for m in (model, *extra) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=budget.lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(budget.max_steps))
    y_idx = y[idx]
    yt = torch.from_numpy(y_idx)
    has_val = val_idx is not None and len(val_idx) > 0
    log = TrainLog(batch_size=budget.batch_size, lr=budget.lr, max_steps=budget.max_steps,
                   n_fit=len(idx), n_val=len(val_idx) if has_val else 0)  # fmt: skip
    best, since_best, best_state = math.inf, 0, None
    progress(ProgressEvent("steps", name, 0, budget.max_steps))
    epoch = 0
    while log.steps < budget.max_steps and since_best < budget.patience:
        if on_epoch is not None:
            on_epoch(epoch)
        epoch += 1
        for m in (model, *extra):
            m.train()
        for pos in balanced_batches(y_idx, n_classes, budget.batch_size, rng):
            xn = np.ascontiguousarray(X[idx[pos]], dtype=np.float32)  # (B, L), a fresh copy
            if augment is not None:
                xn = augment_batch(xn, layout, augment, rng)
            xb = torch.from_numpy(xn)
            yb = yt[torch.from_numpy(pos)]
            loss = (
                F.cross_entropy(model(xb), yb) if loss_fn is None else loss_fn(model, xb, yb, pos)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            opt.step()
            sched.step()
            log.steps += 1
            done = log.steps >= budget.max_steps
            if has_val and (log.steps % budget.eval_every == 0 or done):
                assert val_idx is not None
                vl, vf = val_scores(model, X, y, val_idx)
                log.curve.append((log.steps, vl, vf))
                score = vl if select == "loss" else -vf
                if score < best:
                    best, since_best = score, 0
                    best_state = copy.deepcopy(model.state_dict())
                    log.best_step, log.best_val_loss, log.best_val_f1 = log.steps, vl, vf
                elif log.steps >= budget.min_steps:
                    since_best += 1
                for m in (model, *extra):
                    m.train()
                progress(ProgressEvent("steps", name, log.steps, budget.max_steps))
            if done or since_best >= budget.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    progress(ProgressEvent("steps", name, budget.max_steps, budget.max_steps))
    model.eval()
    return log


def fit_model(
    build: Callable[[], tuple[nn.Module, dict[str, Any]]],
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    schedule: Schedule,
    cfg: RunConfig,
    *,
    seed: int,
    progress: ProgressFn = no_progress,
    name: str = "model",
) -> tuple[nn.Module, TrainLog]:
    """Train ``build()``'s model on ``fit_idx``, stopping early on ``val_idx``; with
    ``loop.refit``, then train a fresh one on both for the step count that scored best.

    ``build`` returns the model and its keyword arguments of :func:`train_classifier`
    (loss, extra modules, layout, ...); a loss that looks rows up by position sees
    ``concat(fit_idx, val_idx)`` positions in the refit, so caches cover both, in order."""
    lc = cfg.loop
    torch.manual_seed(seed)
    model, kw = build()
    macs = count_macs(model, X.shape[1])
    budget = budget_for(schedule, lc, len(fit_idx), macs)
    common = {"weight_decay": schedule.weight_decay, "seed": seed, "augment": augment_config(lc),
              "progress": progress, "name": name}  # fmt: skip
    log = train_classifier(model, X, y, fit_idx, budget, val_idx=val_idx, select=lc.select,
                           **common, **kw)  # fmt: skip
    if not (lc.refit and len(val_idx) and log.best_step > 0):
        return model, log
    torch.manual_seed(seed)
    model, kw = build()
    both = np.concatenate([fit_idx, val_idx])
    refit = dataclasses.replace(budget_for(schedule, lc, len(both), macs), max_steps=log.best_step)
    train_classifier(model, X, y, both, refit, **common, **kw)
    log.refit_steps = log.best_step
    return model, log


@torch.no_grad()
def predict(
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


def build_teacher(spec: TeacherSpec, contract: InputContract, cfg: RunConfig) -> FusionTeacher:
    """The teacher ``spec`` over ``contract``'s packed vector (config errors name the key)."""
    overrides = {k: v for k, v in cfg.teachers.model.items() if k != "fusion"}
    try:
        tc = TeacherConfig.from_contract(contract, spec.modalities, fusion=spec.fusion, **overrides)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), key="teachers.model") from e
    return FusionTeacher(tc)


def build_student(contract: InputContract, modalities: Sequence[str], cfg: RunConfig) -> Student:
    """The student over ``modalities`` of ``contract`` (config errors name the key)."""
    try:
        sc = StudentConfig.from_contract(contract, modalities, **cfg.student.model)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), key="student.model") from e
    return Student(sc)


@dataclass
class TeacherCache:
    """Mixture teachers' outputs on one job's training rows (fit then validation rows)."""

    logits: torch.Tensor  # (n_rows, n_teachers, K)
    features: torch.Tensor | None  # (n_rows, D_t) of the hint teacher
    names: list[str]


def train_teachers(
    specs: Sequence[TeacherSpec],
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    contract: InputContract,
    cfg: RunConfig,
    *,
    key: str,
    hint_teacher: str,
    progress: ProgressFn = no_progress,
) -> tuple[dict[str, FusionTeacher], TeacherCache, dict[str, TrainLog]]:
    """Train every teacher of job ``key`` on ``X[fit_idx]`` (early stopping on ``val_idx``);
    cache the mixture's outputs on ``concat(fit_idx, val_idx)``."""
    n_classes = contract.n_classes
    rows = np.concatenate([fit_idx, val_idx])
    teachers: dict[str, FusionTeacher] = {}
    logs: dict[str, TrainLog] = {}
    logits, feats, names = [], None, []
    for spec in specs:

        def build(spec: TeacherSpec = spec) -> tuple[nn.Module, dict[str, Any]]:
            kw = {"n_classes": n_classes, "layout": layout_for(contract, spec.modalities)}
            return build_teacher(spec, contract, cfg), kw

        model, logs[spec.name] = fit_model(
            build, X, y, fit_idx, val_idx, cfg.teachers, cfg,
            seed=seed_for(cfg.seed, key, spec.name), progress=progress,
            name=f"{key} {spec.name}",
        )  # fmt: skip
        assert isinstance(model, FusionTeacher)
        teachers[spec.name] = model
        if spec.in_mixture:
            lg, ft = predict(model, X, rows, features=spec.name == hint_teacher)
            logits.append(torch.from_numpy(lg))
            names.append(spec.name)
            if ft is not None:
                feats = torch.from_numpy(ft)
    return teachers, TeacherCache(torch.stack(logits, dim=1), feats, names), logs


def train_student(
    variant: Variant,
    X: np.ndarray,
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    contract: InputContract,
    modalities: Sequence[str],
    cfg: RunConfig,
    cache: TeacherCache,
    *,
    key: str,
    progress: ProgressFn = no_progress,
) -> tuple[Student, TrainLog]:
    """Train the student ``variant`` of job ``key`` on ``X[fit_idx]`` against ``cache``
    (whose rows are ``concat(fit_idx, val_idx)``), stopping early on ``val_idx``."""
    dc = cfg.distill
    n_classes = contract.n_classes
    n_rows = len(fit_idx) + len(val_idx)

    def build() -> tuple[nn.Module, dict[str, Any]]:
        model = build_student(contract, modalities, cfg)
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
            aux = AuxHeads(mods, d, n_classes)
            extra.append(aux)
            ulgm = UnimodalLabelGenerator(
                n_rows, n_classes, mods, [d] * len(mods), momentum=dc.ulgm_momentum, fused_dim=d
            )
        epoch = [0]  # read by loss_fn: Self-MM leaves the unimodal labels alone in epoch 0

        def on_epoch(e: int) -> None:
            epoch[0] = e

        def loss_fn(
            m: nn.Module, xb: torch.Tensor, yb: torch.Tensor, pos: np.ndarray
        ) -> torch.Tensor:
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

        kw = {"n_classes": n_classes, "loss_fn": loss_fn, "extra": extra, "on_epoch": on_epoch,
              "layout": layout_for(contract, modalities)}  # fmt: skip
        return model, kw

    model, log = fit_model(
        build, X, y, fit_idx, val_idx, cfg.student, cfg,
        # every variant of a job starts from the same weights and draws the same batches
        # (common random numbers): their differences are the variant's, not the seed's
        seed=seed_for(cfg.seed, key, "student"), progress=progress,
        name=f"{key} student_{variant.name}",
    )  # fmt: skip
    assert isinstance(model, Student)
    return model, log
