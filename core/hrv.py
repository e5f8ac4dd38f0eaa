"""Standard short-term HRV features (Task Force 1996) of a series of RR intervals.

numpy only; training and the hub call this one implementation (the hub's public face is
``edge.hrv``). :func:`hrv_features` computes on exactly the intervals it is given: cleaning
(:func:`core.rr.clean_rr`) is a separate, explicit step, so a caller can compare both.

Keys and units (``HRV_KEYS``): ``MeanNN``, ``SDNN``, ``RMSSD``, ``SDSD`` (ms), ``pNN50`` (%),
``LF``, ``HF`` (ms²), ``LFHF`` (ratio).

Method choices (they move LF/HF by tens of percent between tools, so they are fixed here):

- Time domain. ``SDNN`` and ``SDSD`` are sample standard deviations (ddof = 1);
  ``RMSSD = sqrt(mean(diff²))``; ``pNN50`` = 100 x (successive differences > 50 ms) /
  (number of intervals), the Task Force's denominator (neurokit2 uses it too; Kubios and
  some others divide by the number of differences, which reads higher by N / (N - 1)).
- Tachogram. Knots at the beat times (the cumulative sum of the intervals), value = the
  interval ending there, in ms; a natural cubic spline (:func:`core.rr.cubic_spline`)
  sampled at 4 Hz from the first to the last beat.
- Detrending. A least-squares straight line is removed from the whole tachogram (cheap on
  a hub; Kubios' smoothness-priors filter would also remove curvature below ~0.04 Hz), and
  each Welch segment's mean is removed (scipy's default ``detrend="constant"``; neurokit2
  removes nothing, so on a short window its mean RR leaks into LF through the window's
  main lobe).
- Spectrum. Welch: periodic Hann window, 50 % overlap, segments of half the tachogram
  (three segments, so beats near a window's edges still weigh in: one Hann-windowed
  periodogram would all but ignore the first and last seconds; neurokit2's default too)
  but at most 256 s (Kubios' default, for long recordings); zero-padded to at least 1024
  points; one-sided density in ms²/Hz.
- Bands. ``LF`` = [0.04, 0.15) Hz, ``HF`` = [0.15, 0.40) Hz, each the sum of the density
  over the bins in the band times the bin width (so the sum over all bins is the variance).
  A tachogram shorter than one period of the lowest LF frequency (25 s) cannot hold LF: the
  three spectral values are then NaN.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import ContractError
from core.rr import RR_MODALITY, TACHOGRAM_RATE_HZ, tachogram

__all__ = [
    "HF_BAND_HZ",
    "HRV_KEYS",
    "LF_BAND_HZ",
    "MIN_INTERVALS",
    "WELCH_SEGMENT_S",
    "band_power",
    "hrv_features",
    "hrv_time_domain",
    "welch_psd",
]

HRV_KEYS: Final = ("MeanNN", "SDNN", "RMSSD", "SDSD", "pNN50", "LF", "HF", "LFHF")
LF_BAND_HZ: Final = (0.04, 0.15)  # Task Force 1996
HF_BAND_HZ: Final = (0.15, 0.40)
WELCH_SEGMENT_S: Final = 256.0  # longest Welch segment: Kubios' default
MIN_NFFT: Final = 1024  # at 4 Hz: bins of 1/256 Hz, fine enough to place the band edges
MIN_INTERVALS: Final = 3  # SDSD (ddof = 1) needs two successive differences
NN50_MS: Final = 50.0


def welch_psd(x: ArrayLike, fs: float, *, segment: int, nfft: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One-sided Welch power spectral density of ``x`` (unit²/Hz) and its frequencies.

    Periodic Hann window of ``segment`` samples, 50 % overlap, each segment's mean removed,
    zero-padded to ``nfft`` (default ``segment``); equals ``scipy.signal.welch`` with
    ``window="hann", noverlap=segment // 2, detrend="constant", scaling="density"``.
    """
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1 or not 1 <= segment <= xs.size:
        raise ContractError(f"segment {segment} must be in 1..{xs.size}", field="segment")
    nfft = segment if nfft is None else nfft
    if nfft < segment:
        raise ContractError(f"nfft {nfft} < segment {segment}", field="nfft")
    step = segment - segment // 2
    starts = np.arange(0, xs.size - segment + 1, step)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(segment) / segment)  # periodic Hann
    segs = xs[starts[:, None] + np.arange(segment)]  # (S, segment)
    segs = (segs - segs.mean(axis=1, keepdims=True)) * window
    spec = np.abs(np.fft.rfft(segs, n=nfft, axis=1)) ** 2  # (S, nfft // 2 + 1)
    psd = np.asarray(spec.mean(axis=0) / (fs * np.sum(window**2)), dtype=np.float64)
    psd[1 : (nfft + 1) // 2] *= 2.0  # one-sided: fold the negative frequencies (not DC/Nyquist)
    return np.asarray(np.fft.rfftfreq(nfft, 1.0 / fs), dtype=np.float64), psd


def band_power(freqs: NDArray[np.float64], psd: NDArray[np.float64], band: tuple[float, float]) -> float:
    """Power in ``[band[0], band[1])``: the density summed over those bins times the bin width."""
    df = float(freqs[1] - freqs[0])
    inside = (freqs >= band[0]) & (freqs < band[1])
    return float(psd[inside].sum() * df)


def _spectral(rr_ms: NDArray[np.float64], t_s: NDArray[np.float64]) -> tuple[float, float]:
    fs = TACHOGRAM_RATE_HZ
    x = tachogram(rr_ms, t_s, rate_hz=fs)  # (T,) ms at 4 Hz, first to last beat
    k = np.arange(x.size, dtype=np.float64)
    x = x - np.polyval(np.polyfit(k, x, 1), k)  # linear detrend
    # an even half: three segments at 50 % overlap then cover all but the last <= 3 samples
    segment = max(2, min(2 * (x.size // 4), round(WELCH_SEGMENT_S * fs)))
    nfft = max(MIN_NFFT, 1 << (segment - 1).bit_length())
    freqs, psd = welch_psd(x, fs, segment=segment, nfft=nfft)
    return band_power(freqs, psd, LF_BAND_HZ), band_power(freqs, psd, HF_BAND_HZ)


def hrv_features(rr_s: ArrayLike) -> dict[str, float]:
    """Task Force HRV features of RR intervals ``rr_s`` (seconds); keys :data:`HRV_KEYS`.

    Computed on exactly these intervals, in this order (no cleaning; see the module
    docstring for every method choice). Raises :class:`~core.errors.ContractError` for
    fewer than :data:`MIN_INTERVALS` intervals or any non-finite or non-positive one.
    """
    out = hrv_time_domain(rr_s)
    rr = np.asarray(rr_s, dtype=np.float64)
    t = np.cumsum(rr)
    if t[-1] - t[0] < 1.0 / LF_BAND_HZ[0]:
        lf = hf = math.nan
    else:
        lf, hf = _spectral(rr * 1000.0, t)
    out["LF"], out["HF"] = lf, hf
    out["LFHF"] = lf / hf if hf > 0 else math.nan
    return out


def hrv_time_domain(rr_s: ArrayLike) -> dict[str, float]:
    """The time-domain part of :func:`hrv_features` alone (``MeanNN`` to ``pNN50``): what a
    window's derived heart rate and RMSSD need, without the spectrum's cost. Same checks."""
    rr = np.asarray(rr_s, dtype=np.float64)
    if rr.ndim != 1 or rr.size < MIN_INTERVALS:
        raise ContractError(
            f"need a 1-D series of at least {MIN_INTERVALS} intervals, got shape {rr.shape}",
            field=RR_MODALITY,
        )
    if not np.all(np.isfinite(rr)) or np.any(rr <= 0):
        raise ContractError("RR intervals must be finite and positive seconds", field=RR_MODALITY)
    rr_ms = rr * 1000.0
    d = np.diff(rr_ms)
    out = {
        "MeanNN": float(rr_ms.mean()),
        "SDNN": float(rr_ms.std(ddof=1)),
        "RMSSD": float(np.sqrt(np.mean(d**2))),
        "SDSD": float(d.std(ddof=1)),
        "pNN50": float(100.0 * np.count_nonzero(np.abs(d) > NN50_MS) / rr_ms.size),
    }
    return out
