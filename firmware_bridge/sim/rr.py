"""Simulated beat-to-beat RR intervals of a stock heart-rate strap, driven by a label timeline.

numpy only. Not a physiological model, but the features an RR model and its cleaning see:

- the heart rate follows the condition of the WESAD label code at each moment with a
  first-order lag (20 s), as in training's synthetic data (``train/synth.py``'s table:
  stress +14 bpm, amusement +4, meditation -3, transitions +5);
- respiratory sinus arrhythmia (RSA): the RR interval is modulated at the breathing rate
  (15 breaths/min at rest, faster under stress, slower in meditation), so HF power sits
  where a real one does;
- a low-frequency component (band-limited noise, 0.04-0.15 Hz: baroreflex/Mayer waves);
- both modulations scale with the condition's HRV multiplier (stress x0.6, meditation
  x1.35), so RMSSD falls under stress and rises in meditation;
- beats come from integral pulse frequency modulation (a beat each time the integrated
  instantaneous heart rate crosses a whole number), with a small timing jitter;
- optional artefacts at given rates: premature ectopic beats (a short-long pair, the
  compensatory pause keeping the total) and beats the strap missed (two intervals merged),
  each isolated from the others and reported by index, so a cleaning test can count them.

:func:`heart_rate_notifications` lays the beats out as a strap sends them: one Heart Rate
Measurement about every second with the RR intervals that ended since the previous one, the
rounded heart rate, and the contact flag (false, with no intervals, inside contact losses).

:func:`with_beats` gives a recording an ``rr`` beat series to play as a strap (its own, say
RR from the chest ECG, or else one simulated here from its labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.recording import Beats
from firmware_bridge.errors import SimulatorError
from firmware_bridge.gatt import HeartRateMeasurement

__all__ = [
    "CONDITIONS",
    "RRPerson",
    "SimulatedRR",
    "heart_rate_notifications",
    "simulate_rr",
    "with_beats",
]

CONTROL_HZ: Final = 8.0  # grid of the slow state curves and of the beat integration
# label code -> (heart-rate offset bpm, HRV multiplier, breathing-rate offset breaths/min);
# the same effects as training's synthetic WESAD table
CONDITIONS: Final[Mapping[int, tuple[float, float, float]]] = {
    0: (5.0, 0.8, 2.0),  # transition (walking between rooms)
    1: (0.0, 1.0, 0.0),  # baseline
    2: (14.0, 0.6, 3.0),  # stress
    3: (4.0, 0.9, 1.5),  # amusement
    4: (-3.0, 1.35, -5.0),  # meditation
}
HR_LAG_S: Final = 20.0  # heart rate approaches a new condition with this time constant
HRV_LAG_S: Final = 30.0
RESP_LAG_S: Final = 15.0
MIN_SEPARATION: Final = 8  # beats between injected artefacts: each stays isolated


@dataclass(frozen=True)
class RRPerson:
    """One wearer's resting values."""

    resting_hr_bpm: float = 68.0
    resp_bpm: float = 15.0  # resting breathing rate
    # peak RR modulation by breathing, as a fraction of the mean interval (about 40 ms of
    # RMSSD at 68 bpm)
    rsa: float = 0.05
    lf: float = 0.03  # standard deviation of the low-frequency modulation, same unit
    jitter_s: float = 0.002  # beat-timing noise (detection jitter of a chest strap)


@dataclass(frozen=True)
class SimulatedRR:
    """Beats of a simulated wearer."""

    t_s: NDArray[np.float64]  # (M,) time of the beat ending each interval
    rr_s: NDArray[np.float64]  # (M,) intervals, seconds
    labels: NDArray[np.int8]  # (M,) label code at each beat
    ectopic: NDArray[np.int64]  # indices of the premature (short) interval of each ectopic beat
    missed: NDArray[np.int64]  # indices of the intervals that hide one missed beat


