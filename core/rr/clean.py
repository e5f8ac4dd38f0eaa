"""RR cleaning: Lipponen & Tarvainen (2019) or the Malik rule, every correction counted and located.

Cleaning (:func:`clean_rr`) works on a series of RR intervals in seconds, each stamped with
the time of the beat that ends it (``t_s``; by default the cumulative sum of the intervals).
Two methods:

- ``"lipponen"`` (default): Lipponen & Tarvainen (2019, J Med Eng Technol 43:173-181). Each
  interval's successive difference ``dRR`` and its deviation from an 11-beat running median
  ``mRR`` (negative deviations doubled) are divided by adaptive thresholds: 5.2 x the
  quartile deviation of their magnitudes over a centred 91-beat window. An interval whose
  normalised ``dRR`` exceeds 1 is classified from where it falls in the (dRR, S12) and
  (dRR, S22) planes of the paper's Figure 1: an *ectopic* beat (a short-long or long-short
  pair: one misplaced beat), a *missed* beat (an interval that splits into ``n`` intervals
  close to the running median), an *extra* beat (an interval that merges with the next into
  one close to the median), or else a *long/short* interval. Where this departs from the
  paper (the long/short test, the series' ends, a threshold floor) the code says why.
- ``"malik"``: the 20 % rule (Malik et al. 1989): an interval differing by more than 20 %
  from the previous accepted one is rejected (the first is judged against the series
  median). It does not tell artefact kinds apart.

Corrections keep the beats' times wherever the artefact allows (an RR tachogram must stay
on the wall clock the windows are cut from):

- ectopic pair: the misplaced beat moves to the midpoint of its neighbours, so both
  intervals become their mean (the beat's time is interpolated; the total is kept);
- missed beat(s): ``n - 1`` beats are inserted evenly inside the long interval;
- extra beat: the spurious beat is removed, its two intervals merge;
- long/short interval, a lone ectopic interval, a Malik rejection: the value is replaced by
  linear interpolation between the nearest uncorrected neighbours; the time stays.

Detection is repeated on the corrected series (at most :data:`MAX_PASSES` passes, and only
while a pass finds fewer artefacts than the one before, as neurokit2 does) so that adjacent
artefacts hidden behind each other are found too. :class:`ArtifactCounts` counts
events (beats), not intervals: one ectopic beat is one count although it disturbs two
intervals, ``n - 1`` inserted beats are ``n - 1`` missed beats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from core.errors import ContractError
from core.rr.series import FloatArray, as_series

__all__ = ["ARTIFACT_KINDS", "MAX_PASSES", "ArtifactCounts", "CleanedRR", "Method", "clean_rr"]

ARTIFACT_KINDS: Final = ("ectopic", "missed", "extra", "long_short", "rejected")
Method = Literal["lipponen", "malik"]

# Lipponen & Tarvainen (2019), as published
ALPHA: Final = 5.2  # threshold = ALPHA x quartile deviation
THRESHOLD_BEATS: Final = 91  # window of the adaptive thresholds
MEDIAN_BEATS: Final = 11  # running median the mRR series deviates from
C1: Final = 0.13  # slope of the ectopic decision boundary in the (dRR, S12) plane
C2: Final = 0.17  # its offset
# The thresholds have a floor: on a nearly constant series (a metronomic simulation, a
# device that quantizes RR coarsely) the quartile deviation is ~0 and any tiny difference
# would become an artefact. 10 ms is ten times the BLE RR resolution (1/1024 s) and far
# below the size of any artefact the method is meant to find.
MIN_THRESHOLD_S: Final = 0.010
MAX_PASSES: Final = 3  # most detection passes (adjacent artefacts can hide each other once)
MIN_INTERVALS: Final = 5  # fewer intervals give no basis for adaptive thresholds
MALIK_FRACTION: Final = 0.20


# -- results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactCounts:
    """How many beats of each kind were corrected (events, not intervals)."""

    ectopic: int = 0  # misplaced beats (premature or late), each disturbing two intervals
    missed: int = 0  # beats inserted into intervals that spanned more than one beat
    extra: int = 0  # spurious beats removed
    long_short: int = 0  # single intervals too long or too short, interpolated
    rejected: int = 0  # intervals rejected by the Malik rule (which tells no kinds apart)

    @property
    def total(self) -> int:
        return self.ectopic + self.missed + self.extra + self.long_short + self.rejected

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ARTIFACT_KINDS}

    def __add__(self, other: ArtifactCounts) -> ArtifactCounts:
        return ArtifactCounts(**{k: getattr(self, k) + getattr(other, k) for k in ARTIFACT_KINDS})


@dataclass(frozen=True)
class CleanedRR:
    """A cleaned RR series; every correction is counted and located."""

    rr_s: FloatArray  # (M,) intervals, seconds
    t_s: FloatArray  # (M,) time of the beat ending each interval, on the input's clock
    corrected: NDArray[np.bool_]  # (M,) the interval's value was changed or inserted
    counts: ArtifactCounts
    method: str
    # where each counted event happened (beat time) and its kind, for per-window counts
    event_t_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    event_kind: tuple[str, ...] = ()

    @property
    def n_corrected(self) -> int:
        return int(self.corrected.sum())

    @property
    def corrected_fraction(self) -> float:
        return self.n_corrected / self.rr_s.size if self.rr_s.size else 0.0

    def between(self, start: float, end: float) -> CleanedRR:
        """The intervals whose ending beat lies in ``[start, end)``, with their events' counts."""
        keep = (self.t_s >= start) & (self.t_s < end)
        ev = (self.event_t_s >= start) & (self.event_t_s < end)
        kinds = tuple(k for k, e in zip(self.event_kind, ev, strict=True) if e)
        return CleanedRR(
            rr_s=self.rr_s[keep],
            t_s=self.t_s[keep],
            corrected=self.corrected[keep],
            counts=ArtifactCounts(**{k: kinds.count(k) for k in ARTIFACT_KINDS}),
            method=self.method,
            event_t_s=self.event_t_s[ev],
            event_kind=kinds,
        )


