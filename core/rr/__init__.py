"""RR intervals from a heart-rate device: cleaning, window verdicts and the model's tachogram.

numpy only: the hub (a stock Bluetooth heart-rate strap or watch) and training (RR derived
from ECG or BVP peaks) share this one implementation. One module per job:

- :mod:`core.rr.series`: the input (intervals in seconds, each stamped with the time of the
  beat that ends it) and the modality's constants (``rr`` in an input contract).
- :mod:`core.rr.clean`: artefact detection and correction, Lipponen & Tarvainen (2019) or
  the Malik 20 % rule, with exact counts per kind (:class:`ArtifactCounts`).
- :mod:`core.rr.verdict`: whether a window may be classified (contact, gaps, coverage,
  plausibility, share of corrected intervals), with a reason.
- :mod:`core.rr.tachogram`: the evenly resampled series a model sees (4 Hz cubic spline).

HRV features of a series live in :mod:`core.hrv`.
"""

from __future__ import annotations

from core.rr.clean import ARTIFACT_KINDS, MAX_PASSES, ArtifactCounts, CleanedRR, Method, clean_rr
from core.rr.series import RR_MODALITY, RR_PLAUSIBLE_S, TACHOGRAM_RATE_HZ, as_series
from core.rr.tachogram import cubic_spline, tachogram
from core.rr.verdict import RRInvalidReason, RRQuality, RRVerdict, rr_verdict

__all__ = [
    "ARTIFACT_KINDS",
    "MAX_PASSES",
    "RR_MODALITY",
    "RR_PLAUSIBLE_S",
    "TACHOGRAM_RATE_HZ",
    "ArtifactCounts",
    "CleanedRR",
    "Method",
    "RRInvalidReason",
    "RRQuality",
    "RRVerdict",
    "as_series",
    "clean_rr",
    "cubic_spline",
    "rr_verdict",
    "tachogram",
]