def _lag(x: NDArray[np.float64], tau_s: float) -> NDArray[np.float64]:
    """First-order lag on the control grid, starting settled at the first value."""
    a = 1.0 - np.exp(-1.0 / (CONTROL_HZ * tau_s))
    out = np.empty_like(x)
    y = x[0]
    for i, v in enumerate(x.tolist()):
        y += a * (v - y)
        out[i] = y
    return out


def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> NDArray[np.float64]:
    """Unit-variance noise with its power in [lo, hi] Hz on the control grid."""
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1.0 / CONTROL_HZ)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    sd = x.std()
    return x / sd if sd > 0 else x


def _pick(rng: np.random.Generator, n_beats: int, count: int, taken: NDArray[np.bool_]) -> list[int]:
    """Up to ``count`` beat indices at least MIN_SEPARATION apart from each other and ``taken``."""
    chosen: list[int] = []
    for j in rng.permutation(np.arange(2, n_beats - 3)).tolist():
        if len(chosen) == count:
            break
        lo, hi = max(0, j - MIN_SEPARATION), j + MIN_SEPARATION + 1
        if not taken[lo:hi].any():
            taken[j] = True
            chosen.append(j)
    return sorted(chosen)


def simulate_rr(
    labels: ArrayLike,
    label_rate_hz: float = 700.0,
    *,
    seed: int = 0,
    person: RRPerson | None = None,
    ectopic_per_min: float = 0.0,
    missed_per_min: float = 0.0,
) -> SimulatedRR:
    """RR intervals for the label timeline ``labels`` (WESAD codes at ``label_rate_hz``).

    Codes outside :data:`CONDITIONS` (WESAD's 5-7) count as baseline. The number of
    artefacts of each kind is drawn from a Poisson law with the given rate; every one is
    at least :data:`MIN_SEPARATION` beats from any other.
    """
    codes = np.asarray(labels).reshape(-1)
    if codes.size == 0 or not label_rate_hz > 0:
        raise SimulatorError(f"need labels and a positive rate, got {codes.size} at {label_rate_hz}")
    if ectopic_per_min < 0 or missed_per_min < 0:
        raise SimulatorError("artefact rates must not be negative")
    p = person or RRPerson()
    rng = np.random.default_rng(seed)
    duration = codes.size / label_rate_hz
    n = int(np.ceil(duration * CONTROL_HZ)) + 1
    tc = np.arange(n) / CONTROL_HZ  # (n,) control grid
    code_c = codes[np.minimum((tc * label_rate_hz).astype(np.int64), codes.size - 1)]
    effect = np.array([CONDITIONS.get(int(c), CONDITIONS[1]) for c in range(8)])  # (8, 3)
    e = effect[np.clip(code_c, 0, 7)]
    hr = _lag(p.resting_hr_bpm + e[:, 0], HR_LAG_S)  # (n,) bpm
    hrv = _lag(e[:, 1], HRV_LAG_S)
    resp = _lag(p.resp_bpm + e[:, 2], RESP_LAG_S)  # breaths/min
    resp_phase = 2 * np.pi * np.cumsum(resp / 60.0) / CONTROL_HZ + rng.uniform(0, 2 * np.pi)
    modulation = hrv * (p.rsa * np.sin(resp_phase) + p.lf * _band_noise(rng, n, 0.04, 0.15))
    rr_inst = 60.0 / hr * (1.0 + modulation)  # (n,) instantaneous RR, s
    beats_done = np.concatenate([[0.0], np.cumsum(1.0 / rr_inst[:-1]) / CONTROL_HZ])  # (n,)
    t = np.interp(np.arange(1, int(beats_done[-1]) + 1), beats_done, tc)  # beat times
    t = t + rng.normal(0.0, p.jitter_s, t.size)
    rr = np.diff(t)  # (M,) the interval ending at t[1:]
    t = t[1:]
    if rr.size < 4 * MIN_SEPARATION:
        raise SimulatorError(f"{duration:.0f} s of labels give too few beats ({rr.size})")

    minutes = duration / 60.0
    taken = np.zeros(rr.size, bool)
    ectopic = _pick(rng, rr.size, int(rng.poisson(ectopic_per_min * minutes)), taken)
    missed = _pick(rng, rr.size, int(rng.poisson(missed_per_min * minutes)), taken)
    for j in ectopic:  # the beat ending interval j comes early; the pause after compensates
        shift = rng.uniform(0.25, 0.35) * rr[j]
        rr[j] -= shift
        rr[j + 1] += shift
        t[j] -= shift
    keep = np.ones(rr.size, bool)
    for j in missed:  # the beat ending interval j was not detected: j and j + 1 merge
        rr[j + 1] += rr[j]
        keep[j] = False
    rr, t = rr[keep], t[keep]
    # indices in the final series: each merge before an index moves it down by one
    shift_e = np.searchsorted(missed, ectopic)
    shift_m = np.arange(len(missed))
    return SimulatedRR(
        t_s=t,
        rr_s=rr,
        labels=code_c[np.minimum((t * CONTROL_HZ).astype(np.int64), n - 1)].astype(np.int8),
        ectopic=np.asarray(ectopic, np.int64) - shift_e,
        missed=np.asarray(missed, np.int64) - shift_m,
    )


