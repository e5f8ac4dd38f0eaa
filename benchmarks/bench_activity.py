"""What the hub's actigraphy costs: counts per hour of data, a day's close, a simulated day.

1. **Counts**: the daemon's raw tap for one wearer (:class:`edge.activity.epochs.
   DeviceActivity`: wire values to g, buffering, the kernel's streaming ActiGraph counts) on
   one hour of 3-axis acceleration per rate, fed in the packets a wearable sends (0.25 s, the
   simulator's default, and 60 s). Figure: CPU seconds per hour of data, and that as a share
   of one core (a hub with N wearers spends N times it).
2. **A day's close**: :func:`edge.activity.daily.close_day` on a wearer whose database holds
   five weeks of 60 s epochs (the daily analysis reads the week before the day).
3. **A simulated day through the daemon** (``--days N``, 0 to skip): ``edge-daemon --device
   sim --sim-days N --speed 1000000`` in-process; CPU seconds per simulated day of the whole
   path (the simulator making the signal, the ingest, the counts, SQLite, the daily close).

Each case runs ``--repeats`` times; the best (least disturbed) CPU time is reported, with the
load average before and after: the machine is shared.

    .venv/bin/python -m benchmarks.bench_activity            # writes benchmarks/results/activity/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from edge.activity.daily import close_day, local_midnight
from edge.activity.epochs import ActivityEpoch, DeviceActivity
from edge.activity.options import ActigraphyOptions
from edge.activity.store import ActivityStore
from edge.decisions import Wearer
from firmware_bridge.protocol import SampleFormat, SensorInfo

OUT_DIR: Final = Path(__file__).resolve().parent / "results" / "activity"
RATES: Final = (30, 32, 50, 64, 100)
PACKETS_S: Final = (0.25, 60.0)
COMMAND: Final = "python -m benchmarks.bench_activity"
HISTORY_DAYS: Final = 35  # ActigraphyOptions.history_days: what a hub keeps
DAY0: Final = date(2024, 3, 4)


def _wrist(fs: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Wire values (int16, 1/4096 g) of a wrist moving as by day."""
    rng = np.random.default_rng(seed)
    n = round(fs * seconds)
    move = np.convolve(rng.standard_normal(n + 8), np.ones(9) / 3.0, "valid")[:n]
    g = np.array([-0.2, 0.1, 0.97]) + 0.1 * np.stack([move, np.roll(move, 7),
                                                      np.roll(move, 13)], axis=1)
    return np.clip(np.rint(g * 4096), -32768, 32767).astype(np.int16)


def counts_cost(fs: int, packet_s: float, repeats: int) -> dict[str, Any]:
    info = SensorInfo(1, "acc", "g", float(fs), 3, SampleFormat.INT16, 1.0 / 4096.0)
    raw = _wrist(fs, 3600.0)
    per = max(1, round(packet_s * fs))
    times = []
    epochs = 0
    for _ in range(repeats):
        act = DeviceActivity("d", Wearer("d", "r"), lambda t: 1_700_000_000.0 + t)
        t_all = np.arange(len(raw)) / fs
        c0 = time.process_time()
        out = []
        for i in range(0, len(raw), per):
            out += act.on_samples(info, t_all[i : i + per], raw[i : i + per])
        out += act.flush()
        times.append(time.process_time() - c0)
        epochs = len(out)
    best = min(times)
    return {"rate_hz": fs, "packet_s": packet_s, "cpu_s_per_hour": round(best, 4),
            "median_cpu_s_per_hour": round(float(np.median(times)), 4),
            "share_of_one_core_pct": round(100 * best / 3600.0, 4), "epochs": epochs}


def _stored_weeks(path: Path, days: int) -> ActivityStore:
    """``days`` of 60 s epochs of a regular sleeper (asleep 22:30-06:30) in a hub database."""
    rng = np.random.default_rng(1)
    minute = np.arange(days * 1440) % 1440
    asleep = (minute >= 22 * 60 + 30) | (minute < 6 * 60 + 30)
    vm = np.where(asleep, np.where(rng.random(minute.size) < 0.06, 30.0, 0.0),
                  rng.gamma(2.0, 800.0, minute.size))
    t0 = local_midnight(DAY0)
    store = ActivityStore(path)
    store.write_epochs([ActivityEpoch("ada", "dev-1", t0 + 60.0 * i, 60, (int(v), 0, 0),
                                      float(v), 250.0) for i, v in enumerate(vm)])
    return store