# -- Lipponen & Tarvainen detection ---------------------------------------------------------
def _running_quantiles(x: FloatArray, width: int, qs: Sequence[float]) -> list[FloatArray]:
    """Quantiles ``qs`` of centred ``width``-wide windows over ``x`` (shrinking at the ends).

    Linear interpolation between order statistics, as ``np.quantile``'s default and pandas'
    rolling quantile. Sorting the (N, width) windows at once, with NaN padding sorted to the
    end of each row, is what keeps this cheap: ``np.nanquantile`` along an axis loops in
    Python over the rows.
    """
    n, half = x.size, width // 2
    nan = np.full(half, np.nan)
    padded = np.concatenate([nan, x, nan])
    rows = np.sort(sliding_window_view(padded, width), axis=1)  # (N, width), NaN last
    i = np.arange(n)
    count = np.minimum(n, i + half + 1) - np.maximum(0, i - half)  # (N,) values in each window
    out = []
    for q in qs:
        pos = q * (count - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, count - 1)
        frac = pos - lo
        out.append(rows[i, lo] * (1.0 - frac) + rows[i, hi] * frac)
    return out


def _threshold(x: FloatArray) -> FloatArray:
    q1, q3 = _running_quantiles(np.abs(x), THRESHOLD_BEATS, (0.25, 0.75))
    return np.maximum(ALPHA * (q3 - q1) / 2.0, MIN_THRESHOLD_S)


@dataclass(frozen=True)
class _Event:
    kind: str
    first: int  # first interval the event covers
    last: int  # last interval (inclusive)
    n_split: int = 0  # missed: how many intervals the long one becomes


