"""Sleep/wake per epoch (Sadeh 1994, Cole–Kripke 1992) and per-night sleep summaries.

Scores are int8: 1 sleep, 0 wake, -1 unscorable (the algorithm's window runs off the series'
ends or over a missing epoch).

**Sadeh et al. (1994)**, 60 s epochs: ``PS = 7.601 − 0.065·mean_W5 − 1.08·NAT − 0.056·SD_last6
− 0.703·ln(act + 1)``; mean and NAT (epochs with 50 ≤ count < 100) over the 11 epochs centred
on the epoch, SD (sample, ddof = 1, as ActiLife) over the epoch and the 5 before; sleep when
PS > 0. pyActigraphy differs in two places: NAT counts ``50 < count < 100`` and ``ln(act + 1)``
reads the *next* epoch's count; it also scores the 5 edge epochs at each end as wake.

**Cole et al. (1992)** score minutes: ``D = P · Σ W_k A_{t+k}`` over minutes t−4..t+2, sleep
when D < 1, then Webster's rescoring rules. 60 s epochs use the "mean activity per minute" set
(P = 0.001; W = 106, 54, 58, 76, 230, 74, 67) with ActiGraph counts per minute ÷ 100, capped at
300 (ActiLife's scaling of that set). 30 s epochs use the "maximum 30 s epoch per minute" set
(P = 0.0001; W = 50, 30, 14, 28, 121, 8, 50) on each minute's larger 30 s count × 0.3: a 30 s
count in the paper's units sums fifteen 2 s values, each worth 2/100 of a count per minute in
ActiLife's scaling. Both 30 s epochs of a minute get the minute's score. pyActigraphy's copy
of the 30 s set has W0 = 12 for the published 121.

**Nights.** Each night is searched in a window of ±9 h around a centre, by default the
midpoint of the series' least active 5 h (L5), so the window follows the resident's own
rhythm (e.g. 18:00–12:00 for an L5 of 00:30–05:30). In it, runs of at least 10 min of sleep
are *sustained* bouts; bouts less than 60 min apart chain into a sleep period, and the
period holding the most sleep is the night's main sleep period. Sleep onset is its first
sleep epoch, wake time the end of its last; total sleep time (TST) counts its sleep epochs;
WASO its wake epochs; each run of wake epochs inside it is one awakening; sleep efficiency
is TST over the period's length (there is no in-bed signal, so not over time in bed). A
night whose window is not wholly inside the series, or is less than 90 % scored, is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.actigraphy.series import HOUR_S, EpochSeries
from core.errors import ActigraphyError

__all__ = [
    "NightSummary",
    "cole_kripke",
    "night_windows",
    "sadeh",
    "score_sleep",
    "sleep_algorithm",
    "summarize_nights",
    "webster_rescore",
]

SLEEP: Final = 1
WAKE: Final = 0
UNSCORED: Final = -1

SADEH_OFFSET: Final = 7.601
SADEH_W: Final = (-0.065, -1.08, -0.056, -0.703)  # mean_W5, NAT, SD_last6, ln(act + 1)
SADEH_HALF: Final = 5  # the window is the epoch +-5
SADEH_NAT: Final = (50.0, 100.0)  # 50 <= count < 100

CK_60: Final = (0.001, (106, 54, 58, 76, 230, 74, 67))
CK_30: Final = (0.0001, (50, 30, 14, 28, 121, 8, 50))
CK_BEFORE, CK_AFTER = 4, 2  # minutes before and after the scored one
CK_60_SCALE: Final = 0.01  # counts per minute -> the paper's mean-per-minute units
CK_60_CAP: Final = 300.0
CK_30_SCALE: Final = 0.3  # a 30 s count -> the paper's 30 s units (15 x 2 s x 2/100)

NIGHT_HALF_WIDTH_S: Final = 9 * HOUR_S
SUSTAINED_SLEEP_S: Final = 10 * 60
CHAIN_GAP_S: Final = 60 * 60
MIN_SCORED: Final = 0.9


def sadeh(activity: np.ndarray) -> np.ndarray:
    """Sadeh (1994) score of each 60 s epoch: 1 sleep, 0 wake, -1 unscorable."""
    a = np.asarray(activity, dtype=float)
    out = np.full(a.size, UNSCORED, dtype=np.int8)
    w = 2 * SADEH_HALF + 1
    if a.size < w:
        return out
    win = sliding_window_view(a, w)  # row j: epochs j .. j+10, centred on j+5
    mean_w5 = win.mean(axis=1)
    nat = ((win >= SADEH_NAT[0]) & (win < SADEH_NAT[1])).sum(axis=1)
    last6 = sliding_window_view(a, SADEH_HALF + 1)[: a.size - 2 * SADEH_HALF]  # j .. j+5
    sd6 = last6.std(axis=1, ddof=1)
    centre = a[SADEH_HALF : a.size - SADEH_HALF]
    ps = (SADEH_OFFSET + SADEH_W[0] * mean_w5 + SADEH_W[1] * nat + SADEH_W[2] * sd6
          + SADEH_W[3] * np.log(centre + 1.0))
    ok = np.isfinite(ps)
    scores = np.where(ps > 0, SLEEP, WAKE).astype(np.int8)
    scores[~ok] = UNSCORED
    out[SADEH_HALF : a.size - SADEH_HALF] = scores
    return out


def webster_rescore(minutes: np.ndarray) -> np.ndarray:
    """Webster et al. (1982) rescoring of per-minute sleep (1) / wake (0); -1 is kept as is.

    After >= 4 / 10 / 15 min of wake the first 1 / 3 / 4 min of sleep become wake; a sleep
    bout of <= 6 min with >= 10 min of wake on both sides, or of <= 10 min with >= 20 min,
    becomes wake. A run of -1 ends a stretch: rules never reach across it.
    """
    s = np.asarray(minutes, dtype=np.int8).copy()
    for lo, hi in _runs(s != UNSCORED, True):
        s[lo:hi] = _rescore_stretch(s[lo:hi])
    return s


def _rescore_stretch(s: np.ndarray) -> np.ndarray:
    s = s.copy()
    runs = _all_runs(s)
    for k, (val, lo, hi) in enumerate(runs):
        if val != SLEEP or k == 0:
            continue
        wake_before = runs[k - 1][2] - runs[k - 1][1]
        n = 4 if wake_before >= 15 else 3 if wake_before >= 10 else 1 if wake_before >= 4 else 0
        s[lo : min(hi, lo + n)] = WAKE
    runs = _all_runs(s)
    out = s.copy()
    for k, (val, lo, hi) in enumerate(runs):
        if val != SLEEP or k == 0 or k == len(runs) - 1:
            continue
        before = runs[k - 1][2] - runs[k - 1][1]
        after = runs[k + 1][2] - runs[k + 1][1]
        length = hi - lo
        if (length <= 6 and min(before, after) >= 10) or (length <= 10 and min(before, after) >= 20):
            out[lo:hi] = WAKE
    return out


def cole_kripke(activity: np.ndarray, epoch_s: int, *, rescore: bool = True,
                minute_offset: int = 0) -> np.ndarray:
    """Cole–Kripke (1992) score of each 30 s or 60 s epoch: 1 sleep, 0 wake, -1 unscorable.

    ``minute_offset`` (30 s only): 1 when the first epoch starts half-way through a minute,
    so epochs pair into clock minutes; the lone half-minute epochs at the ends are -1.
    """
    a = np.asarray(activity, dtype=float)
    if epoch_s == 60:
        scale, weights = CK_60
        per_min = np.minimum(a * CK_60_SCALE, CK_60_CAP)
        first = 0
    elif epoch_s == 30:
        scale, weights = CK_30
        first = minute_offset % 2
        n_min = (a.size - first) // 2
        pairs = a[first : first + 2 * n_min].reshape(n_min, 2)
        per_min = pairs.max(axis=1) * CK_30_SCALE
        per_min[~np.all(np.isfinite(pairs), axis=1)] = np.nan
    else:
        raise ActigraphyError(f"Cole–Kripke scores 30 s or 60 s epochs, not {epoch_s} s")
    minutes = np.full(per_min.size, UNSCORED, dtype=np.int8)
    w = CK_BEFORE + 1 + CK_AFTER
    if per_min.size >= w:
        d = scale * (sliding_window_view(per_min, w) @ np.asarray(weights, float))
        scores = np.where(d < 1.0, SLEEP, WAKE).astype(np.int8)
        scores[~np.isfinite(d)] = UNSCORED
        minutes[CK_BEFORE : per_min.size - CK_AFTER] = scores
    if rescore:
        minutes = webster_rescore(minutes)
    if epoch_s == 60:
        return minutes
    out = np.full(a.size, UNSCORED, dtype=np.int8)
    out[first : first + 2 * minutes.size] = np.repeat(minutes, 2)
    return out


def sleep_algorithm(epoch_s: int) -> str:
    """The algorithm :func:`score_sleep` uses for an epoch length."""
    if epoch_s == 30:
        return "Cole-Kripke (1992)"
    if 60 % epoch_s == 0:
        return "Sadeh (1994)" if epoch_s == 60 else "Sadeh (1994) on 60 s sums"
    raise ActigraphyError(f"sleep scoring needs epochs that divide a minute, not {epoch_s} s")


def score_sleep(series: EpochSeries) -> np.ndarray:
    """Sleep (1) / wake (0) / unscorable (-1) per epoch: Sadeh for 60 s, Cole–Kripke for 30 s.

    Shorter epochs that divide a minute are summed to clock minutes for Sadeh and every epoch
    gets its minute's score (a minute with a missing epoch is -1).
    """
    sleep_algorithm(series.epoch_s)
    if series.epoch_s == 30:
        return cole_kripke(series.activity, 30, minute_offset=_half_minute(series))
    if series.epoch_s == 60:
        return sadeh(series.activity)
    per_min = 60 // series.epoch_s
    lead = (-int(_seconds_into_minute(series) // series.epoch_s)) % per_min
    n_min = (series.n - lead) // per_min
    block = series.activity[lead : lead + n_min * per_min].reshape(n_min, per_min)
    minute_scores = sadeh(block.sum(axis=1))  # NaN propagates: that minute is -1
    out = np.full(series.n, UNSCORED, dtype=np.int8)
    out[lead : lead + n_min * per_min] = np.repeat(minute_scores, per_min)
    return out


def _seconds_into_minute(series: EpochSeries) -> float:
    t = series.start
    return t.second + t.microsecond / 1e6


def _half_minute(series: EpochSeries) -> int:
    return 1 if _seconds_into_minute(series) >= 30 else 0


@dataclass(frozen=True)
class NightSummary:
    """The main sleep period of one night (``night``: the date of its evening)."""

    night: date
    onset: datetime | None
    wake: datetime | None
    tst_min: float  # total sleep time
    period_min: float  # onset to wake time
    efficiency: float  # TST / period, NaN without sleep
    waso_min: float  # wake after sleep onset, before the final wake time
    awakenings: int
    window_start: datetime
    window_end: datetime

    def to_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat(timespec="minutes")

        eff = None if not np.isfinite(self.efficiency) else round(self.efficiency, 4)
        return {
            "night": self.night.isoformat(),
            "sleep_onset": t(self.onset),
            "wake_time": t(self.wake),
            "total_sleep_min": round(self.tst_min, 1),
            "sleep_period_min": round(self.period_min, 1),
            "sleep_efficiency": eff,
            "waso_min": round(self.waso_min, 1),
            "awakenings": self.awakenings,
        }


def night_windows(series: EpochSeries, centre_s: float,
                  half_width_s: float = NIGHT_HALF_WIDTH_S) -> list[tuple[date, int, int]]:
    """``(night, lo, hi)`` epoch ranges of every night window wholly inside the series.

    The window of the night of date ``d`` is centred on the first clock time ``centre_s`` after
    ``d`` 12:00, so a centre after midnight belongs to the evening before.
    """
    ep = series.epoch_s
    t0 = series.start
    base = datetime(t0.year, t0.month, t0.day) - timedelta(days=1)
    out = []
    for k in range(int(series.days) + 3):
        night = (base + timedelta(days=k)).date()
        noon = datetime(night.year, night.month, night.day, 12)
        centre = datetime(night.year, night.month, night.day) + timedelta(seconds=centre_s)
        if centre <= noon:
            centre += timedelta(days=1)
        lo_t = centre - timedelta(seconds=half_width_s)
        lo = (lo_t - t0).total_seconds() / ep
        hi = lo + 2 * half_width_s / ep
        lo_i, hi_i = int(np.ceil(lo - 1e-9)), int(np.ceil(hi - 1e-9))
        if lo_i >= 0 and hi_i <= series.n:
            out.append((night, lo_i, hi_i))
    return out


def summarize_nights(series: EpochSeries, sleep: np.ndarray, *, centre_s: float,
                     half_width_s: float = NIGHT_HALF_WIDTH_S,
                     sustained_s: float = SUSTAINED_SLEEP_S,
                     chain_gap_s: float = CHAIN_GAP_S,
                     min_scored: float = MIN_SCORED) -> list[NightSummary]:
    """Per-night summaries of the main sleep period (the rule is in the module docstring)."""
    s = np.asarray(sleep, dtype=np.int8)
    if s.shape != (series.n,):
        raise ActigraphyError(f"{s.size} sleep scores for {series.n} epochs")
    ep = series.epoch_s
    out = []
    for night, lo, hi in night_windows(series, centre_s, half_width_s):
        w = s[lo:hi]
        if np.mean(w != UNSCORED) < min_scored:
            continue
        period = _main_period(w, ep, sustained_s, chain_gap_s)
        start_t, end_t = series.time_at(lo), series.time_at(hi)
        if period is None:
            out.append(NightSummary(night, None, None, 0.0, 0.0, float("nan"), 0.0, 0,
                                    start_t, end_t))
            continue
        a, b = period
        inside = w[a:b]
        n_sleep = int(np.sum(inside == SLEEP))
        n_wake = int(np.sum(inside == WAKE))
        out.append(NightSummary(
            night=night,
            onset=series.time_at(lo + a),
            wake=series.time_at(lo + b),
            tst_min=n_sleep * ep / 60.0,
            period_min=(b - a) * ep / 60.0,
            efficiency=n_sleep / (b - a),
            waso_min=n_wake * ep / 60.0,
            awakenings=len(_runs(inside == WAKE, True)),
            window_start=start_t,
            window_end=end_t,
        ))
    return out


def _main_period(w: np.ndarray, epoch_s: int, sustained_s: float,
                 chain_gap_s: float) -> tuple[int, int] | None:
    """``(a, b)``: the chained sustained sleep with the most sleep epochs, or None."""
    bouts = [(lo, hi) for lo, hi in _runs(w == SLEEP, True) if (hi - lo) * epoch_s >= sustained_s]
    if not bouts:
        return None
    chains = [[bouts[0]]]
    for lo, hi in bouts[1:]:
        if (lo - chains[-1][-1][1]) * epoch_s < chain_gap_s:
            chains[-1].append((lo, hi))
        else:
            chains.append([(lo, hi)])
    best = max(chains, key=lambda c: int(np.sum(w[c[0][0] : c[-1][1]] == SLEEP)))
    return best[0][0], best[-1][1]


def _runs(mask: np.ndarray, value: bool) -> list[tuple[int, int]]:
    """``[lo, hi)`` of every maximal run where ``mask == value``."""
    m = np.asarray(mask, dtype=bool) == value
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def _all_runs(s: np.ndarray) -> list[tuple[int, int, int]]:
    """``(value, lo, hi)`` of every maximal run of equal values."""
    if not s.size:
        return []
    cut = np.flatnonzero(np.diff(s)) + 1
    los = np.concatenate([[0], cut])
    his = np.concatenate([cut, [s.size]])
    return [(int(s[lo]), int(lo), int(hi)) for lo, hi in zip(los, his, strict=True)]
