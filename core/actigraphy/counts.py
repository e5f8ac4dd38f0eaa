"""ActiGraph-compatible activity counts from raw tri-axial acceleration, in batch or streamed.

The algorithm is the one Brønd et al. (2017) published for ActiGraph counts, with ActiGraph's
resampling front end for the rates it does not sample at natively:

1. resample to 30 Hz (30 Hz as is; 60/90 Hz by decimation; 40-100 Hz by zero-stuffing x3, a
   first-order low-pass and decimation; 32/64/128/256 Hz by zero-stuffing to 256 Hz, a Kaiser
   windowed-sinc FIR, a one-pole low-pass and linear interpolation), rounded to 1 mg;
2. the published band-pass (an order-7 recursive filter, started in steady state at the first
   sample) scaled to counts, rectified, dead-banded below 4 and clipped at 128;
3. 10 Hz by the floored mean of each 3 samples, then summed over the epoch.

Everything is numpy: the recursive filters run a block at a time as matrix products of their
state-space form (:class:`_LinearFilter`), which carries state between chunks, so
:class:`CountsAccumulator` fed any chunking gives the same epochs as :func:`activity_counts`
on the whole recording. Edge conventions follow the ``agcounts`` package so the two agree
count for count: the stream's first sample sets the filters' initial state, the FIR is
zero-padded at both ends, the last 30 Hz sample of a 2^k Hz stream is zero, and a trailing
incomplete epoch is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from core.errors import ActigraphyError

__all__ = [
    "SUPPORTED_RATES",
    "CountEpoch",
    "CountsAccumulator",
    "activity_counts",
    "vector_magnitude",
]

# Brønd et al. (2017) band-pass at 30 Hz, numerator and denominator (a0 = 1).
BPF_B: Final = np.array([
    -0.009341062898525, -0.025470289659360, -0.004235264826105, 0.044152415456420,
    0.036493718347760, -0.011893961934740, -0.022917390623150, -0.006788163862310,
])
BPF_A: Final = np.array([
    1.0, -3.63367395910957, 5.03689812757486, -3.09612247819666,
    0.50620507633883, 0.32421701566682, -0.15685485875559, 0.01949130205890,
])
# ADC full scale over the filter's reference gain: g -> counts (ActiLife's 17.127404)
COUNTS_PER_G: Final = (3.0 / 4096.0) / (2.6 / 256.0) * 237.5
DEAD_BAND: Final = 4  # |filtered| below this is noise, not movement
CLIP: Final = 128  # the 8-bit accumulator of the original hardware
ROUND_DECIMALS: Final = 3  # the devices store acceleration in mg

BASE_HZ: Final = 30
POW2_HZ: Final = 256  # 2^k Hz streams are brought to 256 Hz before 30 Hz
# 40-100 Hz: upsample by 3 then decimate (ActiGraph's integer ratios to 30 Hz)
RATIONAL_FACTORS: Final = {
    30: (1, 1), 40: (3, 4), 50: (3, 5), 60: (1, 2), 70: (3, 7),
    80: (3, 8), 90: (1, 3), 100: (3, 10),
}
SUPPORTED_RATES: Final = (30, 32, 40, 50, 60, 64, 70, 80, 90, 100, 128, 256)
# 256 Hz anti-imaging FIR: sinc at 16 Hz, Kaiser window for 90 dB stop band, 6 decimals
FIR_TAPS: Final = 255
FIR_ATTENUATION_DB: Final = 90.0
TASO_DECAY: Final = 0.307990357416655  # the one-pole 256 Hz low-pass: y = d*x + (1-d)*y
BLOCK: Final = 64  # samples per matrix product: small enough for the cache; state is exact
# blocks per product at most: a wider product crosses OpenBLAS's threshold for threads, and
# on a hub's few busy cores handing a small product to threads costs more than it saves
GROUP_BLOCKS: Final = 8


def _fir_256hz() -> np.ndarray:
    n = np.arange(FIR_TAPS) - (FIR_TAPS - 1) // 2
    beta = 0.1102 * (FIR_ATTENUATION_DB - 8.7)  # Kaiser's beta for that attenuation
    return np.round(0.125 * np.sinc(n / 8.0) * np.kaiser(FIR_TAPS, beta), 6)


class _LinearFilter:
    """A recursive filter ``b/a`` over (samples, channels), run in blocks of matrix products.

    The transposed direct form II state ``z`` (the convention of ``scipy.signal.lfilter``)
    evolves as ``z' = A z + B x``, ``y = C z + D x``. For a block of ``m`` samples,
    ``y = T x + O z0`` and ``z_m = A^m z0 + G x`` with ``T`` the lower-triangular impulse
    response matrix: numpy runs it at BLAS speed, and a block boundary is exact.
    """

    def __init__(self, b: np.ndarray, a: np.ndarray, block: int = BLOCK) -> None:
        b = np.asarray(b, float) / a[0]
        a = np.asarray(a, float) / a[0]
        n = max(len(a), len(b)) - 1
        b = np.pad(b, (0, n + 1 - len(b)))
        a = np.pad(a, (0, n + 1 - len(a)))
        A = np.zeros((n, n))
        A[:, 0] = -a[1:]
        A[np.arange(n - 1), np.arange(1, n)] = 1.0
        B = b[1:] - a[1:] * b[0]
        self.order = n
        self.block = block
        self._A, self._B = A, B
        powers = [np.eye(n)]
        for _ in range(block):
            powers.append(A @ powers[-1])
        self._Apow = np.stack(powers)  # (block+1, n, n)
        self._O = self._Apow[:block, 0, :]  # row k: C A^k (C picks state 0)
        g = self._Apow[:block] @ B  # row k: A^k B
        h = np.concatenate([[b[0]], g[: block - 1, 0]])  # impulse response
        idx = np.arange(block)
        lag = idx[:, None] - idx[None, :]
        self._T = np.where(lag >= 0, h[np.clip(lag, 0, None)], 0.0)
        # column j: A^(block-1-j) B, the state a sample j places at the block's end; kept
        # contiguous so the products run on BLAS (a reversed view would not)
        self._G_end = np.ascontiguousarray(g[::-1].T)  # (n, block)

    def steady_state(self) -> np.ndarray:
        """State (n,) of the filter after a unit step of infinite length."""
        return np.linalg.solve(np.eye(self.order) - self._A, self._B)

    def run(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter ``x`` (m, ch) from state ``z`` (n, ch); return the output and the new state."""
        L, ch = self.block, x.shape[1]
        nb = len(x) // L
        parts = []
        for g0 in range(0, nb, GROUP_BLOCKS):
            # a group of full blocks at once: the input's share is one product, only the
            # state (order x channels) is carried block to block in Python
            g = min(GROUP_BLOCKS, nb - g0)
            xg = x[g0 * L : (g0 + g) * L]
            xt = xg.reshape(g, L, ch).transpose(1, 0, 2).reshape(L, g * ch)
            forced = (self._G_end @ xt).reshape(self.order, g, ch)
            states = np.empty((g, self.order, ch))
            a_l = self._Apow[L]
            for k in range(g):
                states[k] = z
                z = a_l @ z + forced[:, k, :]
            y = (self._T @ xt).reshape(L, g, ch).transpose(1, 0, 2)
            y = y + np.matmul(self._O, states)
            parts.append(y.reshape(g * L, ch))
        xb = x[nb * L :]
        if len(xb):
            m = len(xb)
            parts.append(self._T[:m, :m] @ xb + self._O[:m] @ z)
            z = self._Apow[m] @ z + self._G_end[:, L - m :] @ xb
        return (np.concatenate(parts) if parts else np.zeros_like(x)), z