def _lipponen_events(rr: FloatArray) -> list[_Event]:
    n = rr.size
    (med,) = _running_quantiles(rr, MEDIAN_BEATS, (0.5,))
    d = np.empty(n)
    d[1:] = np.diff(rr)
    d[0] = rr[0] - med[0]  # the first interval has no predecessor: judge it by the median
    th1 = _threshold(d)
    dn = d / th1  # normalised dRR
    m = rr - med
    m[m < 0] *= 2.0  # the paper doubles short deviations: short artefacts deviate less
    th2 = _threshold(m)
    mn = m / th2
    # subspaces S12 and S22. Beyond its ends the series is taken as steady (differences 0):
    # reflecting it, as neurokit2 does, mirrors a first jump into a fake alternation.
    p = np.concatenate([[0.0, 0.0], dn, [0.0, 0.0]])
    prev1, next1, next2 = p[1:-3], p[3:-1], p[4:]
    s12 = np.where(dn > 0, np.maximum(prev1, next1), np.minimum(prev1, next1))
    s22 = np.where(dn >= 0, np.minimum(next1, next2), np.maximum(next1, next2))

    def ectopic(i: int) -> bool:
        return bool(
            (dn[i] > 1 and s12[i] < -C1 * dn[i] - C2) or (dn[i] < -1 and s12[i] > -C1 * dn[i] + C2)
        )

    # An ectopic beat shows as a short-long (or long-short) pair of intervals: differences
    # of alternating sign, the middle one (the second interval's) falling in the ectopic
    # region of the (S11, S12) plane. The flag on interval j therefore means that the
    # beat between intervals j - 1 and j is misplaced, and the first interval of the pair,
    # met first in the scan, must look one ahead before it is called short or long.
    events: list[_Event] = []
    free = 0  # first interval not yet explained by an event of this pass
    for i in np.flatnonzero(np.abs(dn) > 1):
        i = int(i)
        if i < free:
            continue
        if i + 1 < n and ectopic(i + 1) and np.sign(dn[i + 1]) != np.sign(dn[i]):
            events.append(_Event("ectopic", i, i + 1))
            free = i + 3  # the difference after the pair compares with a corrected value
            continue
        if ectopic(i):  # the first interval of the pair was unremarkable (or already used)
            first = i - 1 if i >= 1 and i - 1 >= free else i
            events.append(_Event("ectopic", first, i))
            free = i + 2
            continue
        long_ = dn[i] > 1 and s22[i] < -1
        short = dn[i] < -1 and s22[i] > 1
        far = abs(mn[i]) > 3
        if not (long_ or short or far):
            continue
        # S22 looks two differences ahead: that is how an extra beat that splits an
        # interval unevenly (the longer part first) is seen, so the extra test comes first
        if (short or (far and m[i] < 0)) and i + 1 < n and abs(rr[i] + rr[i + 1] - med[i]) < th2[i]:
            events.append(_Event("extra", i, i + 1))
            free = i + 3
            continue
        # Otherwise an interval is long (short) only when the very next difference jumps
        # back by more than the threshold too. The paper's S22 takes the larger jump of the
        # next two, which also blames a normal interval just before an artefact, and the
        # crest (trough) of a strong breathing wave that flattens for one beat before it
        # falls (rises): the next interval is then judged on its own.
        nxt = dn[i + 1] if i + 1 < n else 0.0  # the last interval: only the median judges it
        long_ = dn[i] > 1 and nxt < -1
        short = dn[i] < -1 and nxt > 1
        if not (long_ or short or far):
            continue
        k = round(rr[i] / med[i])
        if (long_ or (far and m[i] > 0)) and k >= 2 and abs(rr[i] / k - med[i]) < th2[i]:
            events.append(_Event("missed", i, i, n_split=k))
        else:
            events.append(_Event("long_short", i, i))
        free = i + 1  # the jump back after a lone interval fits no pattern: nothing to skip
    return events


