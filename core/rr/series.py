"""RR series as the kernel takes them: validated intervals and beat times, and the modality's constants."""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import ContractError

__all__ = ["RR_MODALITY", "RR_PLAUSIBLE_S", "TACHOGRAM_RATE_HZ", "FloatArray", "as_series"]

FloatArray = NDArray[np.float64]

RR_MODALITY: Final = "rr"  # the modality's name in an input contract
TACHOGRAM_RATE_HZ: Final = 4.0  # the HRV convention (Task Force 1996): well above 2 x 0.4 Hz
# 30-240 bpm: a value outside is no heartbeat a resting or walking adult produces
RR_PLAUSIBLE_S: Final = (0.25, 2.0)


def as_series(rr_s: ArrayLike, t_s: ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    """``rr_s`` (s) and the beat times ending each interval (default: their cumulative sum).

    Raises :class:`~core.errors.ContractError` for a non-1-D, non-finite or non-positive
    series, or beat times that do not match it or are not strictly increasing.
    """
    rr = np.asarray(rr_s, dtype=np.float64)
    if rr.ndim != 1:
        raise ContractError(f"RR intervals must be 1-D, got shape {rr.shape}", field=RR_MODALITY)
    if not np.all(np.isfinite(rr)) or np.any(rr <= 0):
        bad = rr[~(np.isfinite(rr) & (rr > 0))]
        raise ContractError(
            f"RR intervals must be finite and positive seconds, got {bad[:3].tolist()}",
            field=RR_MODALITY,
        )
    if t_s is None:
        return rr, np.cumsum(rr)
    t = np.asarray(t_s, dtype=np.float64)
    if t.shape != rr.shape:
        raise ContractError(f"t_s shape {t.shape} != rr_s shape {rr.shape}", field=RR_MODALITY)
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ContractError("beat times must be finite and strictly increasing", field=RR_MODALITY)
    return rr, t