def heart_rate_notifications(
    sim: SimulatedRR,
    *,
    period_s: float = 1.0,
    contact_losses: Sequence[tuple[float, float]] = (),
    contact_supported: bool = True,
) -> list[tuple[float, HeartRateMeasurement]]:
    """The strap's notifications: ``(time, measurement)`` every ``period_s`` seconds.

    Each carries the intervals whose beat ended since the previous notification and the
    heart rate over the last few beats. Inside a contact loss ``(start, end)`` the strap
    reports no contact and no intervals; beats there are lost, as with a real strap.
    """
    if not period_s > 0:
        raise SimulatorError(f"period {period_s!r} must be positive")
    out: list[tuple[float, HeartRateMeasurement]] = []
    n_slots = int(np.floor(sim.t_s[-1] / period_s)) + 1
    ends = (np.arange(n_slots) + 1) * period_s
    idx = np.searchsorted(sim.t_s, ends, side="right")  # beats up to each notification
    prev, bpm = 0, 0
    for k, now in enumerate(ends.tolist()):
        lost = any(a <= now < b for a, b in contact_losses)
        beats = sim.rr_s[prev : idx[k]]
        prev = int(idx[k])
        if lost:
            out.append((now, HeartRateMeasurement(0, (), False if contact_supported else None)))
            continue
        recent = sim.rr_s[max(0, prev - 4) : prev]
        if recent.size:
            bpm = round(60.0 / float(recent.mean()))
        contact = True if contact_supported else None
        out.append((now, HeartRateMeasurement(bpm, tuple(beats.tolist()), contact)))
    return out


def with_beats(recording: Any, *, name: str = "rr", seed: int = 0) -> Any:
    """``recording`` (a :class:`core.recording.Recording`) with a beat series ``name``: its
    own when it has one, else simulated from its WESAD labels (:func:`simulate_rr`, with the
    occasional ectopic and missed beat a real strap shows). Raises
    :class:`~firmware_bridge.errors.SimulatorError` when it has neither beats nor labels."""
    if name in getattr(recording, "beats", {}):
        return recording
    if recording.labels is None:
        raise SimulatorError(f"the recording has no beat series {name!r} and no labels to "
                             "simulate one from")
    sim = simulate_rr(recording.label_codes(), recording.labels.rate_hz, seed=seed,
                      ectopic_per_min=0.2, missed_per_min=0.05)
    return replace(recording, beats={**recording.beats, name: Beats(sim.t_s, sim.rr_s)},
                   meta={**recording.meta, "beats": f"{name} simulated from the labels"})
