"""A small deterministic wrist recording for the simulator when no file is given (numpy only).

Not a physiological model (training's synthetic generator is host-side): it gives each
WESAD wrist modality a plausible shape and level, changes them between the protocol
phases, and carries the phases as 700 Hz WESAD label codes, so a replayed stream has
ground truth to compare decisions with.

    baseline (1) -> stress (2) -> baseline (1) -> amusement (3) -> meditation (4)

Stress raises heart rate (BVP pulse rate), skin-conductance level and response rate and
arm movement; amusement raises them a little; meditation lowers them.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from core.recording import Recording, Signal

__all__ = ["PHASES", "synthetic_recording"]

LABEL_RATE_HZ: Final = 700.0  # WESAD stores its labels at the chest device's rate
# (label code, fraction of the session, heart rate bpm, EDA level uS, SCRs per minute, movement g)
PHASES: Final = (
    (1, 0.30, 68.0, 2.0, 1.0, 0.02),
    (2, 0.20, 92.0, 5.0, 6.0, 0.08),
    (1, 0.15, 72.0, 3.0, 2.0, 0.02),
    (3, 0.15, 78.0, 3.5, 3.0, 0.05),
    (4, 0.20, 62.0, 2.5, 0.5, 0.01),
)


def _phase_values(t: np.ndarray, duration_s: float, column: int) -> np.ndarray:
    edges = np.cumsum([0.0] + [p[1] for p in PHASES]) * duration_s
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(PHASES) - 1)
    return np.array([p[column] for p in PHASES])[idx]


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average of ``n`` samples, edges padded with the end values (no droop)."""
    padded = np.pad(x, (n // 2, n - 1 - n // 2), mode="edge")
    return np.convolve(padded, np.ones(n) / n, mode="valid")


def synthetic_recording(duration_s: float = 600.0, *, seed: int = 0, subject: str = "sim") -> Recording:
    """A wrist recording (bvp 64 Hz, eda 4 Hz, temp 4 Hz, acc 32 Hz) with 700 Hz labels."""
    rng = np.random.default_rng(seed)

    def t_of(rate: float) -> np.ndarray:
        return np.arange(round(duration_s * rate)) / rate  # (N,)

    t_bvp = t_of(64.0)
    hr = _phase_values(t_bvp, duration_s, 2) + rng.normal(0, 2, t_bvp.size).cumsum() * 0.01
    phase = 2 * np.pi * np.cumsum(hr / 60.0) / 64.0
    bvp = 60 * np.sin(phase) + 25 * np.sin(2 * phase + 0.8) + rng.normal(0, 4, t_bvp.size)

    t_eda = t_of(4.0)
    level = _phase_values(t_eda, duration_s, 3)
    scr_rate = _phase_values(t_eda, duration_s, 4) / 60.0 / 4.0  # SCR onsets per sample
    onsets = (rng.random(t_eda.size) < scr_rate).astype(float)
    kernel_t = np.arange(0, 20, 0.25)
    kernel = (1 - np.exp(-kernel_t / 0.75)) * np.exp(-kernel_t / 4.0)
    phasic = np.convolve(onsets, kernel)[: t_eda.size] * 0.8
    tonic = _smooth(level, 120)  # 30 s: tonic level follows the phase slowly
    eda = np.clip(tonic + phasic + rng.normal(0, 0.01, t_eda.size), 0.05, None)

    temp = 33.0 - 0.3 * (_phase_values(t_eda, duration_s, 0) == 2) + rng.normal(0, 0.02, t_eda.size)
    temp = _smooth(temp, 40)

    t_acc = t_of(32.0)
    move = _phase_values(t_acc, duration_s, 5)
    acc = np.stack(
        [
            -0.2 + move * rng.normal(0, 1, t_acc.size),
            0.1 + move * rng.normal(0, 1, t_acc.size),
            0.97 + move * rng.normal(0, 1, t_acc.size),
        ],
        axis=1,
    )  # (N, 3) g, wrist resting palm-down

    t_lab = t_of(LABEL_RATE_HZ)
    labels = _phase_values(t_lab, duration_s, 0).astype(np.int8)[:, None]  # (N, 1)
    return Recording(
        subject=subject,
        signals={
            "bvp": Signal(64.0, bvp[:, None], "a.u.", ("bvp",)),
            "eda": Signal(4.0, eda[:, None], "uS", ("eda",)),
            "temp": Signal(4.0, temp[:, None], "degC", ("temp",)),
            "acc": Signal(32.0, acc, "g", ("x", "y", "z")),
        },
        labels=Signal(LABEL_RATE_HZ, labels, "code", ("label",)),
        meta={"source": "firmware_bridge.sim.synthetic", "seed": seed, "duration_s": duration_s},
    )
