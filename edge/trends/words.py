"""The daily table and trend events in words and plain data, as ``edge-trends`` shows them.

Shared by the two inputs of ``edge-trends report``: an epoch CSV (analysed on the spot) and
the hub's database (the rows and events the daemon stored, :mod:`edge.activity.report`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.actigraphy import DailyMeasures
from edge.activity.report import WearerActivity

__all__ = ["duration", "fmt", "num", "row_json", "table_lines", "wearer_json", "wearer_lines"]

_NIGHT_WORDS = "the night that starts that evening"


def duration(minutes: float) -> str:
    """``452`` -> ``"7 h 32"``."""
    m = round(minutes)
    return f"{m // 60} h {m % 60:02d}"


def fmt(v: float, nd: int, unit: str = "") -> str:
    return "-" if not math.isfinite(v) else f"{v:.{nd}f}{unit}"


def num(v: float, nd: int) -> float | None:
    return None if not math.isfinite(v) else round(v, nd)


def table_lines(rows: Sequence[DailyMeasures]) -> list[str]:
    """A header and one line per day: rhythm, the night starting that evening, daylight."""
    lines = ["  day         IS     IV     RA     sleep     WASO  awak.  effic.  daylight"]
    for r in rows:
        g = r.get
        tst = "" if not math.isfinite(g("total_sleep_min")) else duration(g("total_sleep_min"))
        day = "" if not math.isfinite(g("daylight_min")) else f"{g('daylight_min'):.0f} min"
        lines.append(
            f"  {r.day}  {fmt(g('IS'), 3):>5}  {fmt(g('IV'), 3):>5}  {fmt(g('RA'), 3):>5}  "
            f"{tst:>8}  {fmt(g('waso_min'), 0):>5}  {fmt(g('awakenings'), 0):>5}  "
            f"{fmt(100 * g('sleep_efficiency'), 0, ' %'):>6}  {day:>8}")
    return lines


def row_json(r: DailyMeasures) -> dict[str, Any]:
    return {"day": r.day.isoformat(), **{k: num(v, 4) for k, v in r.values.items()}}


def wearer_lines(w: WearerActivity) -> list[str]:
    """One wearer's stored weeks: the daily table, the latest night, the trend events."""
    lines = [f"{w.resident}: {len(w.days)} days stored by the hub (rhythm over the trailing "
             f"week; {_NIGHT_WORDS})"]
    if w.days:
        lines += table_lines([d.measures for d in w.days])
        nights = [d for d in w.days if d.night and d.night.get("sleep_onset")]
        if nights:
            n = nights[-1].night or {}
            lines.append(f"  last night ({nights[-1].day}): asleep {_clock(n.get('sleep_onset'))}"
                         f" to {_clock(n.get('wake_time'))}, "
                         f"{duration(float(n.get('total_sleep_min') or 0))} of sleep, "
                         f"{float(n.get('waso_min') or 0):.0f} min awake in between, "
                         f"{n.get('awakenings', 0)} awakenings")
    else:
        lines.append("  no day has ended yet (a day's row is stored after its midnight)")
    lines.append("  trend events (a measure outside the wearer's own band for days):")
    for e in w.trends:
        lines.append(f"  {e.day}  {e.message}")
    if not w.trends:
        lines.append("  none")
    return lines


def wearer_json(w: WearerActivity) -> dict[str, Any]:
    return {
        "resident": w.resident,
        "days": [{**row_json(d.measures), "night": d.night} for d in w.days],
        "events": [e.detail for e in w.trends],
    }


def _clock(iso: object) -> str:
    """``"2024-03-04T22:31"`` -> ``"22:31"``."""
    return str(iso)[11:16] if isinstance(iso, str) and len(iso) >= 16 else "?"
