"""Sensor-signal augmentation of packed training batches (numpy, deterministic per generator).

A batch is ``(B, L)`` packed under an input contract; every modality of one window gets the
same time transform (so modalities stay aligned in seconds) and its own gains:

- time: a random crop keeping ``crop_min``..1 of the window, stretched back to full length,
  composed with a smooth monotonic time warp (speed knots ~ LogNormal(0, ``time_warp``));
- magnitude: a per-channel gain ~ N(1, ``scale``) times a smooth gain curve whose knots are
  ~ N(1, ``magnitude_warp``);
- jitter: additive N(0, ``jitter``) noise (inputs are normalized, so this is relative).

Each of time, scaling, magnitude warp and jitter touches a window with probability ``p``. Draws come only from the
generator passed in, so a seeded loop sees the same augmented batches on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from core.contract import InputContract

__all__ = ["AugmentConfig", "Layout", "augment_batch", "layout_for"]

WARP_GRID: Final = 64  # resolution of the time-warp map; far finer than its few knots


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the augmentations (0 turns one off)."""

    p: float = 0.5  # probability that each augmentation touches a window
    jitter: float = 0.03  # noise sd in normalized units
    scale: float = 0.1  # sd of a channel's gain
    magnitude_warp: float = 0.1  # sd of the smooth gain curve's knots
    time_warp: float = 0.1  # sd of log speed at the warp knots
    crop_min: float = 0.9  # shortest crop, as a fraction of the window (1: no crop)
    knots: int = 4  # interior knots of the warp curves

    @property
    def active(self) -> bool:
        return self.p > 0 and (
            self.jitter > 0
            or self.scale > 0
            or self.magnitude_warp > 0
            or self.time_warp > 0
            or self.crop_min < 1
        )


Layout = Sequence[tuple[int, int, int]]  # per modality: (offset, channels, samples)


def layout_for(contract: InputContract, names: Sequence[str]) -> Layout:
    """Where ``names`` sit in ``contract``'s packed vector: what a model reads, so only
    its own columns are augmented."""
    return tuple(
        (s.offset, s.modality.n_channels, s.samples)
        for s in contract.layout()
        if s.modality.name in names
    )


def _smooth(knots: np.ndarray, n: int) -> np.ndarray:
    """(B, K) knot values -> (B, n) piecewise-linear curves through them, ends included."""
    K = knots.shape[1]
    xk = np.linspace(0.0, 1.0, K)
    xs = np.linspace(0.0, 1.0, n)
    pos = np.interp(xs, xk, np.arange(K, dtype=np.float64))  # (n,) fractional knot index
    lo = np.minimum(np.floor(pos).astype(np.int64), K - 2)
    frac = pos - lo
    return knots[:, lo] * (1.0 - frac) + knots[:, lo + 1] * frac


def _time_maps(cfg: AugmentConfig, B: int, rng: np.random.Generator) -> np.ndarray:
    """(B, WARP_GRID) input time in [0, 1] for each output time on the grid."""
    maps = np.tile(np.linspace(0.0, 1.0, WARP_GRID), (B, 1))
    if cfg.time_warp > 0:
        speed = _smooth(np.exp(rng.normal(0.0, cfg.time_warp, (B, cfg.knots + 2))), WARP_GRID)
        cum = np.concatenate([np.zeros((B, 1)), np.cumsum(speed[:, 1:] + speed[:, :-1], 1)], 1)
        maps = cum / cum[:, -1:]
    if cfg.crop_min < 1:
        keep = rng.uniform(cfg.crop_min, 1.0, B)
        start = rng.uniform(0.0, 1.0, B) * (1.0 - keep)
        maps = start[:, None] + keep[:, None] * maps
    return maps


def _resample(x: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """(B, C, T) read at input times ``maps`` (B, G) in [0, 1] -> (B, C, T)."""
    B, C, T = x.shape
    if T < 2:
        return x
    G = maps.shape[1]
    g = np.linspace(0.0, G - 1, T)  # output sample -> fractional grid index
    g0 = np.minimum(g.astype(np.int64), G - 2)
    gf = g - g0
    pos = (maps[:, g0] * (1.0 - gf) + maps[:, g0 + 1] * gf) * (T - 1)  # (B, T)
    lo = np.clip(pos.astype(np.int64), 0, T - 2)
    frac = np.clip(pos - lo, 0.0, 1.0).astype(x.dtype)[:, None, :]  # (B, 1, T)
    flat = x.reshape(B * C, T)
    rows = (np.arange(B * C) * T).reshape(B, C, 1)
    ix = (rows + lo[:, None, :]).reshape(-1)  # flat indices of the left neighbours
    a = flat.reshape(-1)[ix].reshape(B, C, T)
    b = flat.reshape(-1)[ix + 1].reshape(B, C, T)
    return a + (b - a) * frac


def augment_batch(
    x: np.ndarray, layout: Layout, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Augment the ``layout`` columns of a float32 ``(B, L)`` batch in place; returns it."""
    out = x
    if not cfg.active or out.shape[0] == 0:
        return out
    B = out.shape[0]
    timed = np.flatnonzero(rng.random(B) < cfg.p) if cfg.time_warp > 0 or cfg.crop_min < 1 else []
    maps = _time_maps(cfg, len(timed), rng) if len(timed) else None
    for offset, c, t in layout:
        cols = slice(offset, offset + c * t)
        if maps is not None:
            xm = out[timed, cols].reshape(len(timed), c, t)  # (b, C, T)
            out[timed, cols] = _resample(xm, maps).reshape(len(timed), c * t)
        if cfg.scale > 0:
            rows = np.flatnonzero(rng.random(B) < cfg.p)
            g = rng.normal(1.0, cfg.scale, (len(rows), c, 1)).astype(np.float32)
            xm = out[rows, cols].reshape(len(rows), c, t)
            out[rows, cols] = (xm * g).reshape(len(rows), c * t)
        if cfg.magnitude_warp > 0:
            rows = np.flatnonzero(rng.random(B) < cfg.p)
            knots = rng.normal(1.0, cfg.magnitude_warp, (len(rows) * c, cfg.knots + 2))
            curve = _smooth(knots, t).astype(np.float32).reshape(len(rows), c, t)
            xm = out[rows, cols].reshape(len(rows), c, t)
            out[rows, cols] = (xm * curve).reshape(len(rows), c * t)
        if cfg.jitter > 0:
            rows = np.flatnonzero(rng.random(B) < cfg.p)
            noise = rng.standard_normal((len(rows), c * t), dtype=np.float32)
            out[rows, cols] += np.float32(cfg.jitter) * noise
    return out
