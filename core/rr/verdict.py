"""Whether an RR window may be classified: contact, coverage, gaps, plausibility and the share corrected."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from core.errors import ContractError
from core.rr.clean import ArtifactCounts, CleanedRR
from core.rr.series import RR_PLAUSIBLE_S

__all__ = ["RRInvalidReason", "RRQuality", "RRVerdict", "rr_verdict"]


class RRInvalidReason(enum.StrEnum):
    """Why an RR window must not be classified.

    ``missing_modality``, ``gap`` and ``low_coverage`` are the windowing's own words
    (:class:`core.signal.quality.InvalidReason`, a str enum too), so a comparison treats them
    alike; the others are what only a heart-rate device and a beat series can say. Declared
    most severe first.
    """

    NO_CONTACT = "no_contact"  # the device reported no skin contact
    MISSING_MODALITY = "missing_modality"  # no interval in the window at all
    GAP = "gap"  # a stretch without beats longer than the allowed gap
    LOW_COVERAGE = "low_coverage"  # the intervals cover too little of the window
    IMPLAUSIBLE = "implausible"  # an interval outside RR_PLAUSIBLE_S survived cleaning
    ARTIFACTS = "artifacts"  # too large a share of the intervals was corrected


# most severe first: the cause a person should fix first
_SEVERITY: Final = tuple(RRInvalidReason)


@dataclass(frozen=True)
class RRQuality:
    """Limits of :func:`rr_verdict`."""

    # Kubios' guidance: HRV from a segment with more than 5 % corrected beats is unreliable
    max_corrected_fraction: float = 0.05
    # the share of a window the intervals must cover: the same as the windowing's default
    min_coverage: float = 0.9
    # longer than any plausible interval (RR_PLAUSIBLE_S) plus one missed beat's worth
    max_gap_s: float = 3.0
    # share of the device's contact reports in the window that must say "contact"
    min_contact_fraction: float = 0.9

    def __post_init__(self) -> None:
        for name in ("max_corrected_fraction", "min_coverage", "min_contact_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ContractError(f"{v!r} is not a fraction in [0, 1]", field=name)
        if not self.max_gap_s > 0:
            raise ContractError(f"{self.max_gap_s!r} must be positive", field="max_gap_s")


@dataclass(frozen=True)
class RRVerdict:
    """Whether one RR window may be classified, and why not."""

    valid: bool
    reason: RRInvalidReason | None  # the most severe of ``reasons``
    reasons: tuple[RRInvalidReason, ...]
    detail: str  # numbers behind each reason, for logs and the status page
    coverage: float  # covered share of the window
    corrected_fraction: float
    counts: ArtifactCounts
    details: dict[RRInvalidReason, str] = field(default_factory=dict)  # each reason's numbers


def rr_verdict(
    cleaned: CleanedRR,
    start: float,
    end: float,
    *,
    contact: ArrayLike | None = None,
    quality: RRQuality | None = None,
) -> RRVerdict:
    """Judge the window ``[start, end)`` of a cleaned series (cleaned with context around it).

    ``contact``: the device's contact reports inside the window (booleans); None when the
    device cannot detect contact. Intervals count for the window (corrections, plausibility)
    when their ending beat lies in it; coverage and gaps are measured on the time every
    overlapping interval spans, clipped to the window.
    """
    q = quality or RRQuality()
    if not end > start:
        raise ContractError(f"window end {end} is not after start {start}", field="window")
    w = cleaned.between(start, end)
    span = end - start
    found: dict[RRInvalidReason, str] = {}
    if contact is not None:
        c = np.asarray(contact, dtype=bool).reshape(-1)
        share = float(c.mean()) if c.size else 1.0
        if share < q.min_contact_fraction:
            found[RRInvalidReason.NO_CONTACT] = f"contact in {share:.0%} of reports"
    coverage, gap = 0.0, span
    # each interval covers (t - rr, t]: the one ending after the window still covers its tail
    over = (cleaned.t_s > start) & (cleaned.t_s - cleaned.rr_s < end)
    if w.rr_s.size == 0:
        found[RRInvalidReason.MISSING_MODALITY] = "no RR interval in the window"
    else:
        begin = np.clip(cleaned.t_s[over] - cleaned.rr_s[over], start, end)
        stop = np.clip(cleaned.t_s[over], start, end)
        coverage = float((stop - begin).sum()) / span
        holes = np.concatenate([[begin[0] - start], begin[1:] - stop[:-1], [end - stop[-1]]])
        gap = float(holes.max())
        if gap > q.max_gap_s:
            found[RRInvalidReason.GAP] = f"{gap:.1f} s without beats > {q.max_gap_s:g} s"
        if coverage < q.min_coverage:
            found[RRInvalidReason.LOW_COVERAGE] = f"intervals cover {coverage:.0%} < {q.min_coverage:.0%}"
        lo, hi = RR_PLAUSIBLE_S
        odd = (w.rr_s < lo) | (w.rr_s > hi)
        if odd.any():
            found[RRInvalidReason.IMPLAUSIBLE] = (
                f"{int(odd.sum())} intervals outside {lo:g}-{hi:g} s after cleaning"
            )
        if w.corrected_fraction > q.max_corrected_fraction:
            found[RRInvalidReason.ARTIFACTS] = (
                f"{w.n_corrected}/{w.rr_s.size} intervals corrected "
                f"({w.corrected_fraction:.0%} > {q.max_corrected_fraction:.0%}; {w.counts.to_dict()})"
            )
    reasons = tuple(r for r in _SEVERITY if r in found)
    return RRVerdict(
        valid=not reasons,
        reason=reasons[0] if reasons else None,
        reasons=reasons,
        detail="; ".join(f"{r.value}: {found[r]}" for r in reasons),
        coverage=coverage,
        corrected_fraction=w.corrected_fraction,
        counts=w.counts,
        details={r: found[r] for r in reasons},
    )