class _Resampler:
    """Raw acceleration at the source rate -> 30 Hz (before the 1 mg rounding)."""

    def push(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def flush(self) -> np.ndarray:
        return np.zeros((0, 3))


class _Decimate(_Resampler):
    """30, 60 and 90 Hz: every ``m``-th sample, the phase carried across chunks."""

    def __init__(self, m: int) -> None:
        self._m = m
        self._seen = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        first = (-self._seen) % self._m
        self._seen += len(x)
        return x[first :: self._m]


class _UpsampleLowpass(_Resampler):
    """40-100 Hz: zero-stuff by ``up``, ``y = k (u + u_prev) - c y_prev``, keep every ``down``."""

    def __init__(self, up: int, down: int) -> None:
        self._up, self._down = up, down
        a_fp = np.pi / (np.pi + 2 * up)
        b_fp = (np.pi - 2 * up) / (np.pi + 2 * up)
        self._gain = a_fp * up
        self._filter = _LinearFilter(np.array([1.0]), np.array([1.0, b_fp]))
        self._z = np.zeros((1, 3))
        self._u_prev = np.zeros(3)
        self._seen = 0  # upsampled samples so far (the decimation phase)

    def push(self, x: np.ndarray) -> np.ndarray:
        u = np.zeros((len(x) * self._up, 3))
        u[:: self._up] = x
        prev = np.concatenate([self._u_prev[None, :], u[:-1]])
        if len(u):
            self._u_prev = u[-1]
        y, self._z = self._filter.run(self._gain * (u + prev), self._z)
        first = (-self._seen) % self._down
        self._seen += len(u)
        return y[first :: self._down]


class _Pow2(_Resampler):
    """32/64/128/256 Hz: 256 Hz FIR (zero-padded both ends), one-pole low-pass, interpolation."""

    def __init__(self, fs: int) -> None:
        self._factor = POW2_HZ // fs
        self._fir = _fir_256hz() if self._factor > 1 else None
        self._half = (FIR_TAPS - 1) // 2
        # the left zero padding of a centred ("same") convolution
        self._hist = np.zeros((FIR_TAPS - 1, 3))
        self._to_skip = self._half  # full-convolution outputs before "same" index 0
        self._n_up = 0  # 256 Hz samples in (the "same" output length at the end)
        a = 1.0 - TASO_DECAY
        self._taso = _LinearFilter(np.array([a]), np.array([1.0, -a]))
        self._taso_a = a
        self._z: np.ndarray | None = None
        self._lp = np.zeros((0, 3))  # low-passed 256 Hz samples still needed
        self._lp_start = 0  # index of self._lp[0] in the 256 Hz stream
        self._next = 0  # next 30 Hz output index

    def _upsampled(self, x: np.ndarray) -> np.ndarray:
        u = np.zeros((len(x) * self._factor, 3))
        u[:: self._factor] = x * self._factor
        return u

    def _convolve(self, u: np.ndarray) -> np.ndarray:
        if self._fir is None:
            return u
        seg = np.concatenate([self._hist, u])
        if len(seg) < FIR_TAPS:
            self._hist = seg
            return np.zeros((0, 3))
        out = np.stack([np.convolve(seg[:, c], self._fir, "valid") for c in range(3)], 1)
        self._hist = seg[-(FIR_TAPS - 1) :]
        skip = min(self._to_skip, len(out))
        self._to_skip -= skip
        return out[skip:]

    def _lowpass(self, v: np.ndarray) -> None:
        if not len(v):
            return
        x = TASO_DECAY * v / self._taso_a
        if self._z is None:
            self._z = self._taso.steady_state()[:, None] * x[0][None, :]
        y, self._z = self._taso.run(x, self._z)
        self._lp = np.concatenate([self._lp, y])

    def _interpolate(self, last: int | None) -> np.ndarray:
        """30 Hz outputs whose two 256 Hz neighbours are in; up to index ``last`` if given."""
        lp_end = self._lp_start + len(self._lp)
        # output j sits at 256 Hz position (256/30)(j+1) - 1; it needs floor(.) + 1 < lp_end
        j_max = int((lp_end + 1) * BASE_HZ / POW2_HZ) + 1
        j = np.arange(self._next, j_max + 1)
        if last is not None:
            j = j[j <= last]
        i = (j + 1).astype(float)
        pos = (POW2_HZ / BASE_HZ) * i
        idx = np.floor(pos).astype(np.int64) - 1
        ok = idx + 1 < lp_end
        j, i, idx = j[ok], i[ok], idx[ok]
        if not len(j):
            return np.zeros((0, 3))
        lo = self._lp[idx - self._lp_start]
        diffs = self._lp[idx + 1 - self._lp_start] - lo
        base = lo - diffs * (idx + 1)[:, None]
        out = ((POW2_HZ / BASE_HZ) * i)[:, None] * diffs + base
        self._next = int(j[-1]) + 1
        keep_from = int(np.floor((POW2_HZ / BASE_HZ) * (self._next + 1))) - 1
        drop = max(0, min(keep_from - self._lp_start, len(self._lp)))
        self._lp = self._lp[drop:]
        self._lp_start += drop
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        u = self._upsampled(x)
        self._n_up += len(u)
        self._lowpass(self._convolve(u))
        return self._interpolate(None)

    def flush(self) -> np.ndarray:
        if self._fir is not None:
            self._lowpass(self._convolve(np.zeros((self._half, 3))))
        n_out = self._n_up * BASE_HZ // POW2_HZ
        if n_out == 0:
            return np.zeros((0, 3))
        # the last 30 Hz sample stays zero, as in ActiGraph's resampler
        out = self._interpolate(n_out - 2)
        pad = np.zeros((max(0, n_out - self._next), 3))
        self._next = n_out
        return np.concatenate([out, pad])


def _resampler(fs: int) -> _Resampler:
    if fs in (32, 64, 128, 256):
        return _Pow2(fs)
    up, down = RATIONAL_FACTORS[fs]
    return _Decimate(down) if up == 1 else _UpsampleLowpass(up, down)


@dataclass(frozen=True)
class CountEpoch:
    """One finished epoch: its start, ActiGraph counts per axis, vector magnitude, light."""

    index: int  # epoch number since the accumulator started
    start: float  # seconds, on the clock of the accumulator's ``start``
    counts: tuple[int, int, int]  # x, y, z (ActiGraph axis 2, 1, 3 on a hip; any on a wrist)
    vm: float  # sqrt(x^2 + y^2 + z^2)
    light: float | None  # mean lux over the epoch, None when no light sample fell in it


class CountsAccumulator:
    """Streaming activity counts: push raw acceleration (g) in any chunks, get finished epochs.

    ``push(acc, light=None)`` takes (n, 3) samples at ``fs`` Hz, contiguous with the previous
    push (a gap or a rate change needs a new accumulator: :meth:`flush` the old one first);
    ``light`` holds the lux samples that span the same interval as ``acc``, at any rate. It
    returns the epochs finished so far, in order. The filters look a fraction of a second
    ahead, so an epoch is returned once that much data past its end is in; :meth:`flush`
    returns the rest (a trailing incomplete epoch is dropped).
    """

    def __init__(self, fs: int, epoch_s: int = 60, *, start: float = 0.0) -> None:
        if int(fs) != fs or int(fs) not in SUPPORTED_RATES:
            raise ActigraphyError(
                f"sample rate {fs} Hz is not one ActiGraph counts are defined for; "
                f"use one of {', '.join(map(str, SUPPORTED_RATES))}"
            )
        if int(epoch_s) != epoch_s or epoch_s < 1:
            raise ActigraphyError(f"epoch length must be a whole number of seconds, got {epoch_s}")
        self.fs = int(fs)
        self.epoch_s = int(epoch_s)
        self.start = float(start)
        self._resampler = _resampler(self.fs)
        self._bpf = _LinearFilter(BPF_B, BPF_A)
        self._z: np.ndarray | None = None
        self._tail30 = np.zeros((0, 3), dtype=np.int64)  # trimmed 30 Hz not yet in 10 Hz
        self._tail10 = np.zeros((0, 3), dtype=np.int64)  # 10 Hz not yet in an epoch
        self._n_epochs = 0
        self._n_raw = 0
        self._light: dict[int, list[float]] = {}  # epoch -> [sum, count]
        self._closed = False

    @property
    def samples_in(self) -> int:
        """Raw samples pushed so far."""
        return self._n_raw

    def push(self, acc: np.ndarray, light: np.ndarray | None = None) -> list[CountEpoch]:
        if self._closed:
            raise ActigraphyError("push after flush: start a new CountsAccumulator")
        x = np.asarray(acc, dtype=float)
        if x.ndim != 2 or x.shape[1] != 3:
            raise ActigraphyError(f"acceleration must be (samples, 3), got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ActigraphyError("acceleration has NaN or inf samples: restart the "
                                  "accumulator after a dropout instead of feeding them")
        if light is not None:
            self._add_light(np.asarray(light, dtype=float).ravel(), len(x))
        self._n_raw += len(x)
        return self._counts(self._resampler.push(x))

    def flush(self) -> list[CountEpoch]:
        """End of stream: the epochs still held back by the filters' look-ahead."""
        if self._closed:
            return []
        self._closed = True
        return self._counts(self._resampler.flush())

    def _add_light(self, lux: np.ndarray, n_acc: int) -> None:
        if not len(lux) or n_acc == 0:
            return
        t = (self._n_raw + (np.arange(len(lux)) + 0.5) * n_acc / len(lux)) / self.fs
        epochs = np.floor(t / self.epoch_s).astype(np.int64)
        for e in np.unique(epochs):
            vals = lux[(epochs == e) & np.isfinite(lux)]
            if len(vals):
                acc = self._light.setdefault(int(e), [0.0, 0.0])
                acc[0] += float(vals.sum())
                acc[1] += len(vals)

    def _counts(self, x30: np.ndarray) -> list[CountEpoch]:
        if len(x30):
            x30 = np.round(x30, ROUND_DECIMALS)
            if self._z is None:
                self._z = self._bpf.steady_state()[:, None] * x30[0][None, :]
            y, self._z = self._bpf.run(x30, self._z)
            mag = np.abs(COUNTS_PER_G * y)
            trimmed = np.floor(np.minimum(mag, CLIP)).astype(np.int64)
            trimmed[mag < DEAD_BAND] = 0
            self._tail30 = np.concatenate([self._tail30, trimmed])
        n10 = len(self._tail30) // 3
        if n10:
            blocks = self._tail30[: 3 * n10].reshape(n10, 3, 3).sum(axis=1) // 3
            self._tail30 = self._tail30[3 * n10 :]
            self._tail10 = np.concatenate([self._tail10, blocks])
        per_epoch = 10 * self.epoch_s
        n_ep = len(self._tail10) // per_epoch
        if not n_ep:
            return []
        sums = self._tail10[: n_ep * per_epoch].reshape(n_ep, per_epoch, 3).sum(axis=1)
        self._tail10 = self._tail10[n_ep * per_epoch :]
        out = []
        for row in sums:
            e = self._n_epochs
            lx = self._light.pop(e, None)
            cx, cy, cz = (int(v) for v in row)
            out.append(CountEpoch(
                index=e,
                start=self.start + e * self.epoch_s,
                counts=(cx, cy, cz),
                vm=float(np.sqrt(cx * cx + cy * cy + cz * cz)),
                light=None if lx is None else lx[0] / lx[1],
            ))
            self._n_epochs += 1
        for stale in [k for k in self._light if k < self._n_epochs]:
            del self._light[stale]
        return out


def activity_counts(acc: np.ndarray, fs: int, epoch_s: int = 60) -> np.ndarray:
    """Counts per epoch and axis, (n_epochs, 3) int64, of a whole recording (g, ``fs`` Hz)."""
    acc_ = CountsAccumulator(fs, epoch_s)
    epochs = acc_.push(acc) + acc_.flush()
    return np.array([e.counts for e in epochs], dtype=np.int64).reshape(-1, 3)


def vector_magnitude(counts: np.ndarray) -> np.ndarray:
    """Per-epoch vector magnitude sqrt(x^2 + y^2 + z^2) of (n, 3) axis counts."""
    c = np.asarray(counts, dtype=float)
    return np.sqrt((c * c).sum(axis=1))
