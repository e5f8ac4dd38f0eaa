"""Resampling: raw multi-rate samples onto a window's uniform grid, with anti-aliasing.

Also the stream types and input hygiene every other signal module shares (coercion of a
chunk, the strictly-increasing-time rule), the per-modality raw margin a window needs, and
window start times. Why an FIR evaluated only at the target points, and why the margin is
fixed per contract: see ``docs/signal.md``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from core.contract import InputContract
from core.errors import ContractError

__all__ = [
    "DOWNSAMPLE_TOLERANCE",
    "FIR_CUTOFF",
    "FIR_HALF_PERIODS",
    "TIME_EPS",
    "FloatArray",
    "Stream",
    "StreamLike",
    "as_stream",
    "coerce_chunk",
    "decimation_factor",
    "find_gaps",
    "fir_taps",
    "hop_grid_times",
    "keep_increasing",
    "resample_channels",
    "resample_hop_grid",
    "resample_to_grid",
    "sliding_window_starts",
    "window_margin_s",
]

FloatArray: TypeAlias = NDArray[np.float64]

# Anti-aliasing FIR. A Hamming window spanning 2*16 target periods has a transition band of
# about 3.3/(32/dst) ~= 0.1*dst, so with the cutoff at 0.45*dst the filter passes <= 0.4*dst
# flat and is well attenuated from 0.5*dst (the new Nyquist) on (docs/signal.md gives the
# figures). 16 periods is also the margin the FIR adds on each side of a window.
FIR_HALF_PERIODS: Final = 16
FIR_CUTOFF: Final = 0.45  # fraction of the target rate: centres the transition band on 0.45..0.5
# A source at most 5 % faster than the target is interpolated without filtering: the few
# aliased components fold into the top 5 % of the band, which the models do not use.
DOWNSAMPLE_TOLERANCE: Final = 0.05
# Float slack on time comparisons (timestamps are float64 seconds; 1 ns is far below any
# sample period and far above float64 rounding of times up to ~1e6 s).
TIME_EPS: Final = 1e-9


@dataclass(frozen=True)
class Stream:
    """Raw samples of one modality."""

    timestamps: np.ndarray  # (N,) float64 seconds, increasing
    values: np.ndarray  # (N, C) in the contract's unit
    rate_hz: float | None = None  # nominal source rate, if known (else estimated)


StreamLike: TypeAlias = Stream | tuple[ArrayLike, ArrayLike]


def as_stream(s: StreamLike) -> Stream:
    """A :class:`Stream` from a stream or a ``(timestamps, values)`` tuple."""
    if isinstance(s, Stream):
        return s
    t, v = s
    return Stream(np.asarray(t), np.asarray(v))


def coerce_chunk(name: str, n_channels: int, timestamps: ArrayLike, values: ArrayLike
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


def keep_increasing(t: FloatArray, prev_max: float) -> tuple[np.ndarray, int, int]:
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
    latency between a window's end and its emission. A beats modality's is the context its
    cleaning sees on each side (``contract.beats.context_s``): it is never FIR-filtered.
    """
    m = contract.modality(name)
    if m.beats:
        return contract.beats.context_s
    return FIR_HALF_PERIODS / m.rate_hz + contract.max_gap_s


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


def decimation_factor(src_hz: float, dst_hz: float) -> int:
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
    m = decimation_factor(src_hz, dst_hz)
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


def resample_channels(t: FloatArray, xc: FloatArray, start: float, n_out: int, dst_hz: float,
                      m: int) -> FloatArray:
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
    # by einsum's own loops. Not matmul: multi-threaded BLAS on these small products is far
    # slower on a busy machine, and einsum's fixed summation order keeps results bit-stable.
    view = sliding_window_view(u, q, axis=1)  # (C, T, M, Q)
    return np.einsum("ctmq,qm->ct", view, kern)  # (C, T)


def hop_grid_times(origin: float, hop_s: float, per_hop: int, rate_hz: float, g0: int, g1: int
                   ) -> FloatArray:
    """Times of points ``g0 .. g1-1`` of a grid at ``rate_hz`` laid out hop by hop.

    Point ``g`` is ``per_hop`` points into hop ``b = g // per_hop``, at
    ``(origin + b*hop_s) + (g % per_hop)/rate_hz``. Every window and every hop names a point
    by the same integer and computes its time by this one float expression, so a point's
    value is the same bits whichever window or hop computed it (what lets the streaming path
    carry resampled hops from one window to the next).
    """
    b, o = np.divmod(np.arange(g0, g1, dtype=np.int64), per_hop)
    return (origin + b * hop_s) + o / rate_hz


def resample_hop_grid(t: FloatArray, xc: FloatArray, origin: float, hop_s: float, per_hop: int,
                      first: int, n_out: int, dst_hz: float, m: int
                      ) -> tuple[FloatArray, float, float]:
    """:func:`resample_channels` onto points ``first .. first+n_out-1`` of the hop grid.

    ``per_hop`` target points per hop (``hop_s * dst_hz``, an integer). Returns ``(C, n_out)``
    and the first and last time at which the raw samples were read (a caller that must not
    depend on edge holding checks that raw samples bracket both).
    """
    if m == 1:
        q = hop_grid_times(origin, hop_s, per_hop, dst_hz, first, first + n_out)
        return _interp_channels(t, xc, q), float(q[0]), float(q[-1])
    kern = _polyphase_kernel(m)  # (Q, M)
    h = FIR_HALF_PERIODS
    # intermediate grid at m*dst, m points per target point: row i + j holds target point
    # first - h + i + j, so output i is centred on target point first + i (as resample_channels)
    tu = hop_grid_times(origin, hop_s, per_hop * m, dst_hz * m, (first - h) * m,
                        (first + n_out + h) * m)
    u = _interp_channels(t, xc, tu).reshape(xc.shape[0], n_out + 2 * h, m)  # (C, R, M)
    view = sliding_window_view(u, kern.shape[0], axis=1)  # (C, T, M, Q)
    return np.einsum("ctmq,qm->ct", view, kern), float(tu[0]), float(tu[-1])


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
        out = resample_channels(ta, np.ascontiguousarray(x2.T), float(g[0]), g.size, dst_hz,
                                decimation_factor(src_hz, dst_hz))
    return out[0] if squeeze else out.T

