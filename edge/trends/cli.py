"""``edge-trends``: daily rhythm and sleep of a resident, in words or JSON, from an epoch CSV
or from what the hub stored.

    edge-trends rhythm FILE.csv [--json] [--epochs-out OUT.csv] [--plot OUT.png]
    edge-trends report FILE.csv [--json] [--baseline-days N] [--run-days K] [--plot OUT.png]
    edge-trends report [--db PATH] [--wearer W] [--json] [--plot OUT.png]
    edge-trends plot FILE.csv --out OUT.png [--days 28]
    edge-trends plot [--db PATH] [--wearer W] --out OUT.png [--days 28]

Without a FILE, ``report`` and ``plot`` read the hub's database (``--db``, default the
daemon's ``STATE_DIR/edge.db``): the daily rows and trend events the daemon stored.

Exit status: 0 done, 1 a plot could not be drawn, 2 the input was refused (one line says why).
"""

# ruff: noqa: T201 - a command line prints its results and errors (library code logs)
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["build_parser", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INPUT: Final = 2

_EPILOG = """\
the input file: one row per epoch, a header line, comma-separated
  time,activity[,light]
  2024-03-01T14:30:00,112,350.0
  2024-03-01T14:31:00,87,402.5
time is ISO 8601 (a UTC offset is allowed), activity the counts of the epoch (e.g. from
ActiGraph-compatible counts), light the mean lux (optional). The epoch length (15, 30, 60 s,
...) is read from the times; the file needs at least 2 days without gaps.

examples:
  edge-trends rhythm week.csv                      the measures and nights, in words
  edge-trends rhythm week.csv --json               the same as a JSON object
  edge-trends rhythm week.csv --epochs-out s.csv   also time,sleep per epoch (1/0, -1 unscored)
  edge-trends report month.csv --baseline-days 7   daily table and trend events
  edge-trends plot month.csv --out month.png       actogram and nightly sleep of the last weeks
  edge-trends report --db /var/lib/wearable-edge/edge.db --wearer anna
                                                   what the hub stored about anna's weeks
  edge-trends plot --db edge.db --wearer anna --out anna.png

Sleep is scored with Sadeh (1994) for 60 s epochs (shorter ones are summed to minutes) and
Cole-Kripke (1992) for 30 s epochs; runs of 2 h or more of zero counts are taken as the
wearable not worn (--nonwear-min 0 turns that off).
"""


def _add_common(p: argparse.ArgumentParser, *, db: bool = False) -> None:
    if db:
        p.add_argument("file", type=Path, metavar="FILE.csv", nargs="?",
                       help="epoch CSV: time,activity[,light] (none: the hub's database)")
        p.add_argument("--db", type=Path, metavar="PATH",
                       help="the hub's database (default: the daemon's STATE_DIR/edge.db)")
        p.add_argument("--wearer", metavar="W", help="only this wearer (the database holds all)")
    else:
        p.add_argument("file", type=Path, metavar="FILE.csv",
                       help="epoch CSV: time,activity[,light]")
    p.add_argument("--nonwear-min", type=float, default=120.0, metavar="MIN",
                   help="a run of zero counts this long is the wearable off the wrist, "
                        "not sleep (default 120; 0 = never)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-trends",
        description="Rest-activity rhythm (IS, IV, RA, L5, M10), sleep per night and trends "
                    "of one resident, from epoch-level activity counts.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{rhythm,report,plot}")
    r = sub.add_parser("rhythm", help="rhythm measures and nightly sleep of one file",
                       description="Rhythm measures (van Someren 1999) and the main sleep "
                                   "period of each night.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(r)
    r.add_argument("--json", action="store_true",
                   help="print one JSON object: IS, IV, RA, L5, M10, L5_start, M10_start "
                        "(HH:MM), nights")
    r.add_argument("--epochs-out", type=Path, metavar="OUT.csv",
                   help="write time,sleep per input epoch (1 sleep, 0 wake, -1 not scored)")
    r.add_argument("--plot", type=Path, metavar="OUT.png", help="also draw the last weeks")
    t = sub.add_parser("report", help="daily table of the last weeks and trend events",
                       description="One row per day (rhythm over the trailing week, the night "
                                   "starting that evening, daylight) and the events where a "
                                   "measure left the resident's own baseline band.")
    _add_common(t, db=True)
    t.add_argument("--json", action="store_true", help="print the table and events as JSON")
    t.add_argument("--plot", type=Path, metavar="OUT.png", help="also draw the last weeks")
    t.add_argument("--resident", default="resident", help="name carried by the events")
    t.add_argument("--baseline-days", type=int, default=7, metavar="N",
                   help="the first N days are the resident's baseline (default 7)")
    t.add_argument("--run-days", type=int, default=3, metavar="K",
                   help="an event needs K days in a row outside the band (default 3)")
    t.add_argument("--days", type=int, default=28, help="rows shown (default the last 28)")
    g = sub.add_parser("plot", help="draw the last weeks to a PNG (host extra: matplotlib)")
    _add_common(g, db=True)
    g.add_argument("--out", type=Path, required=True, metavar="OUT.png", help="the PNG to write")
    g.add_argument("--days", type=int, default=28, help="days drawn (default the last 28)")
    g.add_argument("--baseline-days", type=int, default=7, metavar="N",
                   help="baseline for the trend events marked on the plot (default 7)")
    return p


class _Analysis:
    """The file and everything the commands show, computed once (by the kernel's analyse)."""

    def __init__(self, path: Path, nonwear_min: float) -> None:
        from core.actigraphy import analyse
        from edge.trends.csvio import read_epochs

        self.file = read_epochs(path)
        report = analyse(self.file.series, nonwear_min_run_s=nonwear_min * 60.0)
        self.series = report.series
        self.nonworn = report.nonworn_epochs
        self.rhythm = report.rhythm
        self.algorithm = report.algorithm
        self.sleep = report.sleep
        self.centre = report.night_centre_s
        self.nights = report.nights
        self.table = report.table


def _num(v: float, nd: int) -> float | None:
    return None if not math.isfinite(v) else round(v, nd)


def _rhythm_json(an: _Analysis) -> dict[str, Any]:
    from core.actigraphy import hhmm

    r = an.rhythm
    return {
        "IS": _num(r.IS, 4), "IV": _num(r.IV, 4), "RA": _num(r.RA, 4),
        "L5": _num(r.L5, 3), "M10": _num(r.M10, 3),
        "L5_start": hhmm(r.L5_start) if math.isfinite(r.L5_start) else None,
        "M10_start": hhmm(r.M10_start) if math.isfinite(r.M10_start) else None,
        "nights": [n.to_dict() for n in an.nights],
    }


def _rhythm_words(an: _Analysis) -> str:
    from core.actigraphy import hhmm
    from edge.trends.words import duration

    r, s = an.rhythm, an.series
    lines = [
        f"{an.file.path}: {s.days:.1f} days of {s.epoch_s} s epochs from "
        f"{s.start:%Y-%m-%d %H:%M}" + (f", {an.nonworn} epochs not worn" if an.nonworn else ""),
        "rest-activity rhythm (van Someren 1999):",
        f"  interdaily stability   IS  {r.IS:.3f}   (1 = the same pattern every day, 0 = none)",
        f"  intradaily variability IV  {r.IV:.3f}   (0 = one smooth wave, 2 = fragmented)",
        f"  relative amplitude     RA  {r.RA:.3f}   (M10 - L5) / (M10 + L5)",
        f"  least active 5 h       L5  {r.L5:.1f} counts/epoch from {hhmm(r.L5_start)}",
        f"  most active 10 h       M10 {r.M10:.1f} counts/epoch from {hhmm(r.M10_start)}",
        f"nights: main sleep period, {an.algorithm}, searched {hhmm(an.centre - 9 * 3600)}-"
        f"{hhmm(an.centre + 9 * 3600)} around the middle of L5",
    ]
    if not an.nights:
        lines.append("  (no night window lies wholly inside the recording)")
    else:
        lines.append("  night       sleep onset  wake   total sleep  efficiency  WASO     "
                     "awakenings")
    for n in an.nights:
        if n.onset is None or n.wake is None:
            lines.append(f"  {n.night}  no sustained sleep")
            continue
        lines.append(
            f"  {n.night}  {n.onset:%H:%M}        {n.wake:%H:%M}  {duration(n.tst_min):>11}  "
            f"{100 * n.efficiency:>9.0f} %  {n.waso_min:>4.0f} min  {n.awakenings:>10}")
    return "\n".join(lines)


def _rhythm(args: argparse.Namespace) -> int:
    an = _Analysis(args.file, args.nonwear_min)
    if args.epochs_out:
        from edge.trends.csvio import write_sleep

        write_sleep(args.epochs_out, an.file.times, an.sleep)
    if args.json:
        print(json.dumps(_rhythm_json(an), indent=1))
    else:
        print(_rhythm_words(an))
    if args.plot:
        return _plot(an, args.plot, 28, 7)
    return EXIT_OK


def _events(an: _Analysis, resident: str, baseline_days: int, run_days: int) -> list[Any]:
    from core.actigraphy import detect_trend_events

    return detect_trend_events(an.table, resident=resident, baseline_days=baseline_days,
                               run_days=run_days)


def _report(args: argparse.Namespace) -> int:
    if args.file is None:
        return _report_db(args)
    from edge.trends.words import row_json, table_lines

    an = _Analysis(args.file, args.nonwear_min)
    events = _events(an, args.resident, args.baseline_days, args.run_days)
    rows = an.table[-args.days :]
    if args.json:
        doc = {
            "days": [row_json(r) for r in rows],
            "events": [{"resident": e.resident, "measure": e.measure,
                        "direction": e.direction, "first_day": e.first_day.isoformat(),
                        "day": e.day.isoformat(), "value": _num(e.value, 4),
                        "band": [_num(e.baseline.low, 4), _num(e.baseline.high, 4)],
                        "message": e.message} for e in events],
        }
        print(json.dumps(doc, indent=1))
    else:
        print(f"{an.file.path}: daily measures (rhythm over the trailing week; the night that "
              "starts that evening)")
        print("\n".join(table_lines(rows)))
        print(f"trend events (baseline: the first {args.baseline_days} days; "
              f"{args.run_days} days in a row outside the band):")
        for e in events:
            print(f"  {e.day}  {e.message}")
        if not events:
            print("  none")
    if args.plot:
        return _plot(an, args.plot, args.days, args.baseline_days)
    return EXIT_OK


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    from edge.config import default_state_dir

    return default_state_dir() / "edge.db"


def _report_db(args: argparse.Namespace) -> int:
    from edge.activity.report import read_activity
    from edge.trends.words import wearer_json, wearer_lines

    wearers = read_activity(_db_path(args), args.wearer, days=args.days,
                            nonwear_min=args.nonwear_min)
    if args.json:
        print(json.dumps({"wearers": [wearer_json(w) for w in wearers]}, indent=1))
    else:
        print("\n\n".join("\n".join(wearer_lines(w)) for w in wearers))
    if args.plot:
        return _plot_db(wearers, args.plot, args.days)
    return EXIT_OK


def _plot_db(wearers: list[Any], out: Path, days: int) -> int:
    from edge.trends.plot import PlotUnavailable, plot_weeks

    if len(wearers) > 1:
        names = ", ".join(w.resident for w in wearers)
        print(f"edge-trends: the database holds several wearers ({names}): pass --wearer W "
              "to plot one", file=sys.stderr)
        return EXIT_INPUT
    w = wearers[0]
    if w.series is None or w.sleep is None:
        print(f"edge-trends: no epochs of {w.resident} are kept any more to draw",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        path = plot_weeks(out, w.series, w.sleep, [d.measures for d in w.days], w.trends,
                          days=days, title=w.resident)
    except PlotUnavailable as e:
        print(f"edge-trends: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def _plot(an: _Analysis, out: Path, days: int, baseline_days: int) -> int:
    from edge.trends.plot import PlotUnavailable, plot_weeks

    events = _events(an, "resident", baseline_days, 3)
    try:
        path = plot_weeks(out, an.series, an.sleep, an.table, events, days=days,
                          title=an.file.path.name)
    except PlotUnavailable as e:
        print(f"edge-trends: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from core.errors import WearableEdgeError

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "rhythm":
            return _rhythm(args)
        if args.command == "report":
            return _report(args)
        if args.file is None:
            from edge.activity.report import read_activity

            return _plot_db(read_activity(_db_path(args), args.wearer, days=args.days,
                                          nonwear_min=args.nonwear_min), args.out, args.days)
        return _plot(_Analysis(args.file, args.nonwear_min), args.out, args.days,
                     args.baseline_days)
    except WearableEdgeError as e:
        print(f"edge-trends: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"edge-trends: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
