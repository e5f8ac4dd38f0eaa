"""The training loop: optimizer, schedule and epochs of a model, and the teacher and student steps.

- :func:`train_classifier`: AdamW with warm-up and cosine decay on class-balanced batches;
  any loss (plain cross-entropy by default).
- :func:`train_teachers`: every teacher of a job, then the mixture teachers' outputs on the
  training windows, computed once (:class:`TeacherCache`).
- :func:`train_student`: one student variant against that cache (distillation, hints,
  unimodal label generation, as the variant asks).

Class imbalance (baseline is about half of WESAD's labelled time): every loop draws
class-balanced batches, so plain, distillation and auxiliary losses are all balanced
without per-loss weights. Every model is seeded by ``(run seed, job, model name)``, so a
model's weights do not depend on what was trained before it or in which process.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.contract import InputContract
from core.errors import ConfigError
from train.config import RunConfig, Variant
from train.errors import TrainError
from train.losses import HintProjector, distillation_loss, hint_loss
from train.models import FusionTeacher, Student, StudentConfig, TeacherConfig
from train.plan import TeacherSpec
from train.progress import ProgressEvent, ProgressFn, no_progress
from train.ulgm import AuxHeads, UnimodalLabelGenerator

__all__ = [
    "EVAL_BATCH",
    "LossFn",
    "TeacherCache",
    "balanced_batches",
    "build_student",
    "build_teacher",
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
    progress: ProgressFn = no_progress,
    name: str = "model",
) -> nn.Module:
    """AdamW + warm-up/cosine on class-balanced batches of ``X[idx]`` (``X`` may be a memmap).

    ``loss_fn(model, xb, yb, pos)`` gets the batch and its positions into ``idx`` (to look
    up cached teacher outputs); default plain cross-entropy. ``extra`` modules (hint
    projector, auxiliary heads) are optimised with the model. ``on_epoch(e)`` runs before
    epoch ``e``; ``progress`` hears of every finished epoch (task ``"epochs"``, ``name``).
    Returns the model in eval mode.
    """
    rng = np.random.default_rng(seed)
    params = [p for m in (model, *extra) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(idx) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(epochs * steps_per_epoch))
    y_idx = y[idx]
    yt = torch.from_numpy(y_idx)
    progress(ProgressEvent("epochs", name, 0, epochs))
    for e in range(epochs):
        if on_epoch is not None:
            on_epoch(e)
        for m in (model, *extra):
            m.train()
        for pos in balanced_batches(y_idx, n_classes, batch_size, rng):
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
        progress(ProgressEvent("epochs", name, e + 1, epochs))
    model.eval()
    return model


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
    """Mixture teachers' outputs on one training set, computed once per job."""

    logits: torch.Tensor  # (n_train, n_teachers, K)
    features: torch.Tensor | None  # (n_train, D_t) of the hint teacher
    names: list[str]


def train_teachers(
    specs: Sequence[TeacherSpec],
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    contract: InputContract,
    cfg: RunConfig,
    *,
    key: str,
    hint_teacher: str,
    progress: ProgressFn = no_progress,
) -> tuple[dict[str, FusionTeacher], TeacherCache]:
    """Train every teacher of job ``key`` on ``X[idx]``; cache the mixture's outputs there."""
    n_classes = contract.n_classes
    teachers: dict[str, FusionTeacher] = {}
    logits, feats, names = [], None, []
    for spec in specs:
        seed = seed_for(cfg.seed, key, spec.name)
        torch.manual_seed(seed)
        model = build_teacher(spec, contract, cfg)
        train_classifier(
            model, X, y, idx,
            n_classes=n_classes,
            epochs=cfg.teachers.epochs,
            batch_size=cfg.teachers.batch_size,
            lr=cfg.teachers.lr,
            weight_decay=cfg.teachers.weight_decay,
            seed=seed,
            progress=progress,
            name=f"{key} {spec.name}",
        )  # fmt: skip
        teachers[spec.name] = model
        if spec.in_mixture:
            lg, ft = predict(model, X, idx, features=spec.name == hint_teacher)
            logits.append(torch.from_numpy(lg))
            names.append(spec.name)
            if ft is not None:
                feats = torch.from_numpy(ft)
    return teachers, TeacherCache(torch.stack(logits, dim=1), feats, names)


def train_student(
    variant: Variant,
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    contract: InputContract,
    modalities: Sequence[str],
    cfg: RunConfig,
    cache: TeacherCache,
    *,
    key: str,
    progress: ProgressFn = no_progress,
) -> Student:
    """Train the student ``variant`` of job ``key`` on ``X[idx]`` against ``cache``."""
    dc = cfg.distill
    n_classes = contract.n_classes
    seed = seed_for(cfg.seed, key, f"student_{variant.name}")
    torch.manual_seed(seed)
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
            len(idx), n_classes, mods, [d] * len(mods), momentum=dc.ulgm_momentum, fused_dim=d
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

    train_classifier(
        model, X, y, idx,
        n_classes=n_classes,
        epochs=cfg.student.epochs,
        batch_size=cfg.student.batch_size,
        lr=cfg.student.lr,
        weight_decay=cfg.student.weight_decay,
        seed=seed,
        loss_fn=loss_fn,
        extra=extra,
        on_epoch=on_epoch,
        progress=progress,
        name=f"{key} student_{variant.name}",
    )  # fmt: skip
    return model
