"""Tiny WESAD-format recordings for tests (stand-ins for the real 2.5 GB WESAD download).

Two kinds, pick by what the test needs:

- Hand-built, numpy only, milliseconds (safe for hub tests under ``edge/``):
  :func:`wesad_dict` builds the exact dict layout of a WESAD ``S{n}.pkl`` (chest 700 Hz,
  wrist E4 rates, wrist ACC in 1/64 g, labels at 700 Hz) from a list of
  ``(label, seconds)`` segments, with simple noisy signals whose level depends on the label;
  :func:`write_wesad_pickle` writes one (or a modified dict) to ``S{n}/S{n}.pkl``;
  :func:`tiny_recording` gives the loaded :class:`core.recording.Recording` directly;
  :func:`malicious_pickle` returns a pickle that would run a shell command if loaded
  with plain ``pickle.load``.
- Physiological, through :mod:`train.synth` (host only: imports neurokit2, ~1 s per
  subject at ``minutes_scale=0.25``): :func:`cached_synth_root` generates a small synthetic
  WESAD tree once per test session and returns its root.

:func:`write_arrays_npz` writes a generic arrays-format file (``train.arrays_data.load_arrays``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "cached_synth_root",
    "malicious_pickle",
    "tiny_recording",
    "wesad_dict",
    "write_arrays_npz",
    "write_wesad_pickle",
]

# (label, seconds): 330 s baseline covers the 300 s calibration; the rest is short.
DEFAULT_SEGMENTS: tuple[tuple[int, int], ...] = ((0, 10), (1, 330), (0, 20), (2, 90), (0, 20),
                                                 (3, 90), (0, 10))


def wesad_dict(
    segments: Sequence[tuple[int, int]] = DEFAULT_SEGMENTS,
    *,
    subject: str = "S2",
    seed: int = 0,
    dtype: Any = np.float64,
) -> dict[str, Any]:
    """A WESAD ``S*.pkl`` dict: ``{"subject", "signal": {"chest", "wrist"}, "label"}``.

    Signals are noise around label-dependent levels (stress: higher EDA and faster pulse),
    enough for loader and windowing tests, not for physiology.
    """
    rng = np.random.default_rng(seed)
    total = sum(d for _, d in segments)
    labels = np.concatenate([np.full(d * 700, lab, np.int32) for lab, d in segments])

    def per_rate(rate: int) -> np.ndarray:  # label at each sample of a rate
        return np.concatenate([np.full(d * rate, lab) for lab, d in segments])

    def level(rate: int, base: float, stress: float) -> np.ndarray:
        lab = per_rate(rate)
        return base + stress * (lab == 2) + 0.05 * rng.standard_normal(lab.shape[0])

    t64 = np.arange(total * 64) / 64.0
    hr_hz = np.where(per_rate(64) == 2, 1.5, 1.1)
    bvp = 50.0 * np.sin(2 * np.pi * np.cumsum(hr_hz) / 64.0) + rng.normal(0, 3, t64.shape[0])
    t700 = np.arange(total * 700) / 700.0
    chest = {
        "ACC": (np.array([0.9, 0.0, -0.3]) + 0.01 * rng.standard_normal((total * 700, 3))),
        "ECG": (np.sin(2 * np.pi * 1.2 * t700) ** 15 + 0.01 * rng.standard_normal(t700.shape))[:, None],
        "EMG": (0.01 * rng.standard_normal(total * 700))[:, None],
        "EDA": level(700, 3.0, 1.0)[:, None],
        "Temp": level(700, 34.0, 0.0)[:, None],
        "Resp": (5.0 * np.sin(2 * np.pi * 0.25 * t700))[:, None],
    }
    wrist = {
        "ACC": np.round(64 * (np.array([-0.2, 0.1, 0.97])
                              + 0.02 * rng.standard_normal((total * 32, 3)))),
        "BVP": bvp[:, None],
        "EDA": np.clip(level(4, 1.0, 0.5), 0.01, None)[:, None],
        "TEMP": level(4, 32.0, -0.3)[:, None],
    }
    cast = {k: np.asarray(v, dtype) for k, v in chest.items()}
    castw = {k: np.asarray(v, dtype) for k, v in wrist.items()}
    return {"subject": subject, "signal": {"chest": cast, "wrist": castw}, "label": labels}


def write_wesad_pickle(
    root: str | Path, data: dict[str, Any] | None = None, *, subject: str = "S2",
    protocol: int = 2, **kw: Any,
) -> Path:
    """Write ``data`` (default :func:`wesad_dict`) to ``root/S{n}/S{n}.pkl``; returns the path."""
    if data is None:
        data = wesad_dict(subject=subject, **kw)
    path = Path(root) / subject / f"{subject}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return path


def tiny_recording(tmp_dir: str | Path, **kw: Any) -> Any:
    """The :class:`core.recording.Recording` of a freshly written :func:`wesad_dict`."""
    from core.recording import load_wesad_subject

    return load_wesad_subject(write_wesad_pickle(tmp_dir, **kw))


class _Exploit:
    """Pickles as ``os.system(command)``: what a hostile 'WESAD file' could carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def malicious_pickle(command: str, *, protocol: int = 2) -> bytes:
    """A WESAD-looking pickle whose label would run ``command`` under plain ``pickle.load``."""
    data = wesad_dict(((1, 1),))
    data["label"] = _Exploit(command)
    return pickle.dumps(data, protocol=protocol)


def cached_synth_root(
    tmp_path_factory: Any, *, n_subjects: int = 3, minutes_scale: float = 0.25, seed: int = 0
) -> Path:
    """A synthetic WESAD tree generated once per pytest session (``tmp_path_factory``)."""
    from train.synth import generate_dataset

    base = Path(tmp_path_factory.getbasetemp())
    root = base / f"synth_wesad_n{n_subjects}_s{minutes_scale:g}_seed{seed}"
    done = root / ".complete"
    if not done.exists():
        generate_dataset(root, n_subjects, seed, minutes_scale=minutes_scale)
        done.touch()
    return root


def write_arrays_npz(
    path: str | Path,
    *,
    n: int = 40,
    channels: Sequence[str] = ("x", "y"),
    samples: int = 32,
    rate_hz: float = 8.0,
    str_labels: bool = False,
    with_split: bool = False,
    with_groups: bool = True,
    seed: int = 0,
    **extra: Any,
) -> Path:
    """A generic arrays ``.npz`` (X (N, C, T) float32, y, groups, split, channels, rate).

    Class 1 windows have a higher mean in channel 0 so a model can learn something. Extra
    keyword arrays are written as given (to build malformed files).
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(0.0, 1.0, (n, len(channels), samples)).astype(np.float32)
    X[:, 0, :] += 2.0 * y[:, None] + 5.0
    arrays: dict[str, Any] = {
        "X": X,
        "y": np.where(y == 1, "stress", "calm") if str_labels else y,
        "channels": np.asarray(channels),
        "sample_rate_hz": np.float64(rate_hz),
    }
    if with_groups:
        arrays["groups"] = np.asarray([f"P{i % 4}" for i in range(n)])
    if with_split:
        arrays["split"] = np.where(np.arange(n) < n * 3 // 4, "train", "test")
    arrays.update(extra)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    p = Path(path)
    np.savez(p, **arrays)
    return p
