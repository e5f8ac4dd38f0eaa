"""A small, real training RUN directory for tests of export, the bundle and the engines.

Stands in for ``edge-train fit ... --out RUN`` (layout: ``core.runs.RunLayout``) so export
tests do not have to run the whole training pipeline. What it writes is real: a briefly
trained model on a small deterministic toy problem (three classes that differ in pulse
rate, skin-conductance level and movement), so int8 quantization parity is meaningful
(a random-weight model has near-tied logits, and any rounding flips its decisions).

Usage (host tests only; needs torch)::

    from tests.fakes.runs import build_run
    run = build_run(tmp_path / "run")        # seconds on one core; deterministic
    run.path / "student.pt"                   # {"model_args", "contract", "state_dict", ...}
    run.contract, run.model                   # the InputContract and the trained nn.Module

The model is the real ``train.models.Student`` when that module exists (``model="auto"``)
and otherwise :class:`StandInStudent`, a tiny Transformer made only of Linear / LayerNorm /
matmul / softmax with the same I/O: packed float32 ``(B, L)`` laid out by
``InputContract.layout()`` in, logits ``(B, K)`` out. Pass ``model="stand-in"`` to force it.
A checkpoint written with the stand-in carries ``"model_class": "tests.fakes.runs:StandInStudent"``
so ``export`` can rebuild it; the real student's checkpoints do not need that key.

Module-scoped fixtures should call :func:`build_run` once per module: training is cheap
but not free on a shared 2-core machine. :func:`exported_bundle` goes one step further and
exports that RUN once per test process (every format, signed, archived) for every test
module that needs a real bundle. Loader tests that need no model at all write a bundle whose
model files are random bytes with ``tests.fakes.bundles.write_fake_bundle`` (no torch).
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from core.contract import InputContract, Modality, Normalization
from core.runs import RunLayout

__all__ = [
    "TOY_CLASSES",
    "BuiltRun",
    "StandInConfig",
    "StandInStudent",
    "build_run",
    "exported_bundle",
    "make_toy_windows",
    "toy_contract",
]

TOY_CLASSES: Final = ("baseline", "stress", "amusement")
TOY_WINDOW_S: Final = 4.0  # short windows keep L (and every test) small; rates stay realistic-ish
TRAIN_STEPS: Final = 300  # enough for confident margins on the toy problem, still a short fit
STAND_IN_CLASS: Final = "tests.fakes.runs:StandInStudent"


def toy_contract() -> InputContract:
    """bvp 16 Hz, eda 4 Hz, acc 8 Hz x3 over 4 s windows: L = 64 + 16 + 96 = 176."""
    return InputContract(
        modalities=(
            Modality("bvp", "a.u.", 16.0, ("bvp",)),
            Modality("eda", "uS", 4.0, ("eda",), valid_range=(0.0, 100.0)),
            Modality("acc", "g", 8.0, ("x", "y", "z"), valid_range=(-8.0, 8.0)),
        ),
        class_names=TOY_CLASSES,
        window_s=TOY_WINDOW_S,
        hop_s=2.0,
        normalization=Normalization(kind="subject_baseline", calibration_s=60.0, clip=10.0),
    )


def make_toy_windows(
    contract: InputContract, n: int, *, seed: int, subject_offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` packed, already-normalized windows ``(n, L)`` float32 and labels ``(n,)`` int64.

    Class 1 ("stress") raises pulse rate and skin conductance, class 2 ("amusement") adds
    movement. ``subject_offset`` shifts every subject-specific level a little, so held-out
    windows come from a slightly different distribution (as with a new person).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, contract.n_classes, size=n)
    windows = []
    for label in y:
        parts: dict[str, np.ndarray] = {}
        for s in contract.layout():
            t = np.arange(s.samples) / s.modality.rate_hz  # (T,)
            name = s.modality.name
            if name == "bvp":
                hz = 1.1 + 0.5 * (label == 1) + 0.15 * rng.standard_normal() + subject_offset
                sig = np.sin(2 * math.pi * hz * t + rng.uniform(0, 2 * math.pi))[None]
            elif name == "eda":
                level = 0.8 * (label == 1) - 0.3 + 0.3 * rng.standard_normal() + subject_offset
                sig = (level + 0.1 * t / t[-1])[None]
            else:
                amp = 0.2 + 0.8 * (label == 2) + 0.15 * abs(rng.standard_normal())
                sig = amp * rng.standard_normal((s.modality.n_channels, s.samples))
            noise = 0.25 * rng.standard_normal((s.modality.n_channels, s.samples))
            parts[name] = (sig + noise).astype(np.float32)
        windows.append(parts)
    x = contract.pack_batch(windows)  # (n, L)
    clip = contract.normalization.clip
    return np.clip(x, -clip, clip).astype(np.float32), y.astype(np.int64)


@dataclass
class StandInConfig:
    """Config of the stand-in student (rebuilds it alone, as ``model_args``)."""

    contract: dict[str, Any]  # InputContract.to_dict(): the model slices its input by layout()
    patches: int = 4  # tokens per modality; the window is split into equal time patches
    d_model: int = 32  # small: the toy problem is easy and exports must stay tiny
    n_heads: int = 2  # two heads exercise the reshape/transpose path of attention
    n_layers: int = 2  # two blocks: enough depth for LayerNorm/Softmax quantization to matter


class _Block(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, D)
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q = q.reshape(b, t, self.h, d // self.h).transpose(1, 2)  # (B, h, T, hs)
        k = k.reshape(b, t, self.h, d // self.h).transpose(1, 2)
        v = v.reshape(b, t, self.h, d // self.h).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d // self.h)), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        x = x + self.proj(y)
        # ReLU-free MLP on purpose: only Linear/LayerNorm/matmul/softmax (+ a smooth tanh)
        return x + self.fc2(torch.tanh(self.fc1(self.ln2(x))))


class StandInStudent(nn.Module):
    """Packed ``(B, L)`` -> logits ``(B, K)``; one token per (modality, time patch)."""

    def __init__(self, config: StandInConfig) -> None:
        super().__init__()
        self.config = config
        contract = InputContract.from_dict(config.contract)
        self.slices = [(s.offset, s.stop, s.modality.n_channels, s.samples) for s in contract.layout()]
        for _, _, _, samples in self.slices:
            if samples % config.patches:
                raise ValueError(f"{samples} samples do not split into {config.patches} patches")
        self.embed = nn.ModuleList(
            nn.Linear(c * (t // config.patches), config.d_model) for _, _, c, t in self.slices
        )
        n_tokens = len(self.slices) * config.patches
        self.pos = nn.Parameter(0.02 * torch.randn(1, n_tokens, config.d_model))
        self.blocks = nn.ModuleList(
            _Block(config.d_model, config.n_heads) for _ in range(config.n_layers)
        )
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, contract.n_classes)

    @classmethod
    def from_model_args(cls, model_args: dict[str, Any]) -> StandInStudent:
        """What ``export.run.build_student`` calls for a checkpoint with ``model_class``."""
        return cls(StandInConfig(**model_args))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p = self.config.patches
        tokens = []
        for (start, stop, c, t), embed in zip(self.slices, self.embed, strict=True):
            m = x[:, start:stop].reshape(b, c, p, t // p).transpose(1, 2)  # (B, P, C, T/P)
            tokens.append(embed(m.reshape(b, p, c * (t // p))))  # (B, P, D)
        h = torch.cat(tokens, dim=1) + self.pos  # (B, M*P, D)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h).mean(dim=1))  # (B, K)


def _real_student() -> tuple[Any, Any] | None:
    try:
        models = importlib.import_module("train.models")
    except ImportError:
        return None
    student, config = getattr(models, "Student", None), getattr(models, "StudentConfig", None)
    return (student, config) if student is not None and config is not None else None


def _build_model(contract: InputContract, which: str) -> tuple[nn.Module, dict[str, Any], str | None]:
    real = _real_student() if which in ("auto", "real") else None
    if which == "real" and real is None:
        raise RuntimeError("train.models.Student is not available")
    if real is not None:
        student_cls, config_cls = real
        config = _real_config(config_cls, contract)
        return student_cls(config), config.to_dict(), None
    cfg = StandInConfig(contract=contract.to_dict())
    return StandInStudent(cfg), asdict(cfg), STAND_IN_CLASS


def _real_config(config_cls: Any, contract: InputContract) -> Any:
    """The real StudentConfig for the toy contract: its defaults, with 1 s patches (the
    toy window is 4 s, shorter than the default 5 s patch)."""
    return config_cls.from_contract(contract, patch_s=1.0)


@dataclass
class BuiltRun:
    """What :func:`build_run` made: the RUN path, its contract and the trained model."""

    path: Path
    contract: InputContract
    model: nn.Module
    heldout_accuracy: float
    stand_in: bool


def build_run(
    out: Path | str,
    *,
    seed: int = 0,
    n_train: int = 600,
    n_calib: int = 256,
    n_heldout: int = 240,
    model: str = "auto",
    steps: int = TRAIN_STEPS,
    contract: InputContract | None = None,
) -> BuiltRun:
    """Train a small student on the toy problem and write a RUN directory at ``out``.

    ``model``: ``"auto"`` (the real student if ``train.models`` exists, else the stand-in),
    ``"real"`` or ``"stand-in"``. Deterministic for a given seed (single-threaded torch).
    """
    out = Path(out)
    layout = RunLayout(out)
    layout.windows_dir.mkdir(parents=True, exist_ok=True)
    contract = contract or toy_contract()  # another toy contract: tests/fakes/hr.py
    torch.manual_seed(seed)
    net, model_args, model_class = _build_model(contract, model)
    x_train, y_train = make_toy_windows(contract, n_train, seed=seed)
    x_held, y_held = make_toy_windows(contract, n_heldout, seed=seed + 1, subject_offset=0.05)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # determinism, and politeness on a shared machine
    try:
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        net.train()
        for _ in range(steps):
            idx = torch.randint(0, len(xt), (64,), generator=gen)
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            pred = net(torch.from_numpy(x_held)).argmax(1).numpy()
    finally:
        torch.set_num_threads(threads)
    acc = float((pred == y_held).mean())

    ckpt: dict[str, Any] = {
        "model_args": model_args,
        "contract": contract.to_dict(),
        "state_dict": net.state_dict(),
        "train_subjects": ["T1", "T2", "T3"],
        "holdout_subjects": ["H1"],
        "dataset": {"kind": "toy", "path": None, "seed": seed},
        "metrics": {"accuracy": acc},
        "git_commit": None,
        "created": "2025-01-01T00:00:00+00:00",
    }
    if model_class is not None:
        ckpt["model_class"] = model_class
    torch.save(ckpt, layout.student_checkpoint)
    np.savez(layout.calib_windows, X=x_train[:n_calib], y=y_train[:n_calib])
    np.savez(
        layout.heldout_windows,
        X=x_held,
        y=y_held,
        start=np.arange(n_heldout, dtype=np.float64) * contract.hop_s,
        subject=np.array(["H1"] * n_heldout),
    )
    metrics = {
        "task": "toy-3class",
        "cv": "holdout",
        "subjects": ["T1", "T2", "T3", "H1"],
        "models": {"student": {"accuracy": acc, "macro_f1": acc}},
        "student": {"params": sum(p.numel() for p in net.parameters())},
        "notes": ["tests/fakes/runs.py toy run"],
    }
    layout.metrics.write_text(json.dumps(metrics, indent=2))
    return BuiltRun(out, contract, net, acc, model_class is not None)


# -- one exported bundle per test process ------------------------------------------------
_EXPORTED: dict[str, Any] = {}


def exported_bundle(base: Path) -> Any:
    """Build a RUN under ``base`` and export it once per test process (every format, signed,
    archived); later calls return the same :class:`export.pipeline.ExportResult`.

    Shared by the export, engine and bundle tests so the export, the slowest fixture, runs
    once per pytest session, not once per module. Treat the result as
    read-only: copy the bundle (``shutil.copytree``) before tampering with it. The result
    has extra attributes ``run`` (:class:`BuiltRun`), ``public_key`` and ``private_key``.
    """
    if "result" in _EXPORTED:
        return _EXPORTED["result"]
    from export.pipeline import ExportOptions, export_run
    from export.signing import generate_keypair

    base = Path(base)
    run = build_run(base / "run")
    keys = base / "keys"
    keys.mkdir()
    generate_keypair(keys / "export.pem", keys / "export.pub.pem")
    opts = ExportOptions(
        calib_size=128,  # enough for stable ranges on the toy problem; keeps PT2E quick
        sign_key=keys / "export.pem",
        archive=True,
        # the default calib_method "auto" compares the three methods anyway (the slow part): it is
        # the path every export takes, so the shared fixture takes it too
        latency_runs=20,
    )
    result = export_run(run.path, base / "bundle", opts)
    result.run = run
    result.public_key = keys / "export.pub.pem"
    result.private_key = keys / "export.pem"
    _EXPORTED["result"] = result
    return result
