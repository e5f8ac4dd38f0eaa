"""RR intervals for the heart-rate model: beats found in WESAD's chest ECG or wrist BVP, cached per subject.

A stock heart-rate device gives the hub RR intervals; a WESAD-format recording has the
waveforms they come from. On the host, neurokit2 finds the beats:

- ``ecg`` (the chest strap's analogue): the RespiBAN ECG at 700 Hz, ``nk.ecg_clean`` then
  ``nk.ecg_peaks`` (R peaks; 1.4 ms resolution);
- ``bvp`` (a watch's analogue): the E4 BVP at 64 Hz, ``nk.ppg_clean`` then ``nk.ppg_peaks``
  (systolic peaks). 64 Hz quantizes a peak to 15.6 ms, as much as a resting RMSSD moves, so
  each peak is moved to the vertex of the parabola through its sample and its two
  neighbours (sub-sample, as PPG HRV tools do).

Nothing is cleaned here: the intervals are what a device would send, and the windows clean
them with the same kernel the hub runs (:mod:`core.signal.beats`). The beats are cached in
``S<n>/S<n>.rr-<source>.npz`` beside each subject's file, keyed by the file's size and
modification time and :data:`CACHE_VERSION`, so a run does not detect peaks again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from core.recording import Beats, Recording
from core.rr import RR_MODALITY
from train.errors import DataError

__all__ = ["CACHE_VERSION", "RR_SOURCES", "beats_from_bvp", "beats_from_ecg", "subject_beats",
           "with_subject_beats"]

log = logging.getLogger(__name__)

RR_SOURCES: Final = ("ecg", "bvp")
CACHE_VERSION: Final = 1  # bump when the detection changes: cached beats are then redone


def _intervals(peaks_s: NDArray[np.float64]) -> Beats:
    t = np.unique(np.asarray(peaks_s, np.float64))
    return Beats(t[1:], np.diff(t))  # each interval ends at its second peak


def beats_from_ecg(ecg: NDArray[np.floating], rate_hz: float) -> Beats:
    """R peaks of an ECG (neurokit2) -> RR intervals and the time each one ends."""
    import neurokit2 as nk

    clean = nk.ecg_clean(np.asarray(ecg, np.float64).reshape(-1), sampling_rate=rate_hz)
    _, info = nk.ecg_peaks(clean, sampling_rate=rate_hz)
    peaks = np.asarray(info["ECG_R_Peaks"], np.int64)
    return _intervals(peaks / rate_hz)


def beats_from_bvp(bvp: NDArray[np.floating], rate_hz: float) -> Beats:
    """Systolic peaks of a BVP/PPG (neurokit2), refined below the sample period -> RR."""
    import neurokit2 as nk

    clean = np.asarray(nk.ppg_clean(np.asarray(bvp, np.float64).reshape(-1),
                                    sampling_rate=rate_hz), np.float64)
    _, info = nk.ppg_peaks(clean, sampling_rate=rate_hz)
    p = np.asarray(info["PPG_Peaks"], np.int64)
    p = p[(p > 0) & (p < clean.size - 1)]
    y0, y1, y2 = clean[p - 1], clean[p], clean[p + 1]
    den = y0 - 2.0 * y1 + y2
    # the parabola's vertex; a flat top (den ~ 0) keeps the sample itself
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (y0 - y2) / np.where(den == 0, 1.0, den), 0.0)
    return _intervals((p + np.clip(shift, -0.5, 0.5)) / rate_hz)


def _cache_path(pkl: Path, source: str) -> Path:
    return pkl.with_name(f"{pkl.stem}.rr-{source}.npz")


def _cache_key(pkl: Path) -> dict[str, object]:
    st = pkl.stat()
    return {"version": CACHE_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def subject_beats(rec: Recording, pkl: Path, source: str) -> Beats:
    """The beats of subject file ``pkl`` (loaded as ``rec``) from ``source``, cached."""
    if source not in RR_SOURCES:
        raise DataError(str(pkl), f"unknown RR source {source!r}; expected one of {RR_SOURCES}")
    cache = _cache_path(pkl, source)
    key = _cache_key(pkl)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if json.loads(str(z["key"][()])) == key:
                    return Beats(z["t_s"], z["rr_s"])
        except (OSError, ValueError, KeyError) as e:  # a broken cache is redone, not trusted
            log.warning("RR cache %s unreadable (%s); detecting beats again", cache, e)
    name = "ecg" if source == "ecg" else "bvp"
    sig = rec.signals.get(name)
    if sig is None:
        raise DataError(str(pkl), f"has no {name} signal to find beats in")
    find = beats_from_ecg if source == "ecg" else beats_from_bvp
    beats = find(sig.values[:, 0], sig.rate_hz)
    if beats.n_beats < 10:
        raise DataError(str(pkl), f"only {beats.n_beats} beats found in its {name}")
    tmp = cache.with_name(f".{cache.name}.tmp")
    with tmp.open("wb") as f:
        np.savez(f, t_s=beats.t_s, rr_s=beats.rr_s, key=np.array(json.dumps(key)))
    tmp.replace(cache)
    log.info("%s: %d beats from its %s (cached in %s)", rec.subject, beats.n_beats, name,
             cache.name)
    return beats


def with_subject_beats(rec: Recording, pkl: Path, source: str) -> Recording:
    """``rec`` with its ``rr`` beat series from ``source`` (see :func:`subject_beats`)."""
    beats = subject_beats(rec, pkl, source)
    return replace(rec, beats={**rec.beats, RR_MODALITY: beats},
                   meta={**rec.meta, "rr_source": source})
