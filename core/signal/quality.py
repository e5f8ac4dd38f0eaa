"""Quality: the rules that make a window invalid, and the measurements they rest on.

A window the model must not see is not dropped: it is emitted with every
:class:`InvalidReason` found (most severe first), so the hub can count and report why. The
measurements (nominal spacing, longest sample-free stretch, pinned runs) are functions of the
window's own samples only, which keeps windows independent of how the stream was chunked.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from core.contract import Modality
from core.signal.resample import FloatArray

__all__ = [
    "MEDIAN_SPACING_SAMPLES",
    "SEVERITY",
    "InvalidReason",
    "QualityThresholds",
    "max_gap",
    "median_spacing",
    "median_spacing_of_times",
    "quality_problems",
    "run_samples",
]

# Diffs used to estimate a window's nominal sample spacing when the source rate is not
# declared: 256 pin the median to within a few % of jitter, at 1/15 the cost of all of BVP's.
MEDIAN_SPACING_SAMPLES: Final = 256


@dataclass(frozen=True)
class QualityThresholds:
    """Signal-quality rules that invalidate a window (FLAT, SATURATED)."""

    # std below this (relative to max(1, largest |value|)) is a constant channel: float32 carries
    # ~1e-7 relative rounding, so anything smaller is the same number repeated
    flat_std: float = 1e-6
    # more than 5 % of a window clipped or out of range loses waveform shape the model needs
    saturated_fraction: float = 0.05
    # a run at the window's min/max this long is a rail, not a peak (peaks last ~1 sample)
    pinned_min_run_s: float = 0.5
    pinned_min_run_samples: int = 3  # ... and at least this many samples, for slow sources
    # a channel with fewer distinct values than this in a window is quantization-limited (skin
    # temperature at 0.02 degC steps): its min/max runs are resting levels, not clipping
    pinned_min_levels: int = 16


class InvalidReason(enum.StrEnum):
    """Why a window must not be classified."""

    GAP = "gap"
    LOW_COVERAGE = "low_coverage"
    MISSING_MODALITY = "missing_modality"
    NON_FINITE = "non_finite"
    FLAT = "flat"
    SATURATED = "saturated"
    UNCALIBRATED = "uncalibrated"
    # beats modalities (core.rr.RRInvalidReason: the same words)
    NO_CONTACT = "no_contact"  # the device reported no skin contact
    IMPLAUSIBLE = "implausible"  # an RR interval outside the plausible range survived cleaning
    ARTIFACTS = "artifacts"  # too large a share of the intervals had to be corrected


# most severe first: the cause a person should fix first
SEVERITY: Final = (
    InvalidReason.NO_CONTACT,
    InvalidReason.MISSING_MODALITY,
    InvalidReason.NON_FINITE,
    InvalidReason.GAP,
    InvalidReason.LOW_COVERAGE,
    InvalidReason.IMPLAUSIBLE,
    InvalidReason.ARTIFACTS,
    InvalidReason.SATURATED,
    InvalidReason.FLAT,
    InvalidReason.UNCALIBRATED,
)


def quality_problems(m: Modality, xc: FloatArray, dt_nom: float, q: QualityThresholds
                     ) -> list[tuple[InvalidReason, str]]:
    """FLAT / SATURATED checks on the raw finite samples inside the window, xc (C, n)."""
    out: list[tuple[InvalidReason, str]] = []
    n = xc.shape[1]
    hi_v = xc.max(axis=1)  # (C,)
    lo_v = xc.min(axis=1)  # (C,)
    thr = q.flat_std * np.maximum(1.0, np.maximum(np.abs(hi_v), np.abs(lo_v)))  # (C,)
    # var >= ptp^2 / (2n), so a channel whose range clears this bound cannot be flat:
    # the std is only computed for the rare near-constant channel
    maybe = (hi_v - lo_v) ** 2 < 2 * n * thr**2
    flat = np.zeros(xc.shape[0], bool)
    if maybe.any():
        flat[maybe] = xc[maybe].std(axis=1) < thr[maybe]
    if flat.any():
        chans = [m.channels[c] for c in np.flatnonzero(flat)]
        out.append((InvalidReason.FLAT, f"{m.name}: flat channel(s) {chans} "
                                        f"(range {float((hi_v - lo_v)[flat].max()):.3g})"))
    lo, hi = m.valid_range
    lim = q.saturated_fraction * n
    if (math.isfinite(lo) and lo_v.min() < lo) or (math.isfinite(hi) and hi_v.max() > hi):
        outside = int(np.count_nonzero(((xc < lo) | (xc > hi)).any(axis=0)))
        if outside > lim:
            out.append((InvalidReason.SATURATED,
                        f"{m.name}: {outside / n:.1%} of samples outside {m.valid_range}"))
            return out
    # a rail is a value many samples sit at; a peak is one sample, so most windows stop here
    n_hi = np.count_nonzero(xc == hi_v[:, None], axis=1)  # (C,)
    n_lo = np.count_nonzero(xc == lo_v[:, None], axis=1)  # (C,)
    suspects = [(int(c), float(hi_v[c])) for c in np.flatnonzero((n_hi > lim) & ~flat)]
    suspects += [(int(c), float(lo_v[c])) for c in np.flatnonzero((n_lo > lim) & ~flat)]
    if not suspects:
        return out
    min_run = max(q.pinned_min_run_samples,
                  math.ceil(q.pinned_min_run_s / dt_nom) if math.isfinite(dt_nom) else 0)
    for c, rail in suspects:
        col = xc[c]
        pinned = run_samples(col == rail, min_run)
        if pinned > lim and np.unique(col).size >= q.pinned_min_levels:
            out.append((InvalidReason.SATURATED,
                        f"{m.name}.{m.channels[c]}: {pinned / n:.1%} of samples pinned "
                        f"at {rail:.4g} in runs >= {min_run}"))
            return out
    return out


def median_spacing(d: FloatArray) -> float:
    """Nominal sample spacing: the (upper) median of at most ~MEDIAN_SPACING_SAMPLES diffs.

    Subsampled with a fixed stride, so it is cheap and still a function of the window's
    samples alone; robust to jitter and to gaps.
    """
    sub = d[:: max(1, d.size // MEDIAN_SPACING_SAMPLES)]
    return float(np.partition(sub, sub.size // 2)[sub.size // 2])


def median_spacing_of_times(t: FloatArray) -> float:
    """:func:`median_spacing` of ``np.diff(t)`` (same value), reading only the diffs it uses."""
    s = max(1, (t.size - 1) // MEDIAN_SPACING_SAMPLES)
    sub = t[1::s] - t[:-1:s]
    return float(np.partition(sub, sub.size // 2)[sub.size // 2])


def max_gap(t: FloatArray, start: float, end: float) -> tuple[float, float]:
    """Longest stretch of ``[start, end)`` without a sample: (length, where it begins).

    Only the part of a gap inside the window counts: that is the time the window's data
    has to be interpolated (or held, at an edge) over.
    """
    best, at = 0.0, start
    if t[0] > start:
        best = float(min(t[0], end) - start)
    if t[-1] < end and end - t[-1] > best:
        best, at = float(end - max(t[-1], start)), float(t[-1])
    # intervals (t[j], t[j+1]) overlapping the window: t[j+1] > start and t[j] < end
    ja = max(int(np.searchsorted(t, start, side="right")) - 1, 0)
    jb = min(int(np.searchsorted(t, end, side="left")), t.size - 1)
    if jb > ja:
        inside = np.minimum(t[ja + 1 : jb + 1], end) - np.maximum(t[ja:jb], start)
        j = int(np.argmax(inside))
        if inside[j] > best:
            best, at = float(inside[j]), float(t[ja + j])
    return best, at


def run_samples(mask: np.ndarray, min_run: int) -> int:
    """Number of True samples that belong to runs of at least ``min_run`` consecutive Trues."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    lengths = stops - starts
    return int(lengths[lengths >= min_run].sum())

