"""The last weeks at a glance as one PNG: actogram with sleep, nightly sleep, rolling rhythm.

matplotlib is a host package (the ``host`` extra), never a hub dependency: it is imported
here, inside the function, and its absence is reported as :class:`PlotUnavailable`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from core.actigraphy import DailyMeasures, EpochSeries
from core.actigraphy.sleep import SLEEP, UNSCORED
from edge.errors import EdgeError

__all__ = ["DEFAULT_DAYS", "Marked", "PlotUnavailable", "plot_weeks"]

DEFAULT_DAYS: Final = 28


class PlotUnavailable(EdgeError):
    """matplotlib is not installed (it comes with the host extra)."""


class Marked(Protocol):
    """A trend event as the plot marks it (the kernel's TrendEvent, or one the hub stored)."""

    @property
    def measure(self) -> str: ...

    @property
    def day(self) -> date: ...


def plot_weeks(out: Path, series: EpochSeries, sleep: np.ndarray,
               table: Sequence[DailyMeasures], events: Sequence[Marked] = (), *,
               days: int = DEFAULT_DAYS, title: str = "") -> Path:
    """Draw the last ``days`` days of ``series`` to ``out`` (PNG); returns ``out``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.dates import date2num
    except ImportError:
        raise PlotUnavailable(
            "plots need matplotlib: install the host extra (pip install 'wearable-edge[host]')"
        ) from None
    per_day = series.epochs_per_day
    day_of = series.day_offsets()
    last_day = int(day_of[-1])
    first_day = max(0, last_day - days + 1)
    shown = list(range(first_day, last_day + 1))
    table = [r for r in table if (r.day - series.first_date()).days >= first_day]

    fig = plt.figure(figsize=(11, 3 + 0.28 * len(shown) + 4))
    grid = fig.add_gridspec(3, 1, height_ratios=[0.28 * len(shown) + 1, 2, 2], hspace=0.45)
    ax = fig.add_subplot(grid[0])
    act = series.activity
    top = np.nanpercentile(act, 99) if np.any(np.isfinite(act)) else 1.0
    top = top if top > 0 else 1.0
    hours = (np.arange(per_day) * series.epoch_s + series.phase_s) / 3600.0
    for row, k in enumerate(shown):
        idx = np.flatnonzero(day_of == k)
        slot = series.slot_of_day()[idx]
        y0 = len(shown) - 1 - row
        a = np.full(per_day, np.nan)
        a[slot] = act[idx]
        s = np.full(per_day, UNSCORED, dtype=np.int8)
        s[slot] = sleep[idx]
        ax.fill_between(hours, y0, y0 + np.where(s == SLEEP, 0.9, 0.0), step="post",
                        color="#9ecae1", linewidth=0)
        missing = ~np.isfinite(a)
        ax.fill_between(hours, y0, y0 + np.where(missing, 0.9, 0.0), step="post",
                        color="#dddddd", linewidth=0)
        ax.fill_between(hours, y0, y0 + 0.9 * np.clip(np.nan_to_num(a) / top, 0, 1),
                        step="post", color="#252525", linewidth=0)
    ax.set_yticks([len(shown) - 1 - r + 0.45 for r in range(len(shown))])
    ax.set_yticklabels([(series.first_date() + timedelta(days=k)).strftime("%a %d %b")
                        for k in shown], fontsize=7)
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel("time of day (h)")
    ax.set_title((title + ": " if title else "")
                 + "activity (black), scored sleep (blue), not worn (grey)", fontsize=10)

    ax2 = fig.add_subplot(grid[1])
    x = date2num([r.day for r in table]) if table else np.zeros(0)
    tst = [r.get("total_sleep_min") / 60.0 for r in table]
    waso = [r.get("waso_min") / 60.0 for r in table]
    ax2.bar(x, tst, color="#3182bd", label="total sleep (h)")
    ax2.bar(x, waso, bottom=tst, color="#fd8d3c", label="wake after sleep onset (h)")
    ax2.set_ylabel("hours")
    ax2.legend(fontsize=8, loc="upper left")
    ax2.set_title("nights (by the evening they start)", fontsize=10)

    ax3 = fig.add_subplot(grid[2], sharex=ax2)
    ax3.plot(x, [r.get("IS") for r in table], "o-", label="IS (regularity)")
    ax3.plot(x, [r.get("IV") for r in table], "s-", label="IV (fragmentation)")
    ax3.plot(x, [r.get("RA") for r in table], "^-", label="RA (amplitude)")
    ax3.set_ylim(0, max(1.2, np.nanmax([r.get("IV") for r in table] + [1.0]) * 1.1
                        if any(math.isfinite(r.get("IV")) for r in table) else 1.2))
    ax3.set_title("rest-activity rhythm over the trailing week", fontsize=10)
    for e in events:
        for a_ in (ax2, ax3):
            a_.axvline(float(date2num(e.day)), color="#cb181d", linestyle="--", linewidth=1)
        ax3.annotate(e.measure, (float(date2num(e.day)), ax3.get_ylim()[1]), fontsize=7,
                     color="#cb181d",
                     rotation=90, va="top", ha="right")
    ax3.legend(fontsize=8, loc="upper left", ncols=3)
    ax2.xaxis_date()
    # not fig.autofmt_xdate(): it would also hide the actogram's hour labels
    ax2.tick_params(labelbottom=False)
    for label in ax3.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