def close_cost(repeats: int) -> dict[str, Any]:
    times = []
    with tempfile.TemporaryDirectory() as d:
        store = _stored_weeks(Path(d) / "edge.db", HISTORY_DAYS)
        opts = ActigraphyOptions()
        for k in range(repeats):
            day = DAY0 + timedelta(days=HISTORY_DAYS - 1 - repeats + k)
            c0 = time.process_time()
            out = close_day(store, "ada", "dev-1", day, opts,
                            now=local_midnight(day + timedelta(days=1)))
            times.append(time.process_time() - c0)
            if out.skipped:
                raise RuntimeError(f"the day was not closed: {out.skipped}")
        store.close()
    return {"history_days": HISTORY_DAYS, "cpu_s_per_close": round(min(times), 4),
            "median_cpu_s_per_close": round(float(np.median(times)), 4)}


def simulated_days(days: float) -> dict[str, Any]:
    from edge.config import DaemonConfig, apply_overrides
    from edge.daemon import open_daemon

    with tempfile.TemporaryDirectory() as d:
        cfg = apply_overrides(DaemonConfig(), {
            "device": "sim", "sim.days": days, "speed": 1_000_000, "db": f"{d}/edge.db",
            "state_dir": d, "sinks.log_decisions": False, "health.status_line": "off",
            "health.status_file_interval_s": 0, "log_level": "warning"})
        daemon = open_daemon(cfg)
        c0, w0 = time.process_time(), time.perf_counter()
        summary = asyncio.run(daemon.run())
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    act = summary.get("activity", {})
    return {"days": days, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "cpu_s_per_day": round(cpu / days, 3), "epochs_stored": act.get("epochs_stored", 0),
            "days_closed": act.get("days_closed", 0),
            "trend_events": act.get("events_activity_trend", 0),
            "peak_rss_mb": summary.get("peak_rss_mb")}


def _markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# What the hub's actigraphy costs", "",
        f"Command: `{doc['command']}`  ",
        f"Created {doc['created']} on {doc['machine']}; load average {doc['load_before']} "
        f"before, {doc['load_after']} after (a shared machine: figures are upper bounds).", "",
        "## Counts per wearer (the daemon's raw tap, kernel included)", "",
        "| rate | packet | CPU s per hour of data | median | share of one core | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["counts"]:
        lines.append(f"| {r['rate_hz']} Hz | {r['packet_s']:g} s | {r['cpu_s_per_hour']} | "
                     f"{r['median_cpu_s_per_hour']} | {r['share_of_one_core_pct']} % | "
                     f"{r['epochs']} |")
    c = doc["close"]
    lines += ["", "## A day's close", "",
              f"`close_day` with {c['history_days']} days stored: {c['cpu_s_per_close']} CPU s "
              f"(median {c['median_cpu_s_per_close']} s), once per wearer per day."]
    s = doc.get("simulated")
    if s:
        lines += ["", "## A simulated resident through the daemon", "",
                  f"`edge-daemon --device sim --sim-days {s['days']:g} --speed 1000000`: "
                  f"{s['cpu_s']} CPU s ({s['cpu_s_per_day']} per simulated day), "
                  f"{s['wall_s']} s wall, {s['epochs_stored']} epochs stored, "
                  f"{s['days_closed']} days closed, {s['trend_events']} trend events, "
                  f"peak RSS {s['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--days", type=float, default=2.0, help="simulated days (0: skip)")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    counts = [counts_cost(fs, pk, args.repeats) for fs in RATES for pk in PACKETS_S]
    doc: dict[str, Any] = {
        "command": COMMAND + (f" --days {args.days:g}" if args.days != 2.0 else ""),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
                   f"{platform.python_version()}, {os.cpu_count()} CPUs",
        "counts": counts,
        "close": close_cost(args.repeats),
        "simulated": simulated_days(args.days) if args.days > 0 else None,
    }
    doc["load_before"] = load_before
    doc["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / "results.md").write_text(_markdown(doc))
    sys.stdout.write(_markdown(doc))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
