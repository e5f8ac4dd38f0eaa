"""Read the hub's database back in words: each wearer's states, episodes, alerts and events.

``edge-daemon history [--wearer W] [--since 24h] [--json]`` prints :func:`history_lines`
(or :func:`history_json` as JSON). An *episode* is a run of decisions with the same state
and no gap longer than ``max_gap_s`` between two of them; time in a state is the sum of its
episodes. Times are shown in the hub's local time. Reads only (``mode=ro``): safe while the
daemon writes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.errors import EdgeError
from edge.sinks.sqlite import open_database

__all__ = ["HistoryError", "event_words", "history_json", "history_lines", "parse_since"]

# decisions further apart than this are two episodes (a wearable off for a while): 4x the
# 30 s minimum dwell, the same limit after which the decision logic restarts its average
MAX_GAP_S: Final = 120.0
STATE_WORDS: Final = {"baseline": "calm (baseline)", "stress": "stressed", "amusement": "amused"}
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SKIPPED: Final = frozenset({"state_change", "data_gap"})  # episodes / counts say these


class HistoryError(EdgeError):
    """The history cannot be read (no database yet, not a hub database, a bad --since)."""


def parse_since(text: str) -> float:
    """``"24h"`` -> 86400.0 seconds; units s, m, h, d, w (a bare number is hours)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if m is None or float(m.group(1)) <= 0:
        raise HistoryError(f"--since {text!r}: give a duration such as 30m, 24h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "h"]


@dataclass
class _Episode:
    state: str
    start: float
    end: float
    decisions: int = 1

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass
class _Wearer:
    resident: str
    devices: set[str] = field(default_factory=set)
    episodes: list[_Episode] = field(default_factory=list)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    decisions: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def time_in_state(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for e in self.episodes:
            out[e.state] = out.get(e.state, 0.0) + e.duration_s
        return out


def _read(db: str | os.PathLike[str], wearer: str | None, since_s: float | None,
          now: float, max_gap_s: float) -> tuple[dict[str, _Wearer], int | None]:
    path = Path(db)
    if not path.is_file():
        raise HistoryError(f"no database at {path}: the daemon has stored nothing there yet "
                           "(pass --db PATH, or --state-dir DIR, to read another)")
    t0 = -math.inf if since_s is None else now - since_s
    where = "t >= ?"
    args: list[Any] = [t0]
    if wearer:
        where += " AND resident = ?"
        args.append(wearer)
    wearers: dict[str, _Wearer] = {}
    try:
        conn = open_database(path, readonly=True)
    except sqlite3.Error as e:
        raise HistoryError(f"cannot open {path}: {e}") from None
    try:
        rows: Iterator[tuple[Any, ...]] = conn.execute(
            f"SELECT resident, device, t, state FROM decisions WHERE {where}"
            " ORDER BY resident, t", args)
        for resident, device, t, state in rows:
            w = wearers.setdefault(resident, _Wearer(resident))
            w.devices.add(device)
            w.decisions += 1
            last = w.episodes[-1] if w.episodes else None
            if last is not None and last.state == state and t - last.end <= max_gap_s:
                last.end, last.decisions = t, last.decisions + 1
            else:
                if last is not None and t - last.end <= max_gap_s:
                    last.end = t  # the state held until the next decision changed it
                w.episodes.append(_Episode(state, t, t))
        for resident, device, t, kind, detail in conn.execute(
                f"SELECT resident, device, t, kind, detail FROM events WHERE {where}"
                " ORDER BY t", args):
            w = wearers.setdefault(resident, _Wearer(resident))
            if resident != "hub":
                w.devices.add(device)
            if kind in _SKIPPED:
                w.skipped[kind] += 1
                continue
            try:
                d = json.loads(detail)
            except ValueError:
                d = {}
            w.events.append((t, kind, d if isinstance(d, dict) else {}))
        waiting = None
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'mqtt_outbox'").fetchone():
            waiting = int(conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0])
    except sqlite3.Error as e:
        raise HistoryError(f"{path} is not a wearable-edge database ({e})") from None
    finally:
        conn.close()
    return wearers, waiting


def _words(state: str) -> str:
    return STATE_WORDS.get(state, state)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute" if seconds < 30 else "1 min"
    minutes = seconds / 60.0
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def event_words(kind: str, detail: dict[str, Any]) -> str:
    """An event as a person would say it."""
    if kind == "alert":
        return f"ALERT: {detail.get('message') or detail.get('rule', '')}"
    if kind == "alert_cleared":
        return f"alert over: {detail.get('message') or detail.get('rule', '')}"
    if kind == "battery_low":
        pct = detail.get("percent")
        return "battery low" + (f" ({pct:.0f} %)" if isinstance(pct, int | float) else "")
    if kind == "sustained_stress":
        d = detail.get("duration_s")
        return "stressed for a long time" + (
            f" ({_duration(float(d))})" if isinstance(d, int | float) else "")
    if kind == "invalid_windows":
        return f"readings unusable ({detail.get('reason', 'unknown')})"
    if kind == "disconnected":
        reason = detail.get("reason")
        return "the wearable disconnected" + (f" ({reason})" if reason else "")
    if kind == "activity_day":
        return _activity_day_words(detail)
    if kind == "activity_trend":
        return f"TREND: {detail.get('message') or detail.get('measure', '')}"
    if kind == "source_lost":
        silent = detail.get("silent_s")
        return (f"hub: the {detail.get('source', '?')} source went silent"
                + (f" ({_duration(float(silent))} without data)"
                   if isinstance(silent, int | float) else ""))
    if kind == "source_restored":
        return f"hub: the {detail.get('source', '?')} source delivers again"
    if kind in ("sink_fault", "sink_recovered"):
        sink = detail.get("sink", "?")
        if kind == "sink_recovered":
            return f"hub: output {sink} works again"
        return f"hub: output {sink} failing ({detail.get('error', '')})"
    return {
        "no_contact": "the wearable lost skin contact (off the wrist?)",
        "contact_restored": "skin contact again",
        "reconnected": "the wearable reconnected",
        "calibrated": "baseline recorded for this wearer",
        "valid_windows": "readings usable again",
    }.get(kind, f"{kind} {json.dumps(detail)}" if detail else kind)


def _activity_day_words(d: dict[str, Any]) -> str:
    """The day's rhythm and last night's sleep, as a carer reads them."""
    def n(key: str, fmt: str) -> str | None:
        v = d.get(key)
        return format(v, fmt) if isinstance(v, int | float) else None

    parts = [f"day {d.get('day', '?')}:"]
    rhythm = [f"{k} {v}" for k, v in (("IS", n("IS", ".2f")), ("IV", n("IV", ".2f")),
                                      ("RA", n("RA", ".2f"))) if v is not None]
    parts.append("rhythm " + ", ".join(rhythm) if rhythm else "rhythm not measured yet")
    tst = d.get("total_sleep_min")
    if isinstance(tst, int | float):
        onset, wake = str(d.get("sleep_onset") or "")[11:16], str(d.get("wake_time") or "")[11:16]
        parts.append(f"; last night {_duration(60.0 * float(tst))} asleep"
                     + (f" ({onset}-{wake})" if onset and wake else "")
                     + (f", {n('waso_min', '.0f')} min awake after sleep onset"
                        if n("waso_min", ".0f") else ""))
    if n("daylight_min", ".0f") is not None:
        parts.append(f"; {n('daylight_min', '.0f')} min in daylight")
    return " ".join(parts).replace(" ;", ";")


def history_json(db: str | os.PathLike[str], wearer: str | None = None,
                 since_s: float | None = 86400.0, *, now: float | None = None,
                 max_gap_s: float = MAX_GAP_S) -> dict[str, Any]:
    """The history as plain data (``--json``): per wearer, episodes, time in state, events."""
    now = time.time() if now is None else now
    wearers, waiting = _read(db, wearer, since_s, now, max_gap_s)
    out: dict[str, Any] = {
        "since": None if since_s is None else round(now - since_s, 3),
        "until": round(now, 3),
        "wearers": [],
        "mqtt_waiting": waiting,
    }
    for name in sorted(wearers):
        w = wearers[name]
        out["wearers"].append({
            "resident": name,
            "devices": sorted(w.devices),
            "decisions": w.decisions,
            "time_in_state_s": {k: round(v, 1) for k, v in w.time_in_state().items()},
            "episodes": [{"state": e.state, "start": round(e.start, 3), "end": round(e.end, 3),
                          "duration_s": round(e.duration_s, 1), "decisions": e.decisions}
                         for e in w.episodes],
            "events": [{"t": round(t, 3), "kind": k, "detail": d, "text": event_words(k, d)}
                       for t, k, d in w.events],
            "not_listed": dict(w.skipped),
        })
    return out


def history_lines(db: str | os.PathLike[str], wearer: str | None = None,
                  since_s: float | None = 86400.0, *, now: float | None = None,
                  tz: dt.tzinfo | None = None, max_gap_s: float = MAX_GAP_S) -> list[str]:
    """The history in words, one line each (the CLI prints them)."""
    now = time.time() if now is None else now
    wearers, waiting = _read(db, wearer, since_s, now, max_gap_s)

    def when(t: float, fmt: str = "%H:%M") -> str:
        return dt.datetime.fromtimestamp(t, tz).strftime(fmt)  # tz None: the hub's local time

    span = "everything stored" if since_s is None else f"the last {_duration(since_s)}"
    lines = [f"History of {span}, up to {when(now, '%Y-%m-%d %H:%M')}"
             + (f" (wearer {wearer})" if wearer else "")]
    if not wearers:
        lines.append("  nothing stored in this period"
                     + (f" for {wearer!r}" if wearer else "") + ".")
    for name in sorted(wearers, key=lambda n: (n == "hub", n)):
        w = wearers[name]
        lines.append("")
        if name == "hub":
            lines.append("The hub")
        else:
            devices = ", ".join(sorted(w.devices)) or "?"
            first = w.episodes[0].start if w.episodes else None
            last = w.episodes[-1].end if w.episodes else None
            lines.append(f"{name} (wearable {devices}): {w.decisions} decisions"
                         + (f" from {when(first, '%d %b %H:%M')} to {when(last, '%d %b %H:%M')}"
                            if first is not None and last is not None else ""))
            tis = w.time_in_state()
            total = sum(tis.values())
            if total > 0:
                parts = sorted(tis.items(), key=lambda kv: -kv[1])
                lines.append("  time in each state: " + ", ".join(
                    f"{_words(s)} {v / total:.0%} ({_duration(v)})" for s, v in parts))
        items: list[tuple[float, int, str]] = []
        for e in w.episodes:
            span_text = f"{when(e.start)}–{when(e.end)}"
            items.append((e.start, 0, f"  {span_text:<13} {_words(e.state)} for "
                                      f"{_duration(e.duration_s)}"))
        for t, kind, d in w.events:
            items.append((t, 1, f"  {when(t):<13} {event_words(kind, d)}"))
        day = None
        for t, _, text in sorted(items):
            d_ = when(t, "%A %d %B %Y")
            if d_ != day:
                day = d_
                lines.append(f" {d_}")
            lines.append(text)
        if w.skipped.get("data_gap"):
            lines.append(f"  ({w.skipped['data_gap']} short data gaps not listed)")
    if waiting:
        lines.append("")
        lines.append(f"MQTT: {waiting} messages wait in the outbox for the broker")
    return lines
