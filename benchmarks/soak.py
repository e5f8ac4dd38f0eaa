"""Soak: a day of three wearables through the real daemon, sped up; memory, fds, tasks, counts.

    python -m benchmarks.soak                          # 24 h of 3 wearables (several minutes)
    python -m benchmarks.soak --hours 2 --out /tmp/s   # the CI variant (tests/e2e/test_soak.py)
    python -m benchmarks.soak --help

The daemon runs in a fresh child process built exactly as ``edge-daemon`` builds it
(``edge.daemon.open_daemon``: bundle, engine, SQLite and log sinks, health lines every
``--health-s`` seconds), with one difference: its simulated wearables loop their recording
until each has sent ``--hours`` of data and then end, so the run covers a fixed span of
*data* time however fast this machine is (``edge-daemon --duration`` counts wall time). The
source is not live, so a busy daemon slows the simulator instead of dropping data.

The parent samples the child from outside every ``--sample-s``: resident memory
(``/proc/PID/status`` VmRSS), open file descriptors (``/proc/PID/fd``) and threads, and
reads the asyncio task count and fd count from the daemon's own health lines. Verdicts:

- memory flat after warm-up: RSS at the end at most :data:`RSS_GROWTH_MAX` above the RSS at
  the end of the warm-up (the first :data:`WARMUP_FRACTION` of the run; the SQLite page
  cache, the latency reservoirs and the allocator's arenas fill up there);
- no fd, thread or task leak: after warm-up, the median of the last half is no higher than
  the median of the first half, give or take the one step of a pool that starts workers on
  demand (:data:`POOL_STEP`): a leak grows and stays; a file the status writer holds for
  a moment, or a write in flight, is seen in one sample and does not move a median;
- decisions as expected: per wearable about ``hours * 3600 / hop`` windows (the data span
  cut at the bundle's hop), every valid window decided, every decision in the database,
  no drop of any kind.

Writes ``results.json``, ``results.md`` and ``soak.png`` (RSS and fds over data time) under
``--out`` (default ``benchmarks/results/soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["RSS_GROWTH_MAX", "WARMUP_FRACTION", "main", "run_soak", "verdicts"]

REPO: Final = Path(__file__).resolve().parents[1]
# memory growth allowed after warm-up: the caches have filled by then, and a leak of a few
# bytes per packet exceeds this over a day of three wearables' data
RSS_GROWTH_MAX: Final = 0.05
WARMUP_FRACTION: Final = 0.2  # caches and reservoirs fill in the first fifth of the run
RECORDING_S: Final = 1800.0  # each wearable loops a 30 min synthetic recording
END_SLACK_S: Final = 1e-3  # far below a sample period, far above float rounding of hub time
SPEED: Final = 10000.0  # the config's ceiling; the daemon's own pace is the real limit
_HEALTH: Final = re.compile(r"health: .*? decisions=(\d+) .*? rss=([\d.]+)MB tasks=(\d+) fds=(\d+)")


# -- the child: the daemon ------------------------------------------------------------------------
def _bounded_wearable_class() -> type:
    from firmware_bridge.sim import SimulatedWearable

    class BoundedWearable(SimulatedWearable):  # type: ignore[misc]
        """Loops its recording and ends after ``data_s`` seconds of data."""

        def __init__(self, *args: Any, data_s: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.data_s = data_s

        async def messages(self) -> AsyncIterator[tuple[float, Any]]:
            async for t_hub, msg in super().messages():
                # the last packet is due at exactly data_s; hub_t0 + t - hub_t0 rounds
                if t_hub - (self.hub_t0 or 0.0) > self.data_s + END_SLACK_S:
                    return
                yield t_hub, msg

    return BoundedWearable


def child(spec: dict[str, Any]) -> int:
    """Run the daemon for ``spec`` (written by the parent); summary to ``spec['summary']``."""
    import logging

    from edge.config import DaemonConfig, apply_overrides
    from edge.daemon import open_daemon
    from edge.health import summary_json
    from edge.sources.sim import SimSource
    from edge.ui import setup_logging
    from firmware_bridge.sim.synthetic import synthetic_recording

    cfg = apply_overrides(DaemonConfig(), spec["config"])
    setup_logging(cfg.log_level)
    wearable = _bounded_wearable_class()
    recording = synthetic_recording(RECORDING_S, seed=spec["seed"])
    wearables = [wearable(recording, device_id=f"sim-{i}", speed=cfg.speed, loop_forever=True,
                          t0_device_us=1_000_000 + i * 7_000_000, data_s=spec["data_s"])
                 for i in range(spec["devices"])]
    daemon = open_daemon(cfg, make_source=lambda bundle: SimSource(
        wearables, class_names=bundle.class_names))
    logging.getLogger("benchmarks.soak").info("soak child: %d wearables x %.0f s of data",
                                              len(wearables), spec["data_s"])
    summary = asyncio.run(daemon.run())
    Path(spec["summary"]).write_text(summary_json(summary))
    return 0


# -- the parent: run, sample, judge ----------------------------------------------------------------
def _proc_figures(pid: int) -> dict[str, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_kb": int(fields["VmRSS"].split()[0]), "threads": int(fields["Threads"]),
            "fds": fds}


# A pool that starts its threads on demand (asyncio's default executor: a second worker when
# two blocking jobs overlap, which depends on the machine's load) steps up once, at a moment
# no test can pin, and a worker's database connection brings its file descriptors with it.
# Such a step is bounded; a leak is not, and over an hour of data it grows far past these.
POOL_STEP: Final = {"threads": 2, "fds": 6, "tasks": 0}


def _no_growth(values: list[int], slack: int = 0) -> bool:
    """True when the later half of ``values`` sits no higher than the earlier half (medians)
    plus ``slack``, the one-off step of pools that start workers on demand."""
    if len(values) < 2:
        return True
    half = len(values) // 2
    return statistics.median(values[half:]) <= statistics.median(values[:half]) + slack


def run_soak(*, hours: float, devices: int, bundle: str, out: Path, health_s: float = 2.0,
             sample_s: float = 1.0, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run one soak; returns the results dict (also written to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    data_s = hours * 3600.0
    spec = {
        "config": {"device": "sim", "bundle": bundle, "backend": "onnx", "precision": "fp32",
                   "speed": SPEED, "db": str(work / "edge.db"), "state_dir": str(work / "state"),
                   "health.interval_s": health_s, "health.status_line": "off",
                   "log_level": "info", "sim.devices": devices},
        "devices": devices, "data_s": data_s, "seed": seed,
        "summary": str(work / "summary.json"),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    log_path = work / "daemon.log"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.soak", "--child",
                                 str(work / "spec.json")], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        samples: list[dict[str, Any]] = []
        bar = _progress(progress, data_s * devices)
        hop = _hop(bundle)
        try:
            while proc.poll() is None:
                fig = _proc_figures(proc.pid)
                if fig is not None:
                    fig["wall_s"] = round(time.monotonic() - t0, 2)
                    samples.append(fig)
                health = _health_lines(log_path)
                if bar is not None and health:
                    bar(health[-1]["decisions"] * hop)
                time.sleep(sample_s)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if bar is not None:
                bar(None)
    wall = time.monotonic() - t0
    text = log_path.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"the soak daemon failed ({proc.returncode}):\n{text[-3000:]}")
    summary = json.loads(Path(spec["summary"]).read_text())
    health = _health_lines(log_path)
    conn = sqlite3.connect(f"file:{work / 'edge.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    results = {
        "hours_per_wearable": hours, "wearables": devices, "bundle": bundle,
        "wall_s": round(wall, 1), "speedup": round(data_s / wall, 1),
        "samples": samples, "health": health, "db_rows": rows, "db_integrity": check,
        "db_mb": round((work / "edge.db").stat().st_size / 2**20, 2),
        "summary": summary, "hop_s": hop, "window_s": _window(bundle),
        "load_average": os.getloadavg(),
    }
    results["verdicts"] = verdicts(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(render_md(results))
    _plot(results, out / "soak.png")
    return results


def _health_lines(path: Path) -> list[dict[str, float]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = _HEALTH.search(line)
        if m:
            out.append({"decisions": int(m.group(1)), "rss_mb": float(m.group(2)),
                        "tasks": int(m.group(3)), "fds": int(m.group(4))})
    return out


def _manifest(bundle: str) -> dict[str, Any]:
    from edge.bundle import load_bundle

    return load_bundle(bundle).manifest  # type: ignore[no-any-return]


def _hop(bundle: str) -> float:
    return float(_manifest(bundle)["contract"]["hop_s"])


def _window(bundle: str) -> float:
    return float(_manifest(bundle)["contract"]["window_s"])


def verdicts(r: dict[str, Any]) -> dict[str, Any]:
    """Pass/fail with the figures behind each; see the module docstring."""
    samples = r["samples"]
    warm = samples[int(len(samples) * WARMUP_FRACTION):] or samples
    rss0, rss_end = warm[0]["rss_kb"], warm[-1]["rss_kb"]
    rss_max = max(s["rss_kb"] for s in warm)
    growth = (rss_end - rss0) / rss0
    health = r["health"]
    hw = health[int(len(health) * WARMUP_FRACTION):] or health
    s = r["summary"]
    n_dev = r["wearables"]
    data_s = r["hours_per_wearable"] * 3600.0
    # windows start every hop from each wearable's first sample; the last needs a full window
    per_dev = math.floor((data_s - r["window_s"]) / r["hop_s"]) + 1
    windows = s["windows"]
    total = sum(windows.values())
    drops = {k: v for k, v in s["drops"].items() if v}
    return {
        "rss_warm_kb": rss0, "rss_end_kb": rss_end, "rss_max_after_warmup_kb": rss_max,
        "rss_growth": round(growth, 4),
        "memory_flat": growth <= RSS_GROWTH_MAX and (rss_max - rss0) / rss0 <= RSS_GROWTH_MAX,
        "fds_warm": warm[0]["fds"], "fds_max_after_warmup": max(x["fds"] for x in warm),
        "threads_warm": warm[0]["threads"],
        "threads_max_after_warmup": max(x["threads"] for x in warm),
        "tasks_warm": hw[0]["tasks"] if hw else None,
        "tasks_max_after_warmup": max((x["tasks"] for x in hw), default=None),
        "no_fd_thread_task_leak": (
            _no_growth([x["fds"] for x in warm], POOL_STEP["fds"])
            and _no_growth([x["threads"] for x in warm], POOL_STEP["threads"])
            and bool(hw)
            and _no_growth([x["tasks"] for x in hw], POOL_STEP["tasks"])),
        "windows_expected": n_dev * per_dev, "windows_cut": total,
        "decisions": s["decisions"], "windows_valid": windows.get("valid", 0),
        "drops": drops,
        "decisions_as_expected": (abs(total - n_dev * per_dev) <= n_dev
                                  and s["decisions"] == windows.get("valid", 0) == r["db_rows"]
                                  and not drops and r["db_integrity"] == "ok"),
    }


def render_md(r: dict[str, Any]) -> str:
    v = r["verdicts"]
    ok = lambda b: "**pass**" if b else "**FAIL**"  # noqa: E731 - a table helper
    return "\n".join([
        f"# Soak: {r['wearables']} wearables x {r['hours_per_wearable']:g} h of data",
        "",
        f"Real daemon (ONNX Runtime fp32, SQLite + log sinks), in-process simulator looping a "
        f"30 min recording, {r['wall_s']:.0f} s wall ({r['speedup']:.0f}x real time); load "
        f"average at the end {r['load_average'][0]:.1f}. Command: `python -m benchmarks.soak "
        f"--hours {r['hours_per_wearable']:g} --devices {r['wearables']}`.",
        "",
        "| check | figures | verdict |",
        "|---|---|---|",
        f"| memory flat after warm-up (<= {RSS_GROWTH_MAX:.0%}) | RSS {v['rss_warm_kb'] / 1024:.1f}"
        f" MB at warm-up, {v['rss_end_kb'] / 1024:.1f} MB at the end, max "
        f"{v['rss_max_after_warmup_kb'] / 1024:.1f} MB; growth {v['rss_growth']:+.2%} | "
        f"{ok(v['memory_flat'])} |",
        f"| no fd / thread / task leak | fds {v['fds_warm']} -> max {v['fds_max_after_warmup']};"
        f" threads {v['threads_warm']} -> max {v['threads_max_after_warmup']}; asyncio tasks "
        f"{v['tasks_warm']} -> max {v['tasks_max_after_warmup']} | "
        f"{ok(v['no_fd_thread_task_leak'])} |",
        f"| decisions as expected | windows {v['windows_cut']} (expected "
        f"{v['windows_expected']}), valid {v['windows_valid']}, decisions {v['decisions']}, "
        f"database rows {r['db_rows']} ({r['db_mb']} MB, integrity {r['db_integrity']}), "
        f"drops {v['drops'] or 'none'} | {ok(v['decisions_as_expected'])} |",
        "",
        "![RSS and file descriptors over the run](soak.png)",
        "",
    ])


def _plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = r["samples"]
    t = [x["wall_s"] for x in s]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, [x["rss_kb"] / 1024 for x in s], label="RSS (MB)")
    ax.set_xlabel(f"wall seconds ({r['speedup']:.0f}x: the run is "
                  f"{r['hours_per_wearable']:g} h of data per wearable)")
    ax.set_ylabel("RSS (MB)")
    warm = t[int(len(t) * WARMUP_FRACTION)] if t else 0
    ax.axvline(warm, color="grey", ls=":", label="end of warm-up")
    ax2 = ax.twinx()
    ax2.plot(t, [x["fds"] for x in s], color="tab:orange", label="open fds")
    ax2.plot(t, [x["threads"] for x in s], color="tab:green", label="threads")
    ax2.set_ylabel("count")
    ax2.set_ylim(0, max([x["fds"] for x in s] + [1]) * 1.5)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right")
    ax.set_title(f"soak: {r['wearables']} wearables x {r['hours_per_wearable']:g} h")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _progress(enabled: bool, total: float) -> Any:
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("soak (data-s)", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = bar.add_task("soak", total=round(total))
    bar.start()

    def update(value: float | None) -> None:
        if value is None:
            bar.stop()
            return
        bar.update(task, completed=min(round(value), round(total)))

    return update


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="Run the daemon on N simulated wearables for H hours of data (sped up) "
                    "and check memory, fds, threads, asyncio tasks and decision counts.",
    )
    p.add_argument("--hours", type=float, default=24.0, help="hours of data per wearable (24)")
    p.add_argument("--devices", type=int, default=3, help="simulated wearables (3)")
    p.add_argument("--bundle", default="", help="model bundle (default: the demo bundle)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "soak",
                   help="results directory (benchmarks/results/soak)")
    p.add_argument("--health-s", type=float, default=2.0,
                   help="the daemon's health line period, wall seconds (2)")
    p.add_argument("--sample-s", type=float, default=1.0,
                   help="how often the parent samples RSS and fds, wall seconds (1)")
    p.add_argument("--seed", type=int, default=0, help="the synthetic recording's seed")
    p.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return child(json.loads(Path(args.child).read_text()))
    bundle = args.bundle
    if not bundle:
        from edge.bundle import demo_bundle_path

        bundle = str(demo_bundle_path())
        if not (Path(bundle) / "manifest.json").is_file():
            print("no demo bundle installed (make demo-bundle); pass --bundle DIR",
                  file=sys.stderr)
            return 2
    r = run_soak(hours=args.hours, devices=args.devices, bundle=bundle, out=args.out,
                 health_s=args.health_s, sample_s=args.sample_s, seed=args.seed)
    print(render_md(r))
    v = r["verdicts"]
    ok = v["memory_flat"] and v["no_fd_thread_task_leak"] and v["decisions_as_expected"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
