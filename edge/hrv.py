"""Heart-rate variability for hub users: RR cleaning and the standard HRV features.

The implementation lives in the numpy kernel (:mod:`core.hrv`, :mod:`core.rr`), which
training calls too; this module only gives it the hub's public name.

    >>> from edge.hrv import clean_rr, hrv_features
    >>> rr_s = [0.81, 0.83, 0.80, 0.52, 1.12, 0.82, 0.79, 0.81, 0.84, 0.80]  # one ectopic beat
    >>> cleaned = clean_rr(rr_s)            # Lipponen & Tarvainen (2019); method="malik" too
    >>> cleaned.counts.ectopic
    1
    >>> sorted(hrv_features(cleaned.rr_s))  # keys; values in ms, %, ms²
    ['HF', 'LF', 'LFHF', 'MeanNN', 'RMSSD', 'SDNN', 'SDSD', 'pNN50']

- ``hrv_features(rr_s) -> dict``: ``MeanNN``, ``SDNN``, ``RMSSD``, ``SDSD`` (ms), ``pNN50``
  (%), ``LF``, ``HF`` (ms², 0.04-0.15 and 0.15-0.4 Hz) and ``LFHF``, computed on exactly the
  intervals given, in seconds (LF/HF are NaN below 25 s of beats). The method choices that
  move LF/HF (4 Hz cubic-spline tachogram, linear detrend, Welch) are stated in
  :mod:`core.hrv`.
- ``clean_rr(rr_s, t_s=None, *, method="lipponen" | "malik") -> CleanedRR``: the corrected
  intervals, their beat times, which were corrected and ``counts`` per kind (ectopic,
  missed, extra, long/short; ``rejected`` for the Malik rule). Cleaning is never implicit:
  pass ``cleaned.rr_s`` to ``hrv_features`` to get features of the cleaned series.

Both raise :class:`core.errors.ContractError` (a ``WearableEdgeError``) for non-finite or
non-positive intervals.
"""

from __future__ import annotations

from core.hrv import HRV_KEYS, hrv_features
from core.rr import ArtifactCounts, CleanedRR, clean_rr

__all__ = ["HRV_KEYS", "ArtifactCounts", "CleanedRR", "clean_rr", "hrv_features"]
