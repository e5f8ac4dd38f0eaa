"""Shared preprocessing: multi-rate streams -> normalized, validated, fixed-size windows.

The ONE implementation used by training (``train/``) and by the hub (``edge-daemon``).
numpy only. Train/serve skew is a bug: never re-implement any of this elsewhere.

API (stable; other modules code against it):

- ``Calibration``: per-modality per-channel ``center``/``scale`` (float64 arrays, shape (C,))
  plus ``source`` text; ``to_dict``/``from_dict``; ``compute_calibration(streams, contract)``
  computes it from the first ``contract.normalization.calibration_s`` seconds of each
  modality (median, and a robust spread: IQR/1.349 with a floor so a flat channel cannot
  divide by ~0). Raises ``CalibrationError`` when a modality has too little data.
  ``CalibrationAccumulator(contract)``: the streaming version used for enrollment on the
  hub (``push(name, timestamps, values)``, ``ready``, ``progress()``, ``result()``); its
  result equals ``compute_calibration`` on the same samples exactly.
- ``Stream``: ``timestamps`` (N,) float64 seconds (hub or recording time, increasing) and
  ``values`` (N, C) float32/float64 in the contract's unit; optional ``rate_hz`` (nominal
  source rate). Wherever a stream is accepted, a ``(timestamps, values)`` tuple is too.
- ``WindowAssembler(contract, *, origin=0.0, calibration=None)``: streaming, chunk-invariant.
  ``push(name, timestamps, values)`` appends samples of one modality (any chunk size, any
  interleaving of modalities); ``pop_ready() -> list[Window]`` returns windows whose end
  (plus the resampling margin) is covered by every modality, in time order; ``flush()``
  returns the remaining complete-or-invalid windows at end of stream. Window k spans
  ``[origin + k*hop_s, origin + k*hop_s + window_s)``. Data of a window is computed only from
  the raw samples inside its span (plus a fixed margin), so the result does not depend on how
  the stream was chunked. Old raw samples are discarded once no future window needs them
  (bounded memory).
  Extra keyword arguments (additions): ``source_rates`` (name -> nominal source Hz; else
  estimated per window from the median sample spacing), ``max_buffer_s`` (bound on the raw
  data one modality holds, in seconds of data, for when another modality stalls; default
  window + margins + 2 min; ``None`` = unbounded),
  ``quality`` (:class:`QualityThresholds`). ``stats`` (:class:`AssemblerStats`) counts every
  dropped or discarded sample and every skipped window; ``buffered_samples()`` reports memory;
  ``margin_s(name)`` is the fixed margin (also the emission latency beyond a window's end).
- ``Window``: ``start``, ``end`` (seconds), ``index`` (k), ``data: dict[name, (C, T) float32]``
  (resampled to the contract's rates, gaps ≤ max_gap_s interpolated, normalized), ``valid:
  bool``, ``reason: InvalidReason | None``, ``detail: str``; additions: ``reasons`` (every
  problem found, most severe first) and ``coverage`` (name -> fraction). ``data`` never holds
  NaN/inf: a missing modality is all zeros (and the window is invalid).
- ``InvalidReason`` (str Enum): ``GAP``, ``LOW_COVERAGE``, ``MISSING_MODALITY``,
  ``NON_FINITE``, ``FLAT``, ``SATURATED``, ``UNCALIBRATED``. When several apply, ``reason`` is
  the most severe in the order MISSING_MODALITY, NON_FINITE, GAP, LOW_COVERAGE, SATURATED,
  FLAT, UNCALIBRATED; ``detail`` names modality and numbers for each.
- Pure helpers (tested with hypothesis): ``resample_to_grid(t, x, grid, src_hz, dst_hz)``
  (anti-aliasing low-pass when downsampling, then interpolation on the grid),
  ``find_gaps(t, max_gap_s)``, ``normalize(x, center, scale, clip)``,
  ``sliding_window_starts(t0, t1, window_s, hop_s)``; ``fir_taps(src_hz, dst_hz)`` exposes
  the anti-aliasing filter for reports.
- ``windows_from_streams(streams, contract, *, origin=0.0, calibration=None,
  source_rates=None, quality=None) -> list[Window]``: the offline path used by training;
  pushes everything to a ``WindowAssembler`` (no stall cap) and flushes. Streams of
  modalities the contract does not name are ignored; ``Stream.rate_hz`` declares a source
  rate. ``window_margin_s(contract, name)`` and ``scale_floor(unit)`` expose the constants.

Semantics (the details other modules may rely on):

- Margin. Modality m keeps ``window_margin_s = FIR_HALF_PERIODS / rate_m + max_gap_s`` of
  raw context on each side of a window (wrist: BVP 1.25 s, ACC 1.5 s, EDA/TEMP 5 s). A
  window is emitted by ``pop_ready`` once every modality has a sample at or past
  ``end + margin``, so the margin is also the emission latency.
- Resampling. Downsampling (source faster than ``(1 + DOWNSAMPLE_TOLERANCE)`` x the target)
  interpolates the raw samples linearly, from their actual timestamps, onto a uniform grid at
  ``M`` times the target rate (``M = ceil(src/dst)``) aligned with the window's target grid,
  then applies a Hamming-windowed-sinc FIR (cutoff ``FIR_CUTOFF`` x dst, half-length
  ``FIR_HALF_PERIODS`` target periods; flat to 0.4 x dst, >= 46 dB down from 0.5 x dst)
  evaluated only at the target points. Otherwise the raw samples are interpolated straight
  onto the grid, so regular data at the target rate passes through bit-exactly. The source
  rate is ``source_rates[name]`` if declared, else 1 / (median sample spacing in the window).
- Gaps. NaN/inf rows are dropped (treated as missing samples) and every gap is bridged
  linearly (edge values held before the first / after the last sample). The gap measure is
  the longest sample-free stretch *inside* ``[start, end)``; above ``max_gap_s`` the window
  is invalid (GAP, or NON_FINITE when the stretch exists only because values were
  non-finite). Coverage = finite samples inside the window x nominal spacing / window_s.
- Quality: FLAT when a channel's std < ``flat_std`` x max(1, |value|); SATURATED when more
  than ``saturated_fraction`` of samples are outside ``Modality.valid_range`` or sit at the
  window's min/max in runs >= ``pinned_min_run_s`` (only for channels with at least
  ``pinned_min_levels`` distinct values: slow quantized signals rest at their extremes).
- Input hygiene (counted in ``stats``): samples with a non-finite timestamp or a timestamp
  not later than an earlier one of the same modality are dropped; samples earlier than
  ``origin - margin`` are dropped. Per-sample timestamps must be strictly increasing, so a
  BLE source must spread a packet's samples over time, not stamp them all alike.
- Windows with no sample of any modality (device off) are skipped and counted, never
  emitted; a long silence costs no work per skipped window.
- Stall cap: a modality holding more than ``max_buffer_s`` of data (gaps excluded) while a
  window waits for another modality drops its oldest samples (counted in
  ``stats.discarded_stalled``, logged). Chunk invariance holds whenever the cap is not hit,
  so pushing long whole streams one after another into a default assembler would hit it:
  use ``windows_from_streams`` (no cap) or ``max_buffer_s=None`` for that.
- ``flush()`` ends the stream: it emits every window ending by the latest sample of any
  modality + ``max_gap_s``; modalities that stopped earlier make those windows invalid.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from edge.contract import InputContract, Modality
from edge.errors import CalibrationError, ContractError

__all__ = [
    "CALIBRATION_SCHEMA",
    "DOWNSAMPLE_TOLERANCE",
    "FIR_CUTOFF",
    "FIR_HALF_PERIODS",
    "AssemblerStats",
    "Calibration",
    "CalibrationAccumulator",
    "InvalidReason",
    "QualityThresholds",
    "Stream",
    "Window",
    "WindowAssembler",
    "compute_calibration",
    "find_gaps",
    "fir_taps",
    "normalize",
    "resample_to_grid",
    "scale_floor",
    "sliding_window_starts",
    "window_margin_s",
    "windows_from_streams",
]

logger = logging.getLogger(__name__)

FloatArray: TypeAlias = NDArray[np.float64]

# -- constants ----------------------------------------------------------------------------
# Anti-aliasing FIR. A Hamming window spanning 2*16 target periods has a transition band of
# about 3.3/(32/dst) ~= 0.1*dst, so with the cutoff at 0.45*dst the filter passes <= 0.4*dst
# flat and is >= ~50 dB down from 0.5*dst (the new Nyquist) on. 16 periods is also the
# margin the FIR adds on each side of a window (0.25 s at 64 Hz, 4 s at 4 Hz).
FIR_HALF_PERIODS: Final = 16
FIR_CUTOFF: Final = 0.45  # fraction of the target rate: centres the transition band on 0.45..0.5
# A source at most 5 % faster than the target is interpolated without filtering: the few
# aliased components fold into the top 5 % of the band, which the models do not use.
DOWNSAMPLE_TOLERANCE: Final = 0.05
# Float slack on time comparisons (timestamps are float64 seconds; 1 ns is far below any
# sample period and far above float64 rounding of times up to ~1e6 s).
TIME_EPS: Final = 1e-9
# Offline path: stream seconds pushed per modality before popping windows, so the raw buffer
# never holds more than about a minute of a 45-minute recording (and never hits the stall cap).
OFFLINE_BLOCK_S: Final = 60.0
# Default stall allowance beyond what one window needs: two minutes of one modality running
# ahead of another is far more than BLE delivery skew (seconds), so only a real stall hits it.
STALL_SLACK_S: Final = 120.0
# The stall cap is enforced only when exceeded by 10 %, so a stalled stream costs one
# buffer copy per ~0.1*max_buffer_s of data instead of one per pushed packet.
STALL_HYSTERESIS: Final = 0.1
# Diffs used to estimate a window's nominal sample spacing when the source rate is not
# declared: 256 pin the median to within a few % of jitter, at 1/15 the cost of all of BVP's.
MEDIAN_SPACING_SAMPLES: Final = 256
# An estimated source rate within 15 % of the target rate is taken to be the target rate:
# with +-0.45-period jitter the median of a 4 Hz window's ~30 spacings wanders by ~10 %,
# while a device really 15 % off its declared rate would be a contract mismatch anyway.
RATE_SNAP: Final = 0.15
CALIBRATION_SCHEMA: Final = 1  # version of Calibration.to_dict(); bump on meaning changes
IQR_TO_SIGMA: Final = 1.349  # IQR of a unit normal: IQR/1.349 estimates sigma robustly

# Floor of a calibration scale, per unit, so a flat baseline cannot make normalization
# divide by ~0. Each is a spread below which differences are sensor resolution or drift,
# not physiology.
SCALE_FLOOR_BY_UNIT: Final[Mapping[str, float]] = {
    "uS": 0.01,  # 0.01 uS: the usual minimum amplitude of a skin-conductance response
    "degC": 0.1,  # 0.1 degC: within skin-temperature sensor drift over a session
    "g": 0.01,  # 0.01 g: below one LSB (1/64 g) of the E4's accelerometer
    "mV": 0.01,  # 0.01 mV: ECG/EMG amplifier noise floor
    "%": 0.1,  # 0.1 % of respiration-belt range: belt noise
    "bpm": 0.5,  # heart rate: half a beat per minute, below HR resolution of most straps
    "ms": 1.0,  # RR intervals: the 1/1024 s resolution of the BLE Heart Rate profile
    "a.u.": 1e-3,  # arbitrary units (BVP): only guards against an exactly constant channel
}
SCALE_FLOOR_DEFAULT: Final = 1e-3  # unknown unit: only guards against a constant channel


def scale_floor(unit: str) -> float:
    """Smallest calibration scale allowed for a channel in ``unit``."""
    return SCALE_FLOOR_BY_UNIT.get(unit, SCALE_FLOOR_DEFAULT)


@dataclass(frozen=True)
class QualityThresholds:
    """Signal-quality rules that invalidate a window (FLAT, SATURATED)."""

    # std below this (relative to max(1, |mean|)) is a constant channel: float32 values carry
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


# most severe first: the cause a person should fix first
_SEVERITY: Final = (
    InvalidReason.MISSING_MODALITY,
    InvalidReason.NON_FINITE,
    InvalidReason.GAP,
    InvalidReason.LOW_COVERAGE,
    InvalidReason.SATURATED,
    InvalidReason.FLAT,
    InvalidReason.UNCALIBRATED,
)


# -- streams ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stream:
    """Raw samples of one modality."""

    timestamps: np.ndarray  # (N,) float64 seconds, increasing
    values: np.ndarray  # (N, C) in the contract's unit
    rate_hz: float | None = None  # nominal source rate, if known (else estimated)


StreamLike: TypeAlias = Stream | tuple[ArrayLike, ArrayLike]


def _as_stream(s: StreamLike) -> Stream:
    if isinstance(s, Stream):
        return s
    t, v = s
    return Stream(np.asarray(t), np.asarray(v))


def _coerce(name: str, n_channels: int, timestamps: ArrayLike, values: ArrayLike
            ) -> tuple[FloatArray, FloatArray]:
    """Validate one chunk: ``(N,)`` float64 times and ``(N, C)`` float64 values."""
    t = np.asarray(timestamps, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if t.ndim != 1:
        raise ContractError(f"timestamps must be 1-D, got shape {t.shape}", field=name)
    if x.ndim == 1 and n_channels == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape != (t.shape[0], n_channels):
        raise ContractError(
            f"values shape {x.shape} != ({t.shape[0]}, {n_channels}) (N samples, channels)",
            field=name,
        )
    return t, x


def _keep_increasing(t: FloatArray, prev_max: float) -> tuple[np.ndarray, int, int]:
    """Mask of samples to keep: finite time, strictly later than every earlier sample.

    Returns (keep mask, dropped for non-finite time, dropped as out of order). The rule only
    looks at earlier samples, so it gives the same answer however the stream is chunked.
    """
    if t[0] > prev_max and math.isfinite(t[-1]) and (t.size == 1 or bool((t[1:] > t[:-1]).all())):
        return np.ones(t.size, bool), 0, 0  # the usual chunk: nothing to drop
    finite = np.isfinite(t)
    n_bad_time = int(t.size - np.count_nonzero(finite))
    tf = np.where(finite, t, -np.inf)
    running = np.maximum.accumulate(np.concatenate(([prev_max], tf)))
    keep = finite & (tf > running[:-1])
    return keep, n_bad_time, int(np.count_nonzero(finite) - np.count_nonzero(keep))


def window_margin_s(contract: InputContract, name: str) -> float:
    """Raw context kept on each side of a window for modality ``name`` (seconds).

    The FIR needs ``FIR_HALF_PERIODS`` target periods on each side of the target grid, and
    interpolating across a gap that straddles a window edge needs up to ``max_gap_s`` more.
    It is fixed per contract, which is what makes windows chunk-invariant, and it is also the
    latency between a window's end and its emission.
    """
    m = contract.modality(name)
    return FIR_HALF_PERIODS / m.rate_hz + contract.max_gap_s


# -- pure helpers -------------------------------------------------------------------------
def sliding_window_starts(t0: float, t1: float, window_s: float, hop_s: float) -> FloatArray:
    """Starts ``t0 + k*hop_s`` of every window that fits entirely in ``[t0, t1]``."""
    if hop_s <= 0 or window_s <= 0:
        raise ValueError("window_s and hop_s must be positive")
    n = math.floor((t1 - t0 - window_s) / hop_s + TIME_EPS) + 1
    if n <= 0:
        return np.zeros(0, np.float64)
    return t0 + np.arange(n, dtype=np.float64) * hop_s


def find_gaps(t: ArrayLike, max_gap_s: float) -> FloatArray:
    """Gaps longer than ``max_gap_s`` between consecutive timestamps.

    Returns ``(G, 2)`` float64 rows ``[last sample before, first sample after]``.
    """
    ta = np.asarray(t, dtype=np.float64)
    if ta.size < 2:
        return np.zeros((0, 2), np.float64)
    d = np.diff(ta)
    i = np.flatnonzero(d > max_gap_s)
    return np.stack([ta[i], ta[i + 1]], axis=1)


def normalize(x: ArrayLike, center: ArrayLike, scale: ArrayLike, clip: float) -> np.ndarray:
    """``(x - center) / scale`` per channel, clipped to ``±clip``; ``x`` (C, T) -> float32."""
    xa = np.asarray(x, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64).reshape(-1, 1)  # (C, 1)
    s = np.asarray(scale, dtype=np.float64).reshape(-1, 1)  # (C, 1)
    y = xa - c
    y /= s
    np.minimum(y, clip, out=y)
    np.maximum(y, -clip, out=y)
    return y.astype(np.float32)


def _decimation(src_hz: float, dst_hz: float) -> int:
    """Oversampling factor M of the intermediate grid; 1 means 'no anti-aliasing needed'."""
    ratio = src_hz / dst_hz
    if not ratio > 1.0 + DOWNSAMPLE_TOLERANCE:
        return 1
    # M >= ratio keeps the intermediate grid at least as fast as the source; rounding a
    # slightly jittered estimate either way is harmless since anything folding back from
    # above the intermediate Nyquist lands far above the FIR's passband.
    return max(2, math.ceil(ratio - DOWNSAMPLE_TOLERANCE))


@functools.lru_cache(maxsize=128)
def _polyphase_kernel(m: int) -> FloatArray:
    """Windowed-sinc low-pass at rate ``m*dst`` as a ``(2H+1, m)`` polyphase matrix.

    Row ``j`` holds taps ``j*m .. j*m + m - 1`` (the kernel zero-padded to ``(2H+1)*m``).

    Depends only on ``m`` because cutoff and length are fixed in target periods, so this is
    the per-(src_rate, dst_rate) kernel, computed once per process.
    """
    h = FIR_HALF_PERIODS
    n = 2 * h * m + 1
    k = np.arange(n, dtype=np.float64) - h * m
    taps = np.sinc(2.0 * FIR_CUTOFF * k / m) * np.hamming(n)
    taps /= taps.sum()  # unit DC gain: a constant passes unchanged
    padded = np.zeros((2 * h + 1) * m, np.float64)
    padded[:n] = taps
    out = padded.reshape(2 * h + 1, m)  # (Q, M): tap q*M + r
    out.setflags(write=False)
    return out


def fir_taps(src_hz: float, dst_hz: float) -> tuple[int, FloatArray] | None:
    """The anti-aliasing FIR used from ``src_hz`` to ``dst_hz``: ``(M, taps)``, or ``None``.

    ``taps`` (2*FIR_HALF_PERIODS*M + 1,) run at ``M * dst_hz``; ``None`` when no filter is
    applied (not downsampling). For reports and tests.
    """
    m = _decimation(src_hz, dst_hz)
    if m == 1:
        return None
    return m, _polyphase_kernel(m).reshape(-1)[: 2 * FIR_HALF_PERIODS * m + 1].copy()


def _interp_channels(t: FloatArray, xc: FloatArray, q: FloatArray) -> FloatArray:
    """Linear interpolation of each row of ``xc`` (C, N) at ``q`` (Q,) -> (C, Q).

    Outside ``[t[0], t[-1]]`` the edge value is held.
    """
    if t.size == 1:
        return np.repeat(xc, q.size, axis=1)
    out = np.empty((xc.shape[0], q.size), np.float64)
    for c in range(xc.shape[0]):
        out[c] = np.interp(q, t, xc[c])
    return out


def _resample(t: FloatArray, xc: FloatArray, start: float, n_out: int, dst_hz: float, m: int
              ) -> FloatArray:
    """Raw finite samples ``t`` (N,), ``xc`` (C, N) -> ``(C, n_out)`` on ``start + i/dst``."""
    if m == 1:
        grid = start + np.arange(n_out, dtype=np.float64) / dst_hz
        return _interp_channels(t, xc, grid)
    kern = _polyphase_kernel(m)  # (Q, M)
    q = kern.shape[0]
    rows = n_out + q - 1
    # intermediate grid at m*dst: sample h*m + i*m sits exactly on target point i
    tu = (start - FIR_HALF_PERIODS / dst_hz) + np.arange(rows * m, dtype=np.float64) / (
        dst_hz * m
    )
    u = _interp_channels(t, xc, tu).reshape(xc.shape[0], rows, m)  # (C, R, M)
    # y[c, i] = sum_{j, r} u[c, i + j, r] * kern[j, r]: a sliding view (no copy) contracted
    # by einsum's own loops. Not matmul: multi-threaded BLAS on these small products is ~50x
    # slower on a busy machine, and einsum's fixed summation order keeps results bit-stable.
    view = sliding_window_view(u, q, axis=1)  # (C, T, M, Q)
    return np.einsum("ctmq,qm->ct", view, kern)  # (C, T)


def resample_to_grid(t: ArrayLike, x: ArrayLike, grid: ArrayLike, src_hz: float | None,
                     dst_hz: float) -> FloatArray:
    """Resample samples ``x`` taken at times ``t`` onto ``grid`` (uniform at ``dst_hz``).

    ``t`` (N,) increasing seconds (jitter allowed); ``x`` (N,) or (N, C); ``grid`` (T,)
    ``= grid[0] + arange(T)/dst_hz``. Rows with NaN/inf are treated as missing and bridged
    linearly. When ``src_hz`` (``None``: estimated from the median spacing) exceeds the target
    rate, a windowed-sinc low-pass with cutoff ``FIR_CUTOFF*dst_hz`` is applied first. Outside
    the data the edge value is held. Returns float64 of ``x``'s layout: (T,) or (T, C).
    """
    ta = np.asarray(t, dtype=np.float64)
    xa = np.asarray(x, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    squeeze = xa.ndim == 1
    x2 = xa[:, None] if squeeze else xa  # (N, C)
    if ta.ndim != 1 or x2.ndim != 2 or x2.shape[0] != ta.shape[0]:
        raise ValueError(f"t {ta.shape} and x {xa.shape} do not match")
    if g.size and np.max(np.abs(g - (g[0] + np.arange(g.size) / dst_hz))) > 1e-6 / dst_hz:
        raise ValueError("grid must be grid[0] + arange(T) / dst_hz")
    ok = np.isfinite(ta) & np.isfinite(x2).all(axis=1)
    ta, x2 = ta[ok], x2[ok]
    if ta.size == 0:
        raise ValueError("no finite samples")
    if g.size == 0:
        out = np.zeros((x2.shape[1], 0), np.float64)
    else:
        if src_hz is None:
            src_hz = 1.0 / float(np.median(np.diff(ta))) if ta.size > 1 else dst_hz
        out = _resample(ta, np.ascontiguousarray(x2.T), float(g[0]), g.size, dst_hz,
                        _decimation(src_hz, dst_hz))
    return out[0] if squeeze else out.T


# -- calibration --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Calibration:
    """One person's baseline: per modality, per channel center and scale (float64 (C,))."""

    center: Mapping[str, np.ndarray]
    scale: Mapping[str, np.ndarray]
    source: str = ""  # free text: who/when/which data ("enrollment 2024-05-01", "S2 baseline")

    def __post_init__(self) -> None:
        center = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.center.items()}
        scale = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.scale.items()}
        if set(center) != set(scale):
            raise CalibrationError(
                f"center has {sorted(center)} but scale has {sorted(scale)}"
            )
        for k in center:
            if center[k].shape != scale[k].shape:
                raise CalibrationError(f"{k}: center {center[k].shape} != scale {scale[k].shape}")
            if not (np.isfinite(center[k]).all() and np.isfinite(scale[k]).all()):
                raise CalibrationError(f"{k}: center/scale must be finite")
            if not (scale[k] > 0).all():
                raise CalibrationError(f"{k}: scale must be positive, got {scale[k].tolist()}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    def check(self, contract: InputContract) -> None:
        """Raise :class:`CalibrationError` unless it covers every modality of ``contract``."""
        for m in contract.modalities:
            if m.name not in self.center:
                raise CalibrationError(f"calibration has no modality {m.name!r}")
            if self.center[m.name].shape != (m.n_channels,):
                raise CalibrationError(
                    f"{m.name}: calibration has {self.center[m.name].shape[0]} channels, "
                    f"contract has {m.n_channels}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the daemon stores one per resident)."""
        return {
            "schema": CALIBRATION_SCHEMA,
            "source": self.source,
            "center": {k: [float(v) for v in a] for k, a in self.center.items()},
            "scale": {k: [float(v) for v in a] for k, a in self.scale.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; raises :class:`CalibrationError` when malformed."""
        try:
            schema = int(d.get("schema", CALIBRATION_SCHEMA))
            if schema != CALIBRATION_SCHEMA:
                raise CalibrationError(
                    f"calibration schema {schema} is not supported (this code reads "
                    f"{CALIBRATION_SCHEMA})"
                )
            return cls(
                center={str(k): np.asarray(v, np.float64) for k, v in d["center"].items()},
                scale={str(k): np.asarray(v, np.float64) for k, v in d["scale"].items()},
                source=str(d.get("source", "")),
            )
        except CalibrationError:
            raise
        # OverflowError: JSON allows 1e999 (inf) and 400-digit ints, which float()/int() refuse
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise CalibrationError(f"malformed calibration: {e!r}") from e


def _calibrate_modality(m: Modality, t: FloatArray, x: FloatArray, last_t: float,
                        calibration_s: float, min_coverage: float, *, stats: bool = True
                        ) -> tuple[FloatArray, FloatArray]:
    """Center/scale from the calibration period of one modality.

    ``t``, ``x``: the accepted samples with ``t < t[0] + calibration_s`` (any values);
    ``last_t``: the latest accepted timestamp of the modality so far. The period counts as
    complete when the samples reach its end (last sample + one median spacing), and it
    needs ``min_coverage`` of it in finite samples. ``stats=False`` only checks that.
    """
    if t.size < 2:
        raise CalibrationError(f"{m.name}: {t.size} samples, need {calibration_s:g} s of data")
    dt = float(np.median(np.diff(t)))
    elapsed = last_t + dt - t[0]
    if elapsed < calibration_s - 1e-6:
        raise CalibrationError(
            f"{m.name}: {elapsed:.1f} s of data, need {calibration_s:g} s"
        )
    finite = np.isfinite(x).all(axis=1)
    covered = np.count_nonzero(finite) * dt
    if covered < min_coverage * calibration_s:
        raise CalibrationError(
            f"{m.name}: only {covered:.1f} s of finite samples in the first {calibration_s:g} s "
            f"(need {min_coverage:.0%})"
        )
    if not stats:
        return np.zeros(0), np.zeros(0)
    q25, med, q75 = np.percentile(x[finite], [25.0, 50.0, 75.0], axis=0)  # each (C,)
    scale = np.maximum((q75 - q25) / IQR_TO_SIGMA, scale_floor(m.unit))
    return np.asarray(med, np.float64), np.asarray(scale, np.float64)


def compute_calibration(streams: Mapping[str, StreamLike], contract: InputContract, *,
                        source: str = "") -> Calibration:
    """Calibration from the first ``calibration_s`` seconds of each modality in ``contract``.

    Timestamps that are non-finite or not later than an earlier one are ignored (as the
    assembler does); NaN/inf values are left out of the statistics. Raises
    :class:`CalibrationError` naming the modality if it is absent, shorter than the period,
    or less than ``contract.min_coverage`` finite.
    """
    acc = CalibrationAccumulator(contract, source=source)
    for m in contract.modalities:
        if m.name not in streams:
            raise CalibrationError(f"{m.name}: no stream for this modality")
        s = _as_stream(streams[m.name])
        acc.push(m.name, s.timestamps, s.values)
    return acc.result()


class CalibrationAccumulator:
    """Streaming calibration (hub enrollment). Keeps only the calibration period's samples.

    ``result()`` equals :func:`compute_calibration` on the concatenation of everything pushed.
    """

    def __init__(self, contract: InputContract, *, source: str = "") -> None:
        self.contract = contract
        self.source = source
        self._period = contract.normalization.calibration_s
        self._t: dict[str, list[FloatArray]] = {m.name: [] for m in contract.modalities}
        self._x: dict[str, list[FloatArray]] = {m.name: [] for m in contract.modalities}
        self._t0: dict[str, float] = {}
        self._last: dict[str, float] = {m.name: -math.inf for m in contract.modalities}
        self._ready: bool | None = False  # None: unknown until checked again

    def push(self, name: str, timestamps: ArrayLike, values: ArrayLike) -> None:
        if name not in self._t:
            raise ContractError(f"no modality {name!r} in {self.contract.modality_names}",
                                field="modalities")
        m = self.contract.modality(name)
        t, x = _coerce(name, m.n_channels, timestamps, values)
        if t.size == 0:
            return
        keep, _, _ = _keep_increasing(t, self._last[name])
        if not keep.any():
            return
        t, x = t[keep], x[keep]
        self._last[name] = float(t[-1])
        t0 = self._t0.setdefault(name, float(t[0]))
        n = int(np.searchsorted(t, t0 + self._period, side="left"))
        if n:
            self._t[name].append(t[:n])
            self._x[name].append(x[:n])
        self._ready = None

    def _arrays(self, name: str) -> tuple[FloatArray, FloatArray]:
        if len(self._t[name]) > 1:
            self._t[name] = [np.concatenate(self._t[name])]
            self._x[name] = [np.concatenate(self._x[name])]
        if not self._t[name]:
            c = self.contract.modality(name).n_channels
            return np.zeros(0, np.float64), np.zeros((0, c), np.float64)
        return self._t[name][0], self._x[name][0]

    def progress(self) -> float:
        """Fraction of the calibration period covered by the slowest modality (0..1)."""
        p = 1.0
        for m in self.contract.modalities:
            if m.name not in self._t0:
                return 0.0
            p = min(p, (self._last[m.name] - self._t0[m.name]) / self._period)
        return max(0.0, min(1.0, p))

    @property
    def ready(self) -> bool:
        """True when :meth:`result` will succeed (cheap: no percentiles)."""
        if self._ready is None:
            try:
                for m in self.contract.modalities:
                    t, x = self._arrays(m.name)
                    _calibrate_modality(m, t, x, self._last[m.name], self._period,
                                        self.contract.min_coverage, stats=False)
            except CalibrationError:
                self._ready = False
            else:
                self._ready = True
        return self._ready

    def result(self) -> Calibration:
        center: dict[str, np.ndarray] = {}
        scale: dict[str, np.ndarray] = {}
        for m in self.contract.modalities:
            t, x = self._arrays(m.name)
            center[m.name], scale[m.name] = _calibrate_modality(
                m, t, x, self._last[m.name], self._period, self.contract.min_coverage
            )
        return Calibration(center=center, scale=scale, source=self.source)


# -- windows ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Window:
    """One model input: every modality resampled onto its grid, validated, normalized."""

    start: float  # seconds, inclusive
    end: float  # seconds, exclusive
    index: int  # k: start = origin + k * hop_s
    data: dict[str, np.ndarray]  # name -> (C, T) float32, never NaN
    valid: bool
    reason: InvalidReason | None
    detail: str = ""
    reasons: tuple[InvalidReason, ...] = ()  # every problem found, most severe first
    coverage: dict[str, float] = field(default_factory=dict)  # name -> fraction of samples


@dataclass
class AssemblerStats:
    """Counters: nothing is dropped silently."""

    windows_emitted: int = 0
    windows_invalid: dict[str, int] = field(default_factory=dict)  # reason -> count
    windows_skipped_empty: int = 0  # windows with no sample of any modality (device off)
    dropped_non_finite_time: dict[str, int] = field(default_factory=dict)
    dropped_out_of_order: dict[str, int] = field(default_factory=dict)  # t <= an earlier t
    dropped_before_origin: dict[str, int] = field(default_factory=dict)
    # samples a pending window still needed, discarded because another modality stalled
    discarded_stalled: dict[str, int] = field(default_factory=dict)


class _RawBuffer:
    """Accepted raw samples of one modality, appended in chunks, consolidated lazily.

    ``held_s`` is the duration of data held: the sum of inter-sample intervals, each counted
    up to ``gap_clip_s``. A device that was off for an hour thus holds seconds, not an hour,
    so the stall cap measures data piling up, not time passing.
    """

    __slots__ = ("_pend_t", "_pend_x", "gap_clip_s", "held_s", "last_t", "t", "tail_t", "x")

    def __init__(self, n_channels: int, gap_clip_s: float) -> None:
        self.t: FloatArray = np.zeros(0, np.float64)  # (N,)
        self.x: FloatArray = np.zeros((0, n_channels), np.float64)  # (N, C)
        self._pend_t: list[FloatArray] = []
        self._pend_x: list[FloatArray] = []
        self.last_t = -math.inf  # latest accepted timestamp ever (progress of this stream)
        self.tail_t = -math.inf  # latest buffered timestamp
        self.gap_clip_s = gap_clip_s
        self.held_s = 0.0

    def _span(self, t: FloatArray) -> float:
        if t.size < 2:
            return 0.0
        whole = float(t[-1] - t[0])
        if whole <= self.gap_clip_s:  # no interval can exceed the clip: skip the pass
            return whole
        return float(np.minimum(np.diff(t), self.gap_clip_s).sum())

    def append(self, t: FloatArray, x: FloatArray) -> None:
        if math.isfinite(self.tail_t):
            self.held_s += min(float(t[0]) - self.tail_t, self.gap_clip_s)
        self.held_s += self._span(t)
        self.tail_t = float(t[-1])
        self._pend_t.append(t)
        self._pend_x.append(x)

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        if self._pend_t:
            self.t = np.concatenate([self.t, *self._pend_t])
            self.x = np.concatenate([self.x, *self._pend_x])
            self._pend_t.clear()
            self._pend_x.clear()
        return self.t, self.x

    def first_t(self) -> float:
        if self.t.size:
            return float(self.t[0])
        return float(self._pend_t[0][0]) if self._pend_t else math.inf

    def __len__(self) -> int:
        return self.t.size + sum(a.size for a in self._pend_t)

    def drop_first(self, i: int) -> FloatArray:
        """Drop the ``i`` oldest samples; return their timestamps."""
        t, x = self.arrays()
        if i <= 0:
            return t[:0]
        dropped = t[:i]
        if i >= t.size:
            self.held_s, self.tail_t = 0.0, -math.inf
        else:
            self.held_s = max(0.0, self.held_s - self._span(t[: i + 1]))
        # views: the base is freed at the next consolidation, which makes a new array
        self.t, self.x = t[i:], x[i:]
        return dropped

    def drop_before(self, cut: float) -> FloatArray:
        """Drop samples with ``t < cut``; return their timestamps."""
        t, _ = self.arrays()
        return self.drop_first(int(np.searchsorted(t, cut, side="left")))

    def drop_to_hold(self, hold_s: float) -> FloatArray:
        """Drop the oldest samples until at most ``hold_s`` of data is held."""
        t, _ = self.arrays()
        held = np.cumsum(np.minimum(np.diff(t), self.gap_clip_s)[::-1])[::-1]  # from i to end
        # keep from the first i whose remaining span fits
        return self.drop_first(int(np.searchsorted(-held, -hold_s, side="left")))


@dataclass
class _ModalityResult:
    data: FloatArray  # (C, T) un-normalized
    problems: list[tuple[InvalidReason, str]]
    coverage: float
    empty: bool = False  # no finite sample: data is zeros and stays zeros


def _bump(d: dict[str, int], key: str, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


class WindowAssembler:
    """Streaming, chunk-invariant windowing of multi-rate streams (see module docstring)."""

    def __init__(
        self,
        contract: InputContract,
        *,
        origin: float = 0.0,
        calibration: Calibration | None = None,
        source_rates: Mapping[str, float] | None = None,
        # data (seconds, gaps excluded) one modality may hold while waiting for the others;
        # -1: window + both margins + STALL_SLACK_S; None: no cap
        max_buffer_s: float | None = -1.0,
        quality: QualityThresholds | None = None,
    ) -> None:
        self.contract = contract
        self.origin = float(origin)
        self.calibration = calibration
        self.quality = quality or QualityThresholds()
        self.source_rates = dict(source_rates or {})
        norm = contract.normalization
        if calibration is not None:
            calibration.check(contract)
        if norm.kind == "global":
            for m in contract.modalities:
                c, s = norm.center.get(m.name), norm.scale.get(m.name)
                if c is None or s is None or len(c) != m.n_channels or len(s) != m.n_channels:
                    raise ContractError(
                        f"global normalization needs {m.n_channels} center/scale values",
                        field=f"normalization.{m.name}",
                    )
        self._margin = {m.name: window_margin_s(contract, m.name) for m in contract.modalities}
        self._n_out = {m.name: contract.samples(m.name) for m in contract.modalities}
        # per-modality normalization (center (C, 1), scale (C, 1), clip) or None: raw units
        self._norm: dict[str, tuple[FloatArray, FloatArray] | None] = {}
        for m in contract.modalities:
            if norm.kind == "subject_baseline" and calibration is not None:
                fixed = norm.scale.get(m.name)  # a contract-fixed scale wins over the measured
                cs = (calibration.center[m.name],
                      calibration.scale[m.name] if fixed is None else np.asarray(fixed, np.float64))
            elif norm.kind == "global":
                cs = (np.asarray(norm.center[m.name], np.float64),
                      np.asarray(norm.scale[m.name], np.float64))
            else:
                self._norm[m.name] = None
                continue
            self._norm[m.name] = (cs[0].reshape(-1, 1), cs[1].reshape(-1, 1))
        if max_buffer_s is not None and max_buffer_s < 0:
            max_buffer_s = contract.window_s + 2 * max(self._margin.values()) + STALL_SLACK_S
        self.max_buffer_s = max_buffer_s
        self._buf = {m.name: _RawBuffer(m.n_channels, contract.max_gap_s)
                     for m in contract.modalities}
        self._next_k = 0
        self.stats = AssemblerStats()

    # -- public ---------------------------------------------------------------------------
    def margin_s(self, name: str) -> float:
        """Fixed raw margin of modality ``name`` (also its emission latency), seconds."""
        return self._margin[name]

    def buffered_samples(self) -> dict[str, int]:
        """Raw samples held per modality (the assembler's memory)."""
        return {k: len(b) for k, b in self._buf.items()}

    @property
    def next_index(self) -> int:
        """Index k of the next window to be emitted."""
        return self._next_k

    def push(self, name: str, timestamps: ArrayLike, values: ArrayLike) -> None:
        """Append samples of modality ``name``: timestamps (N,) s, values (N, C) or (N,)."""
        try:
            buf = self._buf[name]
        except KeyError:
            raise ContractError(
                f"no modality {name!r} in {self.contract.modality_names}", field="modalities"
            ) from None
        t, x = _coerce(name, buf.x.shape[1], timestamps, values)
        if t.size == 0:
            return
        keep, n_bad_time, n_order = _keep_increasing(t, buf.last_t)
        _bump(self.stats.dropped_non_finite_time, name, n_bad_time)
        _bump(self.stats.dropped_out_of_order, name, n_order)
        if not keep.any():
            return
        if not keep.all():
            t, x = t[keep], x[keep]
        buf.last_t = float(t[-1])
        lo = self.origin - self._margin[name]
        if t[0] < lo:
            i = int(np.searchsorted(t, lo, side="left"))
            _bump(self.stats.dropped_before_origin, name, i)
            t, x = t[i:], x[i:]
            if not t.size:
                return
        buf.append(t, x)
        self._enforce_cap(name, buf)

    def pop_ready(self) -> list[Window]:
        """Windows whose end + margin every modality has passed, in time order."""
        # a window is final once every modality has a sample at or past its end + margin:
        # timestamps increase, so nothing can still arrive inside its span
        # (TIME_EPS: a sample exactly at end + margin, up to rounding, may not be the last one)
        horizon = min(b.last_t - self._margin[n] for n, b in self._buf.items()) - TIME_EPS
        return self._emit_until(horizon)

    def flush(self) -> list[Window]:
        """End of stream: every remaining window that ends by the last sample (+max_gap_s).

        Windows that some modality did not reach come out invalid (GAP/MISSING_MODALITY).
        """
        out = self.pop_ready()
        t_last = max(b.last_t for b in self._buf.values())
        if math.isfinite(t_last):
            out.extend(self._emit_until(t_last + self.contract.max_gap_s + TIME_EPS))
        return out

    # -- internals ------------------------------------------------------------------------
    def _bounds(self, k: int) -> tuple[float, float]:
        start = self.origin + k * self.contract.hop_s
        return start, start + self.contract.window_s

    def _needed_from(self, name: str) -> float:
        return self._bounds(self._next_k)[0] - self._margin[name]

    def _enforce_cap(self, name: str, buf: _RawBuffer) -> None:
        cap = self.max_buffer_s
        if cap is None or buf.held_s <= cap * (1.0 + STALL_HYSTERESIS):
            return
        dropped = buf.drop_to_hold(cap)
        needed = int(dropped.size - np.searchsorted(dropped, self._needed_from(name), "left"))
        if needed:
            _bump(self.stats.discarded_stalled, name, needed)
            stalled = [n for n, b in self._buf.items()
                       if b.last_t < self._bounds(self._next_k)[1] + self._margin[n]]
            logger.warning(
                "discarded %d %s samples waiting for stalled modalities %s",
                needed, name, stalled,
            )

    def _consume(self) -> None:
        """Drop raw samples that no window from ``_next_k`` on can use."""
        for name, buf in self._buf.items():
            buf.drop_before(self._needed_from(name))

    def _is_empty(self, start: float, end: float) -> bool:
        for name, buf in self._buf.items():
            t, _ = buf.arrays()
            mg = self._margin[name]
            i = np.searchsorted(t, start - mg, side="left")
            if i < t.size and t[i] < end + mg:
                return False
        return True

    def _emit_until(self, horizon: float) -> list[Window]:
        """Emit (or skip, if empty) every window from ``_next_k`` whose end is <= horizon."""
        out: list[Window] = []
        if not math.isfinite(horizon):
            return out
        c = self.contract
        # last window index whose end is <= horizon (all of them are final)
        k_last = math.floor((horizon - c.window_s - self.origin) / c.hop_s + TIME_EPS)
        while self._next_k <= k_last:
            k = self._next_k
            start, end = self._bounds(k)
            if end > horizon:  # float rounding of the floor above
                break
            if not self._is_empty(start, end):
                w = self._make_window(k, start, end)
                self.stats.windows_emitted += 1
                if w.reason is not None:
                    _bump(self.stats.windows_invalid, w.reason.value, 1)
                out.append(w)
                self._next_k = k + 1
            else:
                # no sample of any modality (device off): jump near the first window touching
                # a buffered sample, conservatively (then single steps), never past k_last
                first = min(
                    (b.first_t() - c.window_s - self._margin[n] - self.origin) / c.hop_s
                    for n, b in self._buf.items()
                )
                k_next = k + 1
                if math.isfinite(first):
                    k_next = max(k_next, math.floor(first) - 1)
                k_next = min(k_next, k_last + 1)
                self.stats.windows_skipped_empty += k_next - k
                self._next_k = k_next
            self._consume()
        return out

    def _make_window(self, k: int, start: float, end: float) -> Window:
        contract = self.contract
        norm = contract.normalization
        data: dict[str, np.ndarray] = {}
        problems: list[tuple[InvalidReason, str]] = []
        coverage: dict[str, float] = {}
        for m in contract.modalities:
            r = self._modality(m, start, end)
            problems.extend(r.problems)
            coverage[m.name] = float(r.coverage)
            cs = self._norm[m.name]
            if r.empty:
                data[m.name] = np.zeros(r.data.shape, np.float32)
            elif cs is None:
                data[m.name] = r.data.astype(np.float32)
            else:  # normalize() inlined on the owned (C, T) buffer: one allocation less
                y = r.data
                y -= cs[0]
                y /= cs[1]
                np.minimum(y, norm.clip, out=y)
                np.maximum(y, -norm.clip, out=y)
                data[m.name] = y.astype(np.float32)
        if norm.kind == "subject_baseline" and self.calibration is None:
            problems.append((InvalidReason.UNCALIBRATED,
                             "subject_baseline normalization needs a calibration"))
        problems.sort(key=lambda p: _SEVERITY.index(p[0]))
        reasons = tuple(dict.fromkeys(p[0] for p in problems))
        return Window(
            start=start,
            end=end,
            index=k,
            data=data,
            valid=not problems,
            reason=reasons[0] if reasons else None,
            detail="; ".join(p[1] for p in problems),
            reasons=reasons,
            coverage=coverage,
        )

    def _modality(self, m: Modality, start: float, end: float) -> _ModalityResult:
        name = m.name
        contract = self.contract
        n_out = self._n_out[name]
        mg = self._margin[name]
        buf = self._buf[name]
        tb, xb = buf.arrays()
        i0, i1 = np.searchsorted(tb, (start - mg, end + mg), side="left")
        t_all = tb[i0:i1]  # (N,) everything this window may use
        if t_all.size == 0:
            return _ModalityResult(np.zeros((m.n_channels, n_out)), [
                (InvalidReason.MISSING_MODALITY, f"{name}: no samples in window")], 0.0, empty=True)
        xc_all = np.ascontiguousarray(xb[i0:i1].T)  # (C, N)
        finite = np.isfinite(xc_all).all(axis=0) if m.n_channels > 1 else np.isfinite(xc_all[0])
        all_finite = bool(finite.all())
        t, xc = (t_all, xc_all) if all_finite else (t_all[finite], xc_all[:, finite])
        if t.size == 0:
            return _ModalityResult(np.zeros((m.n_channels, n_out)), [
                (InvalidReason.NON_FINITE, f"{name}: all {t_all.size} samples non-finite")], 0.0,
                empty=True)

        d_all = np.diff(t_all)
        src = self.source_rates.get(name)
        if src is not None:
            dt_nom = 1.0 / src
        elif d_all.size:
            dt_nom = _median_spacing(d_all)
            src = 1.0 / dt_nom
            if abs(src / m.rate_hz - 1.0) <= RATE_SNAP:
                # a jittered source at the target rate: keep coverage and the no-filter
                # decision stable instead of following the noise of a median of few diffs
                src, dt_nom = m.rate_hz, 1.0 / m.rate_hz
        else:
            dt_nom, src = math.inf, m.rate_hz

        problems: list[tuple[InvalidReason, str]] = []
        if (all_finite and t[0] <= start and t[-1] >= end - contract.max_gap_s
                and d_all.max() <= contract.max_gap_s):
            gap, at = 0.0, start  # the usual case: no stretch can exceed max_gap_s
        else:
            gap, at = _max_gap(t, start, end)
        if gap > contract.max_gap_s:
            cause = InvalidReason.GAP
            if not all_finite:
                gap_all, _ = _max_gap(t_all, start, end)
                if gap_all <= contract.max_gap_s:
                    cause = InvalidReason.NON_FINITE
            what = "gap" if cause is InvalidReason.GAP else "gap from non-finite samples"
            problems.append((cause, f"{name}: {what} of {gap:.3f} s in window at {at:.3f} s "
                                    f"(max {contract.max_gap_s:g} s)"))

        j0, j1 = np.searchsorted(t, (start, end), side="left")
        cov = min(1.0, (j1 - j0) * dt_nom / contract.window_s) if math.isfinite(dt_nom) else 0.0
        if cov < contract.min_coverage:
            cause = InvalidReason.LOW_COVERAGE
            if not all_finite:
                a0, a1 = np.searchsorted(t_all, (start, end), side="left")
                if (a1 - a0) * dt_nom / contract.window_s >= contract.min_coverage:
                    cause = InvalidReason.NON_FINITE
            problems.append((cause, f"{name}: coverage {cov:.1%} < {contract.min_coverage:.0%}"))

        if j1 - j0 >= 2:
            problems.extend(self._quality(m, xc[:, j0:j1], dt_nom))

        data = _resample(t, xc, start, n_out, m.rate_hz, _decimation(src, m.rate_hz))
        return _ModalityResult(data, problems, cov)

    def _quality(self, m: Modality, xc: FloatArray, dt_nom: float
                 ) -> list[tuple[InvalidReason, str]]:
        """FLAT / SATURATED checks on the raw finite samples inside the window, xc (C, n)."""
        q = self.quality
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
            pinned = _run_samples(col == rail, min_run)
            if pinned > lim and np.unique(col).size >= q.pinned_min_levels:
                out.append((InvalidReason.SATURATED,
                            f"{m.name}.{m.channels[c]}: {pinned / n:.1%} of samples pinned "
                            f"at {rail:.4g} in runs >= {min_run}"))
                return out
        return out


def _median_spacing(d: FloatArray) -> float:
    """Nominal sample spacing: the (upper) median of at most ~MEDIAN_SPACING_SAMPLES diffs.

    Subsampled with a fixed stride, so it is cheap and still a function of the window's
    samples alone; robust to jitter and to gaps.
    """
    sub = d[:: max(1, d.size // MEDIAN_SPACING_SAMPLES)]
    return float(np.partition(sub, sub.size // 2)[sub.size // 2])


def _max_gap(t: FloatArray, start: float, end: float) -> tuple[float, float]:
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


def _run_samples(mask: np.ndarray, min_run: int) -> int:
    """Number of True samples that belong to runs of at least ``min_run`` consecutive Trues."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    lengths = stops - starts
    return int(lengths[lengths >= min_run].sum())


def windows_from_streams(
    streams: Mapping[str, StreamLike],
    contract: InputContract,
    *,
    origin: float = 0.0,
    calibration: Calibration | None = None,
    source_rates: Mapping[str, float] | None = None,
    quality: QualityThresholds | None = None,
) -> list[Window]:
    """Offline path (training): every window of a whole recording.

    Pushes the streams into a :class:`WindowAssembler` (in ``OFFLINE_BLOCK_S`` slices of
    stream time, which by chunk invariance equals pushing each whole, but keeps memory
    small) and flushes. Streams not in the contract are ignored; a contract modality with no
    stream makes every window invalid (MISSING_MODALITY). ``source_rates`` defaults to the
    streams' own ``rate_hz`` where given.
    """
    rates = dict(source_rates or {})
    picked: dict[str, Stream] = {}
    for name in contract.modality_names:
        if name in streams:
            s = _as_stream(streams[name])
            picked[name] = s
            if s.rate_hz is not None:
                rates.setdefault(name, float(s.rate_hz))
    # no stall cap: offline every stream is complete, so a modality that ends early is not
    # a stall to recover from, and the result must equal pushing everything and flushing
    asm = WindowAssembler(contract, origin=origin, calibration=calibration,
                          source_rates=rates, quality=quality, max_buffer_s=None)
    if not picked:
        return []
    times = {n: np.asarray(s.timestamps, dtype=np.float64) for n, s in picked.items()}
    # block edges by a running max so an unsorted stream still splits into ordered slices
    mono = {n: np.maximum.accumulate(np.where(np.isnan(t), -np.inf, t)) if t.size else t
            for n, t in times.items()}
    t_min = min((float(np.nanmin(t)) for t in times.values() if np.isfinite(t).any()),
                default=0.0)
    t_max = max((float(np.nanmax(t)) for t in times.values() if np.isfinite(t).any()),
                default=0.0)
    out: list[Window] = []
    pos = dict.fromkeys(picked, 0)
    edge = t_min
    while True:
        edge += OFFLINE_BLOCK_S
        last = edge > t_max
        for n, s in picked.items():
            stop = times[n].size if last else int(np.searchsorted(mono[n], edge, side="left"))
            if stop > pos[n]:
                asm.push(n, times[n][pos[n]:stop], np.asarray(s.values)[pos[n]:stop])
                pos[n] = stop
        if last:
            break
        out.extend(asm.pop_ready())
    out.extend(asm.flush())
    return out
