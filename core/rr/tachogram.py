"""RR resampled evenly for a model: a natural cubic spline through (beat time, interval), in numpy.

The model sees RR as an evenly sampled tachogram (:func:`tachogram`, 4 Hz by default): the
spline evaluated on the window's grid, held constant beyond the first and last beat. In a
bundle's input contract this modality is named ``rr``. numpy only: scipy is not on the hub.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from core.errors import ContractError
from core.rr.series import RR_MODALITY, TACHOGRAM_RATE_HZ, FloatArray, as_series

__all__ = ["cubic_spline", "tachogram"]


def cubic_spline(x: ArrayLike, y: ArrayLike, x_new: ArrayLike) -> FloatArray:
    """Natural cubic spline through ``(x, y)`` evaluated at ``x_new``, held constant outside.

    ``x`` strictly increasing. Two points give a straight line, one a constant. Holding the
    end values (rather than extrapolating the cubic) keeps a window's edge from swinging
    when its first or last beat is near the edge.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    xn = np.asarray(x_new, dtype=np.float64)
    n = xs.size
    if n == 0 or ys.shape != xs.shape:
        raise ContractError(f"need matching non-empty x and y, got {xs.shape} and {ys.shape}", field="spline")
    if n == 1:
        return np.full(xn.shape, ys[0])
    h = np.diff(xs)  # (n-1,)
    if np.any(h <= 0):
        raise ContractError("spline knots must be strictly increasing", field="spline")
    slope = np.diff(ys) / h
    mm = np.zeros(n)  # second derivatives; natural ends: 0
    if n > 2:
        # tridiagonal system for the interior second derivatives (Thomas algorithm), on
        # Python floats: indexing numpy scalars in a loop costs several times more
        hl = h.tolist()
        diag = (2.0 * (h[:-1] + h[1:])).tolist()
        rhs = (6.0 * np.diff(slope)).tolist()
        for i in range(1, n - 2):
            w = hl[i] / diag[i - 1]
            diag[i] -= w * hl[i]
            rhs[i] -= w * rhs[i - 1]
        sol = [0.0] * (n - 2)
        sol[-1] = rhs[-1] / diag[-1]
        for i in range(n - 4, -1, -1):
            sol[i] = (rhs[i] - hl[i + 1] * sol[i + 1]) / diag[i]
        mm[1:-1] = sol
    xc = np.clip(xn, xs[0], xs[-1])
    k = np.clip(np.searchsorted(xs, xc, side="right") - 1, 0, n - 2)
    a = xs[k + 1] - xc
    b = xc - xs[k]
    hk = h[k]
    return (
        mm[k] * a**3 / (6 * hk)
        + mm[k + 1] * b**3 / (6 * hk)
        + (ys[k] / hk - mm[k] * hk / 6) * a
        + (ys[k + 1] / hk - mm[k + 1] * hk / 6) * b
    )


def tachogram(
    rr_s: ArrayLike,
    t_s: ArrayLike | None = None,
    *,
    start: float | None = None,
    n: int | None = None,
    rate_hz: float = TACHOGRAM_RATE_HZ,
) -> FloatArray:
    """RR (seconds) resampled evenly: ``(n,)`` values at ``start + k / rate_hz``.

    Knots are (beat time, interval ending there). ``start`` defaults to the first beat,
    ``n`` to every grid point up to the last beat. For a window, pass the window's start
    and ``window_s * rate_hz`` and give the series with some context around the window.
    """
    rr, t = as_series(rr_s, t_s)
    if rr.size == 0:
        raise ContractError("no RR intervals to resample", field=RR_MODALITY)
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise ContractError(f"rate {rate_hz!r} must be positive", field="rate_hz")
    t0 = float(t[0]) if start is None else float(start)
    if n is None:
        n = math.floor(float(t[-1] - t0) * rate_hz + 1e-9) + 1
    if n < 0:
        raise ContractError(f"n = {n} samples", field="n")
    return cubic_spline(t, rr, t0 + np.arange(n) / rate_hz)
