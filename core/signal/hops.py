"""Streaming state of one modality: resampled, normalized hops carried from window to window.

A window of ``B = window_s / hop_s`` hops shares ``B - 1`` of them with the window before, so
the hub resamples, normalizes and summarizes (for the quality checks) each hop once, when it
first enters a window, instead of the whole window every hop. The result is the same bits as
the whole-window computation (``WindowAssembler(streaming=False)``) because every value is a
function of the same raw samples through the same float expressions:

- a resampled point reads only the two raw samples around each of its query times, and every
  window and hop computes a point's query times by one expression of its integer index on the
  hop grid (:func:`core.signal.resample.hop_grid_times`);
- normalization and the float32 cast act on each value alone;
- the quality checks need, per channel, the window's max and min and how many samples sit at
  each, which are exact reductions of the hops' own.

Where that argument needs a precondition, it is checked, and :meth:`HopCache.window` returns
``None`` so the caller computes the window whole: a non-finite sample or a gap longer than
``max_gap_s`` in the window's raw span, a window edge not covered, a query time not bracketed
by raw samples (edge holding would depend on the span), a source rate estimate that changes
the decimation factor, anything the quality checks would look at closely.
"""

from __future__ import annotations

import math

import numpy as np

from core.contract import Modality
from core.signal.quality import InvalidReason, QualityThresholds, quality_problems
from core.signal.resample import FloatArray, resample_hop_grid

__all__ = ["HopCache", "hop_layout"]


def hop_layout(window_s: float, hop_s: float, rate_hz: float) -> tuple[int, int] | None:
    """``(hops per window, target points per hop)``, or ``None`` when a window is not a whole
    number of hops of whole target points (then windows are computed whole)."""
    b, p = window_s / hop_s, hop_s * rate_hz
    if b < 1 or abs(b - round(b)) > 1e-9 or abs(p - round(p)) > 1e-9 or round(p) < 1:
        return None
    return round(b), round(p)


