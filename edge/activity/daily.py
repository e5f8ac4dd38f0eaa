"""A wearer's day, once it has ended: the stored epochs analysed, the day's row and trend events.

:func:`close_day` runs after local midnight (of data time) for the day that just ended. It
reads the wearer's stored epochs from the week before the first day it (re)computes, runs the
kernel's one path (:func:`core.actigraphy.analyse`: non-wear, rhythm, sleep, nights, daily
table) and stores the rows of the days it covers: the day that ended, and the day before,
whose night (the one that started that evening) has only now ended. Days the hub missed
(it was off at midnight) are caught up the same way, within the kept history.

It then looks for trend events over every stored day of the wearer (the baseline is the
wearer's first ``baseline_days``), and returns as hub events:

- ``activity_day``: the day's rhythm over the trailing week (IS, IV, RA, L5, M10 and their
  start times), its daylight and activity, and last night's sleep (the night that ended that
  morning: onset, wake time, total sleep, efficiency, WASO, awakenings);
- ``activity_trend``: each trend event not raised before (one per measure and first day,
  remembered in the database, so a restart does not raise it again).

Runs on the activity worker's thread (database reads and numpy); no clock reads: ``now`` is
the hub time the events carry.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Final

import numpy as np

from core.actigraphy import (
    EpochSeries,
    NightSummary,
    TrendEvent,
    analyse,
    detect_trend_events,
    hhmm,
    rhythm_measures,
)
from core.errors import ActigraphyError
from edge.activity.options import ROLLING_DAYS, ActigraphyOptions
from edge.activity.store import ActivityStore, StoredDay
from edge.decisions import Event

__all__ = ["DAY_KIND", "TREND_KIND", "DayOutcome", "close_day", "local_midnight"]

log = logging.getLogger(__name__)

DAY_KIND: Final = "activity_day"
TREND_KIND: Final = "activity_trend"
_RHYTHM_KEYS: Final = ("IS", "IV", "RA", "L5", "M10")
_DAY_KEYS: Final = ("daylight_min", "lux_mean", "activity_mean", "worn_h")
_NIGHT_KEYS: Final = ("total_sleep_min", "sleep_efficiency", "waso_min", "awakenings")


@dataclass
class DayOutcome:
    """What closing a day produced (``skipped``: why nothing was, for the counters)."""

    resident: str
    day: date
    events: list[Event] = field(default_factory=list)
    days_written: int = 0
    epochs_read: int = 0
    epochs_expired: int = 0
    skipped: str = ""


def local_midnight(d: date, tz: tzinfo | None = None) -> float:
    """Unix time of the local midnight that starts ``d`` (the machine's zone when None)."""
    dt = datetime.combine(d, time())
    return (dt.replace(tzinfo=tz) if tz is not None else dt).timestamp()


def close_day(store: ActivityStore, resident: str, device: str, day: date,
              opts: ActigraphyOptions, *, now: float, tz: tzinfo | None = None) -> DayOutcome:
    """Analyse and store ``resident``'s ``day`` (and catch up); see the module docstring."""
    out = DayOutcome(resident, day)
    span = store.epoch_span(resident)
    if span is None:
        out.skipped = "no_epochs"
        return out
    first_epoch_day = datetime.fromtimestamp(span[0], tz).date()
    last = store.last_day(resident)
    oldest = day - timedelta(days=opts.history_days - 1)
    if last is not None and last >= day:
        out.skipped = "already_closed"
        return out
    # the last stored day again: its night has ended since
    first = max(last if last is not None else first_epoch_day, first_epoch_day, oldest)
    t0 = local_midnight(first - timedelta(days=ROLLING_DAYS), tz)
    t1 = local_midnight(day + timedelta(days=1), tz)
    rows = store.epochs(resident, t0, t1)
    if rows is None:
        out.skipped = "no_epochs"
        return out
    out.epochs_read = int(rows.t.size)
    series = EpochSeries.from_epochs(rows.t, rows.vm, epoch_s=rows.epoch_s, light=rows.light,
                                     tz=tz)
    try:
        report = analyse(series, nonwear_min_run_s=opts.nonwear_min * 60.0,
                         rolling_days=ROLLING_DAYS)
    except ActigraphyError as e:  # fewer than two days so far
        out.skipped = "too_short"
        log.debug("%s: %s not analysed yet: %s", resident, day, e)
        return out
    nights = {n.night: n for n in report.nights}
    fresh = [StoredDay(resident, r.day, r, _night(nights.get(r.day)))
             for r in report.table if first <= r.day <= day]
    store.put_days(resident, fresh, epoch_s=rows.epoch_s, updated=now)
    out.days_written = len(fresh)

    stored = store.days(resident)
    today = next((d for d in stored if d.day == day), None)
    yesterday = next((d for d in stored if d.day == day - timedelta(days=1)), None)
    if today is not None:
        detail = _day_detail(today, yesterday, series, report.algorithm)
        out.events.append(Event(resident, device, now, DAY_KIND, detail))
    table = [d.measures for d in stored]
    for ev in detect_trend_events(table, resident=resident, baseline_days=opts.baseline_days,
                                  k=opts.band_k, run_days=opts.run_days):
        detail = _trend_detail(ev)
        if store.add_trend(resident, ev.measure, ev.first_day, ev.day, detail, now):
            out.events.append(Event(resident, device, now, TREND_KIND, detail))
    out.epochs_expired = store.expire_epochs(
        resident, local_midnight(day + timedelta(days=1), tz) - opts.history_days * 86400.0)
    return out


def _night(n: NightSummary | None) -> dict[str, Any] | None:
    return None if n is None else n.to_dict()


def _num(v: float, nd: int = 4) -> float | None:
    return None if not math.isfinite(v) else round(float(v), nd)


def _day_detail(today: StoredDay, yesterday: StoredDay | None, series: EpochSeries,
                algorithm: str) -> dict[str, Any]:
    """The ``activity_day`` event: flat scalars (sinks publish scalar details only)."""
    m = today.measures
    d: dict[str, Any] = {"day": today.day.isoformat()}
    d.update({k: _num(m.get(k)) for k in (*_RHYTHM_KEYS, *_DAY_KEYS)})
    # the start times of L5 and M10 over the same trailing week as the row's IS and IV
    idx = np.flatnonzero(series.day_offsets() == (today.day - series.first_date()).days)
    if idx.size:
        end = int(idx[-1]) + 1
        week = series.slice(max(0, end - ROLLING_DAYS * series.epochs_per_day), end)
        try:
            r = rhythm_measures(week)
            d["L5_start"] = hhmm(r.L5_start) if math.isfinite(r.L5_start) else None
            d["M10_start"] = hhmm(r.M10_start) if math.isfinite(r.M10_start) else None
        except ActigraphyError:
            d["L5_start"] = d["M10_start"] = None
    night = yesterday.night if yesterday is not None else None
    d["night"] = None if yesterday is None else yesterday.day.isoformat()
    if night is not None:
        d["sleep_onset"] = night.get("sleep_onset")
        d["wake_time"] = night.get("wake_time")
        for k in _NIGHT_KEYS:
            d[k] = night.get(k)
    else:
        for k in ("sleep_onset", "wake_time", *_NIGHT_KEYS):
            d[k] = None
    d["sleep_algorithm"] = algorithm
    return d


def _trend_detail(e: TrendEvent) -> dict[str, Any]:
    b = e.baseline
    return {
        "measure": e.measure,
        "direction": e.direction,
        "first_day": e.first_day.isoformat(),
        "day": e.day.isoformat(),
        "days": e.days,
        "value": _num(e.value),
        "band_low": _num(b.low),
        "band_high": _num(b.high),
        "baseline_median": _num(b.median),
        "baseline_days": b.n_days,
        "message": e.message,
    }
