"""Beats modalities in a window: RR intervals -> cleaned, judged, an even tachogram, heart rate and RMSSD.

The window assembler (:mod:`core.signal.windows`) hands :func:`beat_window` a beats
modality's intervals (each stamped with the time of the beat that ends it, with
:attr:`~core.contract.BeatRules.context_s` of context on each side of the window) and the
device's contact reports, and :func:`beat_window` runs the kernel's RR steps in order:

1. :func:`core.rr.clean_rr` on every interval it was given, context included, so beats at
   a window's edges are judged by their neighbours as beats in its middle are;
2. :func:`core.rr.rr_verdict` on the window's span (contact, gaps, coverage, plausibility,
   share corrected), each cause an :class:`~core.signal.quality.InvalidReason`;
3. :func:`core.rr.tachogram` on the window's grid: the model's input;
4. :func:`core.hrv.hrv_time_domain` on the window's cleaned intervals: the heart rate and
   RMSSD a decision may carry (:data:`DERIVED_KEYS`). The intervals themselves are raw data
   and never leave the hub.

:class:`ContactSteps` holds a device's contact reports as a step signal (a report holds
until the next one), sampled every :data:`CONTACT_STEP_S` over a window for the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from core.contract import BeatRules, Modality
from core.hrv import MIN_INTERVALS, hrv_time_domain
from core.rr import clean_rr, rr_verdict, tachogram
from core.signal.quality import InvalidReason
from core.signal.resample import FloatArray

__all__ = ["CONTACT_STEP_S", "DERIVED_KEYS", "BeatWindow", "ContactSteps", "beat_window"]

# the contact step signal is read once a second: a strap reports contact with each
# notification, about once a second, so a finer grid would only repeat reports
CONTACT_STEP_S: Final = 1.0
DERIVED_KEYS: Final = ("hr_bpm", "rmssd_ms")


@dataclass
class BeatWindow:
    """One beats modality of one window."""

    data: FloatArray  # (1, T) tachogram, seconds, not normalized
    problems: list[tuple[InvalidReason, str]]
    coverage: float  # share of the window the intervals cover
    derived: dict[str, float] = field(default_factory=dict)  # DERIVED_KEYS when computable
    empty: bool = False  # no usable interval: data is zeros


class ContactSteps:
    """A device's skin-contact reports as a step signal; bounded by :meth:`drop_before`."""

    def __init__(self) -> None:
        self._t: list[float] = []
        self._v: list[bool] = []

    def __len__(self) -> int:
        return len(self._t)

    def push(self, t: float, contact: bool) -> None:
        """A report at time ``t``; one not later than the last is ignored (it changes nothing
        a step signal can say), as is one repeating the current state."""
        if not math.isfinite(t) or (self._t and t <= self._t[-1]):
            return
        if self._v and self._v[-1] == bool(contact):
            return
        self._t.append(float(t))
        self._v.append(bool(contact))

    def samples(self, start: float, end: float) -> NDArray[np.bool_] | None:
        """The state every :data:`CONTACT_STEP_S` in ``[start, end)``; None when no report
        precedes any of those instants (a device that cannot tell contact says nothing)."""
        if not self._t:
            return None
        n = max(1, math.ceil((end - start) / CONTACT_STEP_S - 1e-9))
        grid = start + np.arange(n) * CONTACT_STEP_S  # (n,)
        idx = np.searchsorted(np.asarray(self._t), grid, side="right") - 1
        known = idx >= 0
        if not known.any():
            return None
        return np.asarray(self._v, dtype=bool)[idx[known]]

    def drop_before(self, cut: float) -> None:
        """Forget reports no window from ``cut`` on needs (the one in force at ``cut`` stays)."""
        j = int(np.searchsorted(np.asarray(self._t), cut, side="right")) - 1
        if j > 0:
            del self._t[:j]
            del self._v[:j]


def beat_window(
    m: Modality,
    t: FloatArray,
    rr: FloatArray,
    start: float,
    end: float,
    n_out: int,
    rules: BeatRules,
    contact: NDArray[np.bool_] | None = None,
) -> BeatWindow:
    """Window ``[start, end)`` of a beats modality from its intervals ``rr`` (s) ending at
    ``t`` (strictly increasing; the window's span plus context); see the module docstring."""
    problems: list[tuple[InvalidReason, str]] = []
    usable = np.isfinite(rr) & (rr > 0)
    if not usable.all():
        inside = (t >= start) & (t < end) & ~usable
        if inside.any():
            problems.append((InvalidReason.IMPLAUSIBLE, f"{m.name}: {int(inside.sum())} "
                                                        "intervals zero or not finite"))
        t, rr = t[usable], rr[usable]
    if rr.size == 0:
        problems.append((InvalidReason.MISSING_MODALITY, f"{m.name}: no beats in window"))
        return BeatWindow(np.zeros((1, n_out)), problems, 0.0, empty=True)
    cleaned = clean_rr(rr, t, method=rules.method)  # type: ignore[arg-type]
    verdict = rr_verdict(cleaned, start, end, contact=contact, quality=rules.quality())
    problems += [(InvalidReason(r.value), f"{m.name}: {verdict.details[r]}")
                 for r in verdict.reasons]
    data = tachogram(cleaned.rr_s, cleaned.t_s, start=start, n=n_out, rate_hz=m.rate_hz)
    derived: dict[str, float] = {}
    inside_rr = cleaned.between(start, end).rr_s
    if inside_rr.size >= MIN_INTERVALS:
        td = hrv_time_domain(inside_rr)
        derived = {"hr_bpm": 60000.0 / td["MeanNN"], "rmssd_ms": td["RMSSD"]}
    return BeatWindow(data[None, :], problems, verdict.coverage, derived)