class HopCache:
    """One modality's hops (a ring of the last ``B``), and the raw samples' scan for gaps and
    non-finite values, each sample scanned once."""

    __slots__ = (
        "_gaps",
        "_id",
        "_m",
        "_nonfinite",
        "_offs",
        "_out",
        "_q",
        "_scanned_to",
        "_stats",
        "hop_s",
        "m",
        "margin",
        "max_gap_s",
        "n_hops",
        "norm",
        "origin",
        "per_hop",
    )

    def __init__(
        self,
        m: Modality,
        *,
        origin: float,
        hop_s: float,
        n_hops: int,
        per_hop: int,
        margin: float,
        max_gap_s: float,
        norm: tuple[FloatArray, FloatArray, float] | None,
    ) -> None:
        self.m = m
        self.origin, self.hop_s = origin, hop_s
        self.n_hops, self.per_hop = n_hops, per_hop
        self.margin, self.max_gap_s = margin, max_gap_s
        self.norm = norm  # (center (C, 1), scale (C, 1), clip) or None: raw units
        c = m.n_channels
        # ring of hops, written twice (hop i at slot i % B and B + i % B) so that every
        # window is one contiguous slice of it: one copy per window
        self._out = np.zeros((c, 2 * n_hops * per_hop), np.float32)
        # per slot, plain Python (a window reads 12 of each: cheaper than numpy's call cost):
        self._id = [-1] * n_hops  # hop index held (-1: none)
        self._m = [0] * n_hops  # decimation factor it was made with
        self._q = [(0.0, 0.0)] * n_hops  # first and last time raw samples were read at
        # per channel: max, min, samples at the max, samples at the min (None: no sample)
        self._stats: list[tuple[list[float], list[float], list[int], list[int]] | None] = [
            None
        ] * n_hops
        # a hop's target points after its start, as hop_grid_times computes them
        self._offs = np.arange(per_hop, dtype=np.int64) / m.rate_hz
        self._scanned_to = -math.inf
        self._gaps: list[float] = []  # right-hand sample times of spacings > max_gap_s
        self._nonfinite: list[float] = []  # times of samples with a non-finite value

    def reset(self) -> None:
        """Forget every hop and the scan (raw samples a pending window needed were dropped)."""
        self._id = [-1] * self.n_hops
        self._scanned_to = -math.inf
        self._gaps.clear()
        self._nonfinite.clear()

    def _scan(self, tb: FloatArray, xb: FloatArray, i0: int, i1: int) -> None:
        """Record gaps and non-finite samples of ``tb[:i1]`` not scanned yet; forget those
        before ``tb[i0]``, which no window from this one on reads."""
        a = (
            i0
            if self._scanned_to == -math.inf
            else int(np.searchsorted(tb, self._scanned_to, side="right"))
        )
        a = max(a, i0)
        if a < i1:
            lo = a - 1 if a > i0 else a  # the spacing from the last scanned sample too
            d = tb[lo + 1 : i1] - tb[lo : i1 - 1]
            if d.size and d.max() > self.max_gap_s:
                self._gaps += tb[lo + 1 : i1][d > self.max_gap_s].tolist()
            # one reduction: a finite sum means every value is finite (an overflowing sum
            # only sends this to the exact test)
            if not math.isfinite(xb[a:i1].sum()):
                fin = np.isfinite(xb[a:i1]).all(axis=1)
                self._nonfinite += tb[a:i1][~fin].tolist()
            self._scanned_to = float(tb[i1 - 1])
        if self._gaps or self._nonfinite:
            t_lo = tb[i0]
            # a gap ending at the span's first sample began before it: not inside the span
            self._gaps = [g for g in self._gaps if g > t_lo]
            self._nonfinite = [g for g in self._nonfinite if g >= t_lo]

    def _make_hop(self, i: int, tb: FloatArray, xb: FloatArray, dec: int) -> bool:
        """Resample, normalize and summarize hop ``i`` into its slot; False when a query time
        is not bracketed by raw samples of the hop's span (its values would depend on which
        span edge-held them)."""
        lo = self.origin + i * self.hop_s
        hi = self.origin + (i + 1) * self.hop_s
        s0, a, b, s1 = np.searchsorted(
            tb, (lo - self.margin, lo, hi, hi + self.margin), side="left"
        ).tolist()
        if s1 - s0 < 2:
            return False
        t = tb[s0:s1]
        if dec == 1:  # hop_grid_times of this hop's points, in one operation
            tq = lo + self._offs
            q0, q1 = float(tq[0]), float(tq[-1])
            if not (t[0] <= q0 and t[-1] > q1):
                return False
            if xb.shape[1] == 1:
                y = np.interp(tq, t, xb[s0:s1, 0])[None, :]
            else:
                y = np.stack([np.interp(tq, t, xb[s0:s1, c]) for c in range(xb.shape[1])])
        else:
            y, q0, q1 = resample_hop_grid(
                t,
                np.ascontiguousarray(xb[s0:s1].T),
                self.origin,
                self.hop_s,
                self.per_hop,
                i * self.per_hop,
                self.per_hop,
                self.m.rate_hz,
                dec,
            )
            if not (t[0] <= q0 and t[-1] > q1):
                return False
        slot = i % self.n_hops
        if self.norm is not None:  # normalize() on the hop: the same element-wise operations
            y -= self.norm[0]
            y /= self.norm[1]
            np.clip(y, -self.norm[2], self.norm[2], out=y)  # = minimum, maximum: no NaN here
        p = self.per_hop
        self._out[:, slot * p : (slot + 1) * p] = y
        self._out[:, (slot + self.n_hops) * p : (slot + self.n_hops + 1) * p] = y
        if b > a:
            raw = xb[a:b]  # (n, C): the hop's own samples, [lo, hi)
            hv, lv = raw.max(axis=0), raw.min(axis=0)
            self._stats[slot] = (
                hv.tolist(),
                lv.tolist(),
                np.count_nonzero(raw == hv, axis=0).tolist(),
                np.count_nonzero(raw == lv, axis=0).tolist(),
            )
        else:
            self._stats[slot] = None
        self._id[slot], self._m[slot], self._q[slot] = i, dec, (q0, q1)
        return True

    def window(
        self,
        k: int,
        tb: FloatArray,
        xb: FloatArray,
        i0: int,
        i1: int,
        start: float,
        end: float,
        dt_nom: float,
        dec: int,
        min_coverage: float,
        window_s: float,
        quality: QualityThresholds,
    ) -> tuple[np.ndarray, list[tuple[InvalidReason, str]], float] | None:
        """Window ``k``'s normalized float32 ``(C, T)``, its quality problems and coverage
        from the hops, or ``None``: compute it whole. ``tb[i0:i1]`` is the window's raw span
        (its samples, margins included), ``dec`` the decimation factor the window uses."""
        self._scan(tb, xb, i0, i1)
        if (
            self._gaps
            or self._nonfinite
            or i1 - i0 < 2
            or tb[i0] > start
            or tb[i1 - 1] < end - self.max_gap_s
            or not math.isfinite(dt_nom)
        ):
            return None
        j0, j1, jb = np.searchsorted(
            tb, (start, end, self.origin + (k + self.n_hops) * self.hop_s), side="left"
        ).tolist()
        n = j1 - j0
        cov = min(1.0, n * dt_nom / window_s)
        if cov < min_coverage or n < 2 or jb != j1:
            return None
        nh = self.n_hops
        for i in range(k, k + nh):
            slot = i % nh
            if (self._id[slot] != i or self._m[slot] != dec) and not self._make_hop(i, tb, xb, dec):
                return None
        # the window's first and last query times must be bracketed by its own span too
        if not (tb[i0] <= self._q[k % nh][0] and tb[i1 - 1] > self._q[(k + nh - 1) % nh][1]):
            return None
        problems: list[tuple[InvalidReason, str]] = []
        if self._suspect(n, quality):
            problems = quality_problems(self.m, np.ascontiguousarray(xb[j0:j1].T), dt_nom, quality)
        r = (k % nh) * self.per_hop
        return self._out[:, r : r + nh * self.per_hop].copy(), problems, cov

    def _suspect(self, n: int, q: QualityThresholds) -> bool:
        """Would :func:`quality_problems` find anything to look at (a near-flat channel, a
        value out of range, a max or min that many samples sit at)? Exact from the hops'
        stats, with the same expressions; when it would, the caller runs it on the window."""
        stats = [st for st in self._stats if st is not None]
        lo_r, hi_r = self.m.valid_range
        lim = q.saturated_fraction * n
        for c in range(self.m.n_channels):
            hi_v = max(st[0][c] for st in stats)
            lo_v = min(st[1][c] for st in stats)
            thr = q.flat_std * max(1.0, max(abs(hi_v), abs(lo_v)))
            if (hi_v - lo_v) ** 2 < 2 * n * thr**2 or lo_v < lo_r or hi_v > hi_r:
                return True
            if (
                sum(st[2][c] for st in stats if st[0][c] == hi_v) > lim
                or sum(st[3][c] for st in stats if st[1][c] == lo_v) > lim
            ):
                return True
        return False
