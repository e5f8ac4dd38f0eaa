"""Inside the running daemon: window-complete -> decision latency, CPU per decision, capacity.

One measurement (:func:`run_daemon_level`) runs the real daemon (``edge.daemon.open_daemon``:
the bundle, the ``auto`` engine, the simulator, the SQLite sink) with ``N`` simulated
wearables at real-time rate (speed 1), in a **fresh subprocess pinned to one CPU**
(``sched_setaffinity``, what ``taskset -c`` does). The simulator runs in **its own process
on the other CPUs** (``sim.process``): it writes the wearables' frames into a pipe and the
daemon decodes them, as it would a serial port's or a radio adapter's, so the daemon's CPU is
the daemon's alone (``sim_process=False``: in-process, on the daemon's core, an upper
bound). It reads the daemon's own timing through its public hooks
(:meth:`~edge.daemon.Daemon.observe` gives every decision with its
:class:`~edge.daemon.DecisionTiming`, :meth:`~edge.daemon.Daemon.observe_items` every packet
as it is read):

- window complete: the simulator's scheduled hub time of the packet that completed a window
  (``ReadyWindow.completed_at``, its ``SourceItem.received_at``: the real monotonic clock at
  speed 1). From then on, everything counts: the simulator's delay, the pipe, the source
  queue, the shared preprocessing that cuts the window, the inference queue and engine,
  delivery back to the event loop and the decision logic
  (``DecisionTiming.window_to_decision_ms``, the daemon's ``window_to_decision_p99_ms``).
- decided: when the daemon has handed the decision to its sinks. SQLite commits are
  batched by design (``sinks.commit_interval_s``, kind to an SD card); that batching is
  reported beside the figure, not hidden in it.
- ``lag``: how late the daemon reads each packet against its schedule. The ``sim`` source is
  not live (it waits for a busy daemon instead of dropping), so an overloaded hub shows up
  as growing lag rather than as drops.
- CPU per decision: the process's CPU time over the measured span per decision made in it,
  split into transport / preprocessing / inference / decisions / sinks (:class:`_CpuMeter`).

A level is **sustained** when nothing is dropped or lost, every expected decision is made,
p99 window-complete -> decision is at most :data:`TARGET_P99_MS` and no decision is later
than one hop. :func:`search_capacity` finds the ceiling: levels grow until one fails, then
it bisects; peak RSS over the levels gives what each wearable adds.

Enrollment is not part of the measurement: every simulated resident gets a stored baseline
(computed from the recording it will play, exactly as enrollment would) before the run, so
decisions start one window after the start instead of after the calibration period.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "DEFAULT_LEVELS",
    "TARGET_P99_MS",
    "CapacityResult",
    "DaemonLevel",
    "DaemonLevelSpec",
    "level_sustained",
    "run_daemon_level",
    "run_level_in_subprocess",
    "search_capacity",
]

# the p99 window-complete -> decision a hub must hold at a level: small against the hop, so
# a loaded hub still decides each window long before the next one is cut
TARGET_P99_MS: Final = 50.0
# wearables tried first, upwards; past the last, the count doubles until a level fails, and
# then the search bisects between the largest sustained and the smallest failed level
DEFAULT_LEVELS: Final = (100, 250, 500, 1000)
# the bisection stops when the failed level is within this fraction of the sustained one (or
# MIN_STEP wearables): the ceiling to about a tenth, at a few minutes per level
DEFAULT_RESOLUTION: Final = 0.1
MIN_STEP: Final = 10
MAX_LEVEL: Final = 10_000  # edge.sources.options.SIM_DEVICES_LIMIT
# CPU per decision is split into these stages (see _CpuMeter)
CPU_STAGES: Final = ("transport", "preprocessing", "inference", "decisions", "sinks", "other")
# After the first window (window_s + the preprocessing margin), wait this long before
# measuring: every device has cut a first window and the engine/sinks are warm.
SETTLE_S: Final = 10.0
DEFAULT_MEASURE_S: Final = 60.0  # 12 windows per device at a 5 s hop; 2400 decisions at N=200
# Allowance for the windows at the edges of the measured span: one per device either side.
EDGE_WINDOWS_PER_DEVICE: Final = 2
# the simulator's process may take this long to send its first frames (building many
# wearables on a busy machine); the daemon stops itself at the end of the measured span
START_ALLOWANCE_S: Final = 300.0
LEVEL_TIMEOUT_SLACK_S: Final = 180.0  # a child gets its run time plus this, then is killed


@dataclass
class DaemonLevelSpec:
    """One daemon run (what a child does)."""

    bundle: str
    devices: int
    measure_s: float = DEFAULT_MEASURE_S
    settle_s: float = SETTLE_S  # wait after the first window before measuring
    cpu: int | None = 0  # pin to this CPU; None: leave the affinity alone
    backend: str = "auto"
    precision: str = "auto"
    threads: int = 1
    sqlite: bool = True  # the real decisions database (a temp file), as on a hub
    # the daemon's sim.stagger: wearable i starts at i/N of a hop, as real wearables switched
    # on at random times do; off, all N windows are cut in the same few milliseconds and the
    # last waits for the other N-1 (a burst no hub sees)
    stagger: bool = True
    seed: int = 0
    # the simulator in a child process on the other CPUs (sim.process), so the hub's CPU
    # time is the hub's alone; False: in-process, on the hub's core (an upper bound)
    sim_process: bool = True


@dataclass
class DaemonLevel:
    """What one daemon run measured."""

    devices: int
    cpu: int | None
    measured_s: float = 0.0
    decisions: int = 0  # decisions whose window completed inside the measured span
    expected: int = 0  # devices x measured span / hop
    e2e_ms: dict[str, float] = field(default_factory=dict)  # window-complete -> decided
    preprocess_ms: dict[str, float] = field(default_factory=dict)  # handling the packet that cut it
    source_wait_ms: dict[str, float] = field(default_factory=dict)  # completing packet: read - scheduled
    worker_ms: dict[str, float] = field(default_factory=dict)  # daemon's own: queue + engine
    delivery_ms: dict[str, float] = field(default_factory=dict)  # rest: back to the loop + decision
    lag_ms: dict[str, float] = field(default_factory=dict)  # packet read vs its schedule
    late: int = 0  # decisions later than one hop after their window completed
    drops: dict[str, int] = field(default_factory=dict)  # every non-zero drop counter
    cpu_s: float = 0.0
    cpu_share: float = 0.0  # of one core, over the measured span
    cpu_share_per_device: float = 0.0
    peak_rss_mb: float | None = None
    # the daemon process's CPU per decision decided in the measured span, ms, and its split
    # into CPU_STAGES (+ "decode", the part of transport spent decoding frames); the
    # simulator runs in another process (sim_process) or is part of "transport"
    cpu_ms_per_decision: float | None = None
    cpu_split_ms: dict[str, float] = field(default_factory=dict)
    sim_process: bool = True
    engine: str = ""
    hop_s: float = 0.0
    window_s: float = 0.0
    commit_interval_s: float | None = None
    sustained: bool = False
    why_not: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class CapacityResult:
    """The search: every level tried (by number of wearables) and the largest sustained."""

    levels: list[DaemonLevel]
    max_sustained: int | None
    first_failed: int | None  # the smallest level that failed
    target_p99_ms: float = TARGET_P99_MS
    tried: list[int] = field(default_factory=list)  # in the order they ran
    resolution: float = DEFAULT_RESOLUTION
    # peak RSS against wearables, least squares over the levels: what each one adds, and
    # the daemon without any
    rss_mb_per_wearable: float | None = None
    rss_base_mb: float | None = None


def _pct(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": float(a.size), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": float(a.max()), "mean": float(a.mean())}


def level_sustained(level: DaemonLevel, target_p99_ms: float = TARGET_P99_MS) -> list[str]:
    """Why ``level`` is not sustained (empty list: it is). Pure; tested."""
    why = []
    if level.error:
        return [f"error: {level.error}"]
    dropped = {k: v for k, v in level.drops.items() if v}
    if dropped:
        why.append(f"dropped/lost: {dropped}")
    if level.decisions < level.expected - EDGE_WINDOWS_PER_DEVICE * level.devices:
        why.append(f"only {level.decisions} of ~{level.expected} expected decisions")
    p99 = level.e2e_ms.get("p99")
    if p99 is None or not math.isfinite(p99):
        why.append("no decisions measured")
    elif p99 > target_p99_ms:
        why.append(f"p99 window->decision {p99:.1f} ms > {target_p99_ms:.0f} ms")
    if level.late:
        why.append(f"{level.late} decisions later than one hop")
    return why


# -- the child: one instrumented daemon run --------------------------------------------------
def _seed_baselines(cfg: Any, contract: Any, recording: Any, residents: Sequence[str]) -> None:
    """Store the baseline enrollment would compute, for every simulated resident."""
    from core.signal import compute_calibration
    from edge.calibration_store import CalibrationStore

    names = [m.name for m in contract.modalities]
    cal = compute_calibration(recording.streams(names), contract, source="edge-bench seeded")
    store = CalibrationStore(cfg.calibration_path)
    for r in residents:
        store.save(r, cal, contract)


class _CpuMeter:
    """Where the daemon process's CPU goes, by stage (:data:`CPU_STAGES`).

    Threads by name: the event loop's (the main thread: transport, preprocessing,
    decisions), ``inference`` (the engine) and ``sink-*`` (the sinks' writers); the loop's
    time is split by wrapping the entry points of preprocessing (``DeviceIngest.handle``,
    ``Daemon._dispatch``: ingest, the shared preprocessing, packing) and of the decisions
    (``Daemon._on_result``: decision logic, handing records to the sinks, alert rules) with a
    thread-CPU clock; the rest of the loop's time (reading the source, decoding frames, the
    hand-off queue, the loop itself, the wearable status) is transport; ``decode`` reports
    ``FrameDecoder.feed`` inside it. ``other``: the process's remaining CPU (helper threads,
    the runtime's own). The wrappers cost two clock reads per call (a few % of the loop).
    """

    def __init__(self) -> None:
        self.acc: dict[str, float] = {"preprocessing": 0.0, "decisions": 0.0, "decode": 0.0}
        self.marks: list[dict[str, float]] = []

    def install(self) -> None:
        from edge.daemon import Daemon
        from edge.ingest import DeviceIngest
        from firmware_bridge.framing import FrameDecoder

        for cls, name, stage in ((DeviceIngest, "handle", "preprocessing"),
                                 (Daemon, "_dispatch", "preprocessing"),
                                 (Daemon, "_on_result", "decisions"),
                                 (FrameDecoder, "feed", "decode")):
            setattr(cls, name, self._timed(getattr(cls, name), stage))

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        acc = self.acc
        clock = time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[stage] += clock() - t0

        return timed

    def mark(self) -> None:
        """Every counter now (call from the loop's thread)."""
        import threading

        m = dict(self.acc)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        m["process"] = ru.ru_utime + ru.ru_stime
        m["wall"] = time.monotonic()
        for th in threading.enumerate():
            if th.ident is None or not hasattr(time, "pthread_getcpuclockid"):
                continue
            try:
                cpu = time.clock_gettime(time.pthread_getcpuclockid(th.ident))
            except (OSError, ValueError):  # ended meanwhile
                continue
            if th is threading.main_thread():
                key = "thread:loop"
            elif th.name == "inference":
                key = "thread:inference"
            elif th.name.startswith("sink"):
                key = f"thread:sink:{th.name}"
            else:
                key = f"thread:other:{th.name}"
            m[key] = cpu
        self.marks.append(m)

    def split(self) -> dict[str, float]:
        """CPU seconds per stage between the first and the last mark."""
        a, b = self.marks[0], self.marks[-1]

        def delta(key: str) -> float:
            return b.get(key, 0.0) - a.get(key, 0.0)

        def threads(prefix: str) -> float:
            return sum(delta(k) for k in b if k.startswith(prefix))

        loop = delta("thread:loop")
        pre, dec = delta("preprocessing"), delta("decisions")
        out = {"transport": max(0.0, loop - pre - dec), "preprocessing": pre,
               "inference": threads("thread:inference"), "decisions": dec,
               "sinks": threads("thread:sink:")}
        out["other"] = max(0.0, delta("process") - sum(out.values()))
        out["decode"] = delta("decode")
        return out


def run_daemon_level(spec: DaemonLevelSpec) -> DaemonLevel:
    """Run the daemon with ``spec.devices`` simulated wearables and measure it (in-process;
    call from a fresh process pinned to one CPU, see :func:`run_level_in_subprocess`)."""
    import asyncio
    import logging

    others: list[int] = []  # the simulator's CPUs: every one but the hub's
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        others = sorted(os.sched_getaffinity(0) - {spec.cpu})
        os.sched_setaffinity(0, {spec.cpu})  # before any runtime starts its threads
    logging.basicConfig(level=logging.WARNING)  # a hub logs state changes; not 200 of them here

    from edge.bundle import load_bundle
    from edge.config import DaemonConfig
    from edge.daemon import DecisionTiming, open_daemon
    from edge.sources.sim import load_sim_recording

    level = DaemonLevel(spec.devices, spec.cpu, sim_process=spec.sim_process)
    meter = _CpuMeter()
    meter.install()
    bundle = load_bundle(spec.bundle)
    contract = bundle.contract
    level.hop_s, level.window_s = contract.hop_s, contract.window_s
    start_measure = contract.window_s + 2 * contract.hop_s + spec.settle_s
    # the measured span starts start_measure after the first packet (the simulator's process
    # takes a while to build many wearables); the daemon is stopped at its end
    duration = start_measure + spec.measure_s + START_ALLOWANCE_S

    with tempfile.TemporaryDirectory(prefix="edge-bench-daemon-") as tmp:
        cfg = DaemonConfig(device="sim", bundle=spec.bundle, backend=spec.backend,
                           precision=spec.precision, threads=spec.threads, state_dir=tmp,
                           duration=duration, speed=1.0, log_level="warning")
        cfg.sinks.sqlite = spec.sqlite
        cfg.sinks.log_decisions = False
        cfg.health.status_line = "off"
        cfg.health.interval_s = 3600.0
        cfg.sim.seed = spec.seed
        cfg.sim.devices = spec.devices
        cfg.sim.max_devices = max(cfg.sim.max_devices, spec.devices)  # past the hub-sized cap
        cfg.sim.stagger = spec.stagger
        cfg.sim.process = spec.sim_process
        cfg.sim.process_cpus = others
        cfg.validate()
        level.commit_interval_s = cfg.sinks.commit_interval_s if spec.sqlite else None
        recording = load_sim_recording(cfg.sim.recording, Path(spec.bundle))
        _seed_baselines(cfg, contract, recording, [f"sim-{i}" for i in range(spec.devices)])

        daemon = open_daemon(cfg)
        level.engine = daemon.engine_name
        e2e: list[float] = []
        pre: list[float] = []
        worker: list[float] = []
        lags: list[float] = []
        waits: list[float] = []
        deliveries: list[float] = []
        span = {"lo": math.inf, "hi": -math.inf}  # set by the first packet
        first_item = asyncio.Event()
        hop_s = contract.hop_s
        late = 0
        decided_at: list[float] = []

        def on_item(item: Any, read_at: float) -> None:
            if not first_item.is_set():
                span["lo"] = read_at + start_measure
                span["hi"] = span["lo"] + spec.measure_s
                first_item.set()
            if span["lo"] <= read_at <= span["hi"]:
                lags.append((read_at - item.received_at) * 1e3)

        def on_decision(decision: Any, tm: DecisionTiming) -> None:
            nonlocal late
            decided_at.append(tm.decided_at)
            if not span["lo"] <= tm.completed_at <= span["hi"]:
                return
            e2e.append(tm.window_to_decision_ms)
            waits.append(tm.source_wait_ms)
            pre.append(tm.preprocess_ms)
            worker.append(tm.worker_ms)
            deliveries.append(tm.delivery_ms)
            late += tm.window_to_decision_ms > hop_s * 1e3

        daemon.observe_items(on_item)
        daemon.observe(on_decision)

        cpu_marks: dict[str, float] = {}

        async def mark_cpu() -> None:
            await first_item.wait()
            await asyncio.sleep(max(0.0, span["lo"] - time.monotonic()))
            meter.mark()
            cpu_marks["t0"], cpu_marks["c0"] = meter.marks[-1]["wall"], meter.marks[-1]["process"]
            await asyncio.sleep(max(0.0, span["hi"] - time.monotonic()))
            meter.mark()
            cpu_marks["t1"], cpu_marks["c1"] = meter.marks[-1]["wall"], meter.marks[-1]["process"]
            daemon.request_stop("measured")

        async def main() -> dict[str, Any]:
            marker = asyncio.create_task(mark_cpu())
            try:
                return await daemon.run()
            finally:
                if not marker.done():
                    marker.cancel()

        summary = asyncio.run(main())

    level.measured_s = spec.measure_s
    level.decisions = len(e2e)
    level.expected = int(spec.devices * spec.measure_s / hop_s)
    level.e2e_ms, level.preprocess_ms = _pct(e2e), _pct(pre)
    level.worker_ms, level.lag_ms = _pct(worker), _pct(lags)
    level.source_wait_ms, level.delivery_ms = _pct(waits), _pct(deliveries)
    level.late = late
    level.drops = {k: int(v) for k, v in summary.get("drops", {}).items() if v}
    if "c1" in cpu_marks:
        level.cpu_s = cpu_marks["c1"] - cpu_marks["c0"]
        wall = cpu_marks["t1"] - cpu_marks["t0"]
        level.cpu_share = level.cpu_s / wall if wall > 0 else math.nan
        level.cpu_share_per_device = level.cpu_share / spec.devices
        n_dec = sum(cpu_marks["t0"] <= t <= cpu_marks["t1"] for t in decided_at)
        if n_dec:
            level.cpu_ms_per_decision = level.cpu_s * 1e3 / n_dec
            level.cpu_split_ms = {k: v * 1e3 / n_dec for k, v in meter.split().items()}
    level.peak_rss_mb = summary.get("peak_rss_mb")
    level.why_not = level_sustained(level)
    level.sustained = not level.why_not
    return level


def _child_main(argv: Sequence[str]) -> int:
    spec = DaemonLevelSpec(**json.loads(argv[0]))
    try:
        level = run_daemon_level(spec)
    except Exception as e:  # noqa: BLE001  (process boundary: any failure becomes data)
        level = DaemonLevel(spec.devices, spec.cpu, error=f"{type(e).__name__}: {e}")
        level.why_not = level_sustained(level)
    sys.stdout.write("\n" + json.dumps(asdict(level)) + "\n")
    sys.stdout.flush()
    return 0


# -- the parent: levels in subprocesses, and the search ------------------------------------
def run_level_in_subprocess(spec: DaemonLevelSpec, *, python: str | None = None) -> DaemonLevel:
    """One level in a fresh interpreter (honest RSS and CPU time, one CPU)."""
    cmd = [python or sys.executable, "-m", "benchmarks.capacity", json.dumps(asdict(spec))]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    repo_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo_root + os.pathsep + env.get("PYTHONPATH", "")
    # window + settle + measure, plus time to start, seed baselines and drain
    timeout = 600.0 + spec.measure_s + LEVEL_TIMEOUT_SLACK_S
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        level = DaemonLevel(spec.devices, spec.cpu, error=f"timed out after {timeout:.0f} s")
        level.why_not = level_sustained(level)
        return level
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        level = DaemonLevel(spec.devices, spec.cpu,
                            error=f"child exited {proc.returncode}: {' | '.join(tail)}")
        level.why_not = level_sustained(level)
        return level
    return DaemonLevel(**json.loads(lines[-1]))


def search_capacity(
    base: DaemonLevelSpec,
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    progress: Callable[[str], None] | None = None,
    runner: Callable[[DaemonLevelSpec], DaemonLevel] = run_level_in_subprocess,
    resolution: float = DEFAULT_RESOLUTION,
    max_level: int = MAX_LEVEL,
) -> CapacityResult:
    """Find the ceiling: ``levels`` upwards, then doubling, until a level fails; then bisect
    between the largest sustained and the smallest failed level until they are within
    ``resolution`` of each other (or :data:`MIN_STEP`). Each level in a fresh process."""
    from dataclasses import replace

    done: dict[int, DaemonLevel] = {}
    tried: list[int] = []

    def run(n: int) -> bool:
        if progress is not None:
            progress(f"capacity: {n} wearables")
        level = runner(replace(base, devices=n))
        done[n] = level
        tried.append(n)
        return level.sustained

    best: int | None = None
    failed: int | None = None
    ladder = sorted(set(levels))
    n = ladder[0]
    while True:  # grow
        if run(n):
            best = n
            if n >= max_level:
                break
            bigger = [v for v in ladder if v > n]
            n = min(bigger[0] if bigger else 2 * n, max_level)
        else:
            failed = n
            break
    while failed is not None:  # bisect
        lo = best or 0
        if failed - lo <= max(MIN_STEP, resolution * lo):
            break
        mid = (lo + failed) // 2
        mid -= mid % MIN_STEP if mid > MIN_STEP else 0
        if mid <= lo or mid in done:
            break
        if run(mid):
            best = mid
        else:
            failed = mid
    ordered = [done[k] for k in sorted(done)]
    per, base_mb = rss_slope(ordered)
    return CapacityResult(ordered, best, failed, tried=tried, resolution=resolution,
                          rss_mb_per_wearable=per, rss_base_mb=base_mb)


def rss_slope(levels: Sequence[DaemonLevel]) -> tuple[float | None, float | None]:
    """(MB per wearable, MB at none): a least-squares line through the levels' peak RSS."""
    pts = [(lv.devices, lv.peak_rss_mb) for lv in levels
           if lv.peak_rss_mb is not None and not lv.error]
    if len({d for d, _ in pts}) < 2:
        return None, None
    x = np.asarray([d for d, _ in pts], dtype=np.float64)
    y = np.asarray([r for _, r in pts], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