def _apply(
    rr: FloatArray, t: FloatArray, corrected: NDArray[np.bool_], events: Sequence[_Event]
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], list[tuple[float, str, int]]]:
    """Correct ``events`` (non-overlapping, in order); returns the series and (time, kind, n)."""
    # values first, on the original index axis: interpolate from intervals no event touches
    touched = np.zeros(rr.size, bool)
    for e in events:
        touched[e.first : e.last + 1] = True
    good = np.flatnonzero(~touched)
    values = rr.copy()
    if good.size:
        single = [e.first for e in events if e.first == e.last and e.kind in ("ectopic", "long_short")]
        values[single] = np.interp(single, good, rr[good])
    out_rr: list[FloatArray] = []
    out_t: list[FloatArray] = []
    out_c: list[NDArray[np.bool_]] = []
    log: list[tuple[float, str, int]] = []
    pos = 0
    for e in events:
        out_rr.append(values[pos : e.first])
        out_t.append(t[pos : e.first])
        out_c.append(corrected[pos : e.first])
        i, j = e.first, e.last
        # where the event's first interval began: the previous beat when there is one (a
        # device's beat times need not add up exactly to its intervals)
        begin = t[i - 1] if i > 0 else t[i] - rr[i]
        if e.kind == "ectopic" and j > i:  # move the misplaced beat to its neighbours' midpoint
            half = (rr[i] + rr[j]) / 2.0
            out_rr.append(np.array([half, half]))
            out_t.append(np.array([(begin + t[j]) / 2.0, t[j]]))
            log.append((float(t[i]), "ectopic", 1))
        elif e.kind == "missed":
            k = e.n_split
            out_rr.append(np.full(k, rr[i] / k))
            out_t.append(begin + (t[i] - begin) * np.arange(1, k + 1) / k)
            log.append((float(t[i]), "missed", k - 1))
        elif e.kind == "extra":  # remove the beat between intervals i and i + 1
            out_rr.append(np.array([rr[i] + rr[j]]))
            out_t.append(t[j : j + 1])
            log.append((float(t[i]), "extra", 1))
        else:  # lone ectopic interval or long/short: the value was interpolated above
            out_rr.append(values[i : i + 1])
            out_t.append(t[i : i + 1])
            log.append((float(t[i]), e.kind, 1))
        n_out = out_rr[-1].size
        out_c.append(np.ones(n_out, bool))
        pos = j + 1
    out_rr.append(values[pos:])
    out_t.append(t[pos:])
    out_c.append(corrected[pos:])
    return np.concatenate(out_rr), np.concatenate(out_t), np.concatenate(out_c), log


def _malik(rr: FloatArray) -> NDArray[np.bool_]:
    """Rejected intervals under the 20 % rule (against the previous accepted interval)."""
    rejected = np.zeros(rr.size, bool)
    ref = float(np.median(rr))
    for i, r in enumerate(rr.tolist()):
        if abs(r - ref) > MALIK_FRACTION * ref:
            rejected[i] = True
        else:
            ref = r
    return rejected


def clean_rr(rr_s: ArrayLike, t_s: ArrayLike | None = None, *, method: Method = "lipponen") -> CleanedRR:
    """Detect and correct artefacts in RR intervals (seconds); see the module docstring.

    ``t_s``: time of the beat ending each interval (strictly increasing); defaults to the
    cumulative sum of ``rr_s``. A series shorter than :data:`MIN_INTERVALS` is returned
    unchanged (nothing to judge it against; :func:`rr_verdict` refuses such a window).
    Raises :class:`~core.errors.ContractError` for non-finite or non-positive intervals.
    """
    rr, t = as_series(rr_s, t_s)
    rr, t = rr.copy(), t.copy()  # the result never aliases the caller's arrays
    corrected = np.zeros(rr.size, bool)
    log: list[tuple[float, str, int]] = []
    if method not in ("lipponen", "malik"):
        raise ContractError(f"unknown cleaning method {method!r}; use 'lipponen' or 'malik'", field="method")
    if rr.size >= MIN_INTERVALS:
        if method == "malik":
            rejected = _malik(rr)
            keep = np.flatnonzero(~rejected)
            if rejected.any() and keep.size:
                rr[rejected] = np.interp(np.flatnonzero(rejected), keep, rr[keep])
            corrected = rejected
            log = [(float(x), "rejected", 1) for x in t[rejected]]
        else:
            found = math.inf
            for _ in range(MAX_PASSES):
                events = _lipponen_events(rr)
                # a pass that finds as many as the one before is chasing its own
                # interpolations (a corrected peak makes its neighbour the next peak)
                if not events or len(events) >= found:
                    break
                found = len(events)
                rr, t, corrected, new = _apply(rr, t, corrected, events)
                log += new
    counts = {k: 0 for k in ARTIFACT_KINDS}
    ev_t: list[float] = []
    ev_k: list[str] = []
    for when, kind, n in log:
        counts[kind] += n
        ev_t += [when] * n
        ev_k += [kind] * n
    order = np.argsort(ev_t, kind="stable")
    return CleanedRR(
        rr_s=rr,
        t_s=t,
        corrected=corrected,
        counts=ArtifactCounts(**counts),
        method=method,
        event_t_s=np.asarray(ev_t, dtype=np.float64)[order],
        event_kind=tuple(ev_k[i] for i in order),
    )
