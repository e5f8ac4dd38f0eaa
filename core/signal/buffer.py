"""The raw buffer: one modality's accepted samples, appended in chunks, dropped from the front.

Held by :class:`core.signal.windows.WindowAssembler`, one per modality; it measures how much
data it holds (for the stall cap) by the time the samples span, gaps clipped.
"""

from __future__ import annotations

import math

import numpy as np

from core.signal.resample import FloatArray

__all__ = ["RawBuffer"]


class RawBuffer:
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
