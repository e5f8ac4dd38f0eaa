"""Per-window latency of every format of a bundle (and of the PyTorch models it came from).

Each (format, thread count) is measured in a **fresh subprocess** (``python -m
benchmarks.latency SPEC_JSON``), so its peak resident memory is its own and not the sum of
everything loaded before it, and so one runtime's thread pool cannot slow the next one's.
The child reports one JSON object on its last stdout line.

What one measurement does, in the conventions of ``onnxruntime_perf_test`` and TFLite's
``benchmark_model``: import the runtime (timed), load the model (timed: the "init" time),
run the first inference (timed on its own: XNNPACK packs weights, ORT allocates its arena),
warm up, then time ``runs`` single-window calls of the same ``engine.run`` the daemon calls
(the hub's quantize/dequantize of int8 I/O included) and report min / p50 / p90 / p99 / max.

Formats:
- ``onnx_fp32`` / ``onnx_int8`` / ``tflite_fp32`` / ``tflite_int8``: the bundle's files through
  :func:`edge.engines.open_file` (TFLite with XNNPACK, LiteRT's default delegate).
- ``torch_student``: the student rebuilt from ``RUN/student.pt``, eager fp32.
- ``torch_teachers``: every ``RUN/teachers/*.pt`` rebuilt, run one after another on the same
  window (the ensemble the student was distilled from), eager fp32.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.runs import RunLayout

__all__ = [
    "BUNDLE_FORMATS",
    "QUANTILES",
    "TORCH_FORMATS",
    "LatencyResult",
    "LatencySpec",
    "PreprocessResult",
    "latency_stats",
    "measure_in_subprocess",
    "measure_preprocess",
    "measure_spec",
    "speedup",
]

BUNDLE_FORMATS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")
TORCH_FORMATS: Final = ("torch_student", "torch_teachers")
DEFAULT_RUNS: Final = 500  # enough that p99 is the 5th-worst call, not the single worst
DEFAULT_WARMUP: Final = 50  # past XNNPACK packing, ORT arena growth and CPU frequency ramp-up
# The quantile curve kept in bench.json for the CDF plot: every percent, not every sample.
QUANTILES: Final = tuple(range(101))
# A child that has not answered in this long is stuck (a run is ~1 s here, ~1 min on a Pi 4
# for the teacher ensemble); it is killed and reported as failed, the benchmark goes on.
CHILD_TIMEOUT_S: Final = 900.0
SEED: Final = 0  # the benchmark windows: random normalized inputs, fixed for reproducibility


@dataclass
class LatencySpec:
    """What one child measures."""

    format: str  # one of BUNDLE_FORMATS or TORCH_FORMATS
    threads: int
    bundle: str | None = None
    run: str | None = None  # RUN directory, for the torch formats
    runs: int = DEFAULT_RUNS
    warmup: int = DEFAULT_WARMUP


@dataclass
class LatencyResult:
    """One (format, threads) measurement; ``error`` set (and figures empty) if it failed."""

    format: str
    threads: int
    backend: str = ""  # "onnxruntime" | "litert" | "torch"
    precision: str = ""
    runs: int = 0
    stats_ms: dict[str, float] = field(default_factory=dict)  # min/p50/p90/p99/max/mean/std
    quantiles_ms: list[float] = field(default_factory=list)  # at QUANTILES
    import_ms: float | None = None  # importing the runtime
    load_ms: float | None = None  # model load / session creation ("init")
    first_ms: float | None = None  # the first inference alone
    rss_before_load_mb: float | None = None  # interpreter + runtime imported, no model
    peak_rss_mb: float | None = None  # the whole process at its peak (what a hub pays)
    file_bytes: int | None = None
    macs: int | None = None
    params: int | None = None
    acceptable: bool | None = None  # the exporter's accuracy verdict for this file
    models: int = 1  # >1 for the teacher ensemble
    error: str | None = None


def latency_stats(times_s: Sequence[float]) -> tuple[dict[str, float], list[float]]:
    """Seconds -> ({min, p50, p90, p99, max, mean, std} in ms, quantile curve in ms)."""
    a = np.asarray(times_s, dtype=np.float64) * 1e3
    if a.size == 0:
        raise ValueError("no timings")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    stats = {
        "min": float(a.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std()),
    }
    return stats, [float(v) for v in np.percentile(a, QUANTILES)]


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


# -- the child side -------------------------------------------------------------------------
def _bundle_runner(spec: LatencySpec, result: LatencyResult) -> tuple[Callable[[np.ndarray], Any], int]:
    from edge.bundle import load_bundle

    assert spec.bundle is not None
    bundle = load_bundle(spec.bundle)
    entry = bundle.entry(spec.format)
    result.backend = "onnxruntime" if entry.format == "onnx" else "litert"
    result.precision = entry.precision
    result.file_bytes = entry.size
    result.acceptable = entry.acceptable
    macs = bundle.manifest.get("macs")
    result.macs = int(macs) if isinstance(macs, int | float) else None
    params = bundle.manifest.get("params")
    result.params = int(params) if isinstance(params, int | float) else None

    t0 = time.perf_counter()
    if entry.format == "onnx":
        import onnxruntime  # noqa: F401  (timed apart from the session)
    else:
        from edge.engines.tflite import load_interpreter_class

        load_interpreter_class()
    result.import_ms = (time.perf_counter() - t0) * 1e3
    result.rss_before_load_mb = _rss_mb()

    from edge.engines import open_file

    t0 = time.perf_counter()
    engine = open_file(bundle, spec.format, threads=spec.threads)
    result.load_ms = (time.perf_counter() - t0) * 1e3
    return engine.run, bundle.contract.input_length


def _torch_runner(spec: LatencySpec, result: LatencyResult) -> tuple[Callable[[np.ndarray], Any], int]:
    assert spec.run is not None
    layout = RunLayout(Path(spec.run))
    t0 = time.perf_counter()
    import torch

    result.import_ms = (time.perf_counter() - t0) * 1e3
    torch.set_num_threads(spec.threads)
    torch.set_num_interop_threads(1)  # one window at a time: no inter-op parallelism to use
    result.rss_before_load_mb = _rss_mb()
    result.backend = "torch"
    result.precision = "fp32"

    from train.macs import count_macs, count_params

    t0 = time.perf_counter()
    if spec.format == "torch_student":
        from export.run import build_student

        paths = [layout.student_checkpoint]
        ckpts = [torch.load(paths[0], map_location="cpu", weights_only=True)]
        models = [build_student(ckpts[0])]
    else:
        from train.teachers import build_teacher

        paths = layout.teacher_checkpoints()
        if not paths:
            raise FileNotFoundError(f"no teacher checkpoints in {layout.teachers_dir}")
        ckpts = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
        models = []
        for ck in ckpts:
            m = build_teacher(ck["model_args"])
            m.load_state_dict(ck["state_dict"])
            models.append(m.eval())
    result.load_ms = (time.perf_counter() - t0) * 1e3
    # each model reads its own contract's packed vector (teachers may see chest signals too)
    lengths = [int(ck["model_args"].get("input_length") or
                   ck["contract"].get("input_length")) for ck in ckpts]
    result.models = len(models)
    result.file_bytes = sum(p.stat().st_size for p in paths)
    result.macs = sum(count_macs(m, n) for m, n in zip(models, lengths, strict=True))
    result.params = sum(count_params(m) for m in models)
    widest = max(lengths)

    def forward(x: np.ndarray) -> Any:
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            return [m(xt[:, :n]) for m, n in zip(models, lengths, strict=True)]

    return forward, widest


def measure_spec(spec: LatencySpec) -> LatencyResult:
    """Run one measurement in this process (the child's job; see the module docstring)."""
    result = LatencyResult(spec.format, spec.threads)
    if spec.format in BUNDLE_FORMATS:
        run, length = _bundle_runner(spec, result)
    elif spec.format in TORCH_FORMATS:
        run, length = _torch_runner(spec, result)
    else:
        raise ValueError(f"unknown format {spec.format!r}")
    rng = np.random.default_rng(SEED)
    # normalized-space windows (what the engine sees after preprocessing): N(0, 1), clipped
    xs = np.clip(rng.standard_normal((16, 1, length)), -10, 10).astype(np.float32)  # 16 x (1, L)

    t0 = time.perf_counter()
    run(xs[0])
    result.first_ms = (time.perf_counter() - t0) * 1e3
    for i in range(spec.warmup):
        run(xs[i % len(xs)])
    times = []
    for i in range(spec.runs):
        x = xs[i % len(xs)]
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    result.runs = len(times)
    result.stats_ms, result.quantiles_ms = latency_stats(times)
    result.peak_rss_mb = _peak_rss_mb()
    return result


def _child_main(argv: Sequence[str]) -> int:
    spec = LatencySpec(**json.loads(argv[0]))
    try:
        result = measure_spec(spec)
    except Exception as e:  # noqa: BLE001  (process boundary: any failure becomes data)
        result = LatencyResult(spec.format, spec.threads, error=f"{type(e).__name__}: {e}")
    sys.stdout.write("\n" + json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()
    return 0


# -- the parent side ------------------------------------------------------------------------
def measure_in_subprocess(
    spec: LatencySpec, *, python: str | None = None, timeout_s: float = CHILD_TIMEOUT_S
) -> LatencyResult:
    """Measure ``spec`` in a fresh interpreter; failures come back as ``result.error``."""
    cmd = [python or sys.executable, "-m", "benchmarks.latency", json.dumps(asdict(spec))]
    env = dict(os.environ)
    # torch and ORT read these at import; leave thread counts to the spec, not the caller's env
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's "created XNNPACK delegate" lines
    repo_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo_root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return LatencyResult(spec.format, spec.threads, error=f"timed out after {timeout_s:.0f} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return LatencyResult(
            spec.format, spec.threads,
            error=f"child exited {proc.returncode} without a result: {' | '.join(tail)}",
        )
    data = json.loads(lines[-1])
    return LatencyResult(**data)


@dataclass
class PreprocessResult:
    """The shared preprocessing (``core.signal.WindowAssembler``) per window."""

    windows: int
    packet_s: float
    cut_ms: dict[str, float]  # pop_ready() per window: cut, resample, validate, normalize
    push_ms_per_window: float  # the packets' push() calls, amortized over the windows
    total_ms_per_window: float  # everything the assembler spent, per window
    source: str  # which recording fed it
    invalid: int  # windows the assembler marked invalid (a sanity figure: should be ~0)


def measure_preprocess(
    bundle_path: str | Path, *, windows: int = 200, packet_s: float = 0.25
) -> PreprocessResult:
    """Feed the simulator's synthetic wrist recording (native E4 rates: the hub's real input)
    to a calibrated ``WindowAssembler`` in ``packet_s`` packets per modality, as the daemon
    does, and time it. Modalities the recording lacks are synthesized at the contract rate.

    As the daemon's ingest does (:mod:`edge.packet_hold`), packets are held until they can
    complete the next window and then pushed as one chunk per modality."""
    from core.signal import WindowAssembler, compute_calibration
    from edge.bundle import load_bundle

    contract = load_bundle(bundle_path).contract
    norm_s = contract.normalization.calibration_s if contract.normalization.needs_calibration else 0.0
    span = norm_s + contract.window_s + windows * contract.hop_s + 2 * contract.window_s
    streams, source = _preprocess_streams(contract, span)
    calibration = None
    if contract.normalization.needs_calibration:
        calibration = compute_calibration(streams, contract, source="edge-bench")
    asm = WindowAssembler(contract, origin=0.0, calibration=calibration)
    # packets in time order across modalities, like a wearable's interleaved notifications
    packets: list[tuple[float, str, np.ndarray, np.ndarray]] = []
    for name, (t, x) in streams.items():
        edges = np.arange(0.0, span + packet_s, packet_s)
        idx = np.searchsorted(t, edges)
        for a, b in itertools.pairwise(idx):
            if b > a:
                packets.append((float(t[b - 1]), name, t[a:b], x[a:b]))
    packets.sort(key=lambda p: p[0])
    cut: list[float] = []
    push_s = 0.0
    n_windows = invalid = 0
    held: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    last = dict.fromkeys(streams, -np.inf)  # latest second held or pushed, per modality
    for _, name, t, x in packets:
        held.setdefault(name, []).append((t, x))
        last[name] = float(t[-1])
        end = asm.origin + asm.next_index * contract.hop_s + contract.window_s - 1e-6
        if any(last[m.name] - asm.margin_s(m.name) < end for m in contract.modalities):
            continue
        t0 = time.perf_counter()
        for m, chunks in held.items():
            if len(chunks) == 1:
                asm.push(m, *chunks[0])
            else:
                asm.push(m, np.concatenate([c[0] for c in chunks]),
                         np.concatenate([c[1] for c in chunks]))
        held = {}
        t1 = time.perf_counter()
        out = asm.pop_ready()
        t2 = time.perf_counter()
        push_s += t1 - t0
        if out:
            cut.extend([(t2 - t1) / len(out)] * len(out))
            n_windows += len(out)
            invalid += sum(not w.valid for w in out)
        if n_windows >= windows:
            break
    if not cut:
        raise RuntimeError("the assembler produced no window (contract longer than the data?)")
    stats, _ = latency_stats(cut)
    push_ms = push_s * 1e3 / n_windows
    return PreprocessResult(
        windows=n_windows,
        packet_s=packet_s,
        cut_ms=stats,
        push_ms_per_window=push_ms,
        total_ms_per_window=stats["mean"] + push_ms,
        source=source,
        invalid=invalid,
    )


def _preprocess_streams(contract: Any, span_s: float) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    rng = np.random.default_rng(SEED)
    streams: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    source = "synthetic sines at contract rates"
    try:
        from firmware_bridge.sim.synthetic import synthetic_recording

        rec = synthetic_recording(span_s, seed=SEED)
        have = [m.name for m in contract.modalities if m.name in rec.signals]
        streams.update(rec.streams(have))
        source = "firmware_bridge.sim synthetic wrist recording (E4 rates)"
    except ImportError:
        pass
    for m in contract.modalities:
        if m.name in streams:
            continue
        n = round(span_s * m.rate_hz)
        t = np.arange(n) / m.rate_hz
        lo, hi = m.valid_range
        centre = 0.0 if not (math.isfinite(lo) and math.isfinite(hi)) else (lo + hi) / 2
        x = centre + np.sin(2 * np.pi * 0.3 * t)[:, None] + 0.1 * rng.standard_normal((n, m.n_channels))
        streams[m.name] = (t, x.astype(np.float32))
    return streams, source


def speedup(slow_ms: float | None, fast_ms: float | None) -> float | None:
    """``slow / fast`` or None when either is missing."""
    if slow_ms is None or fast_ms is None or fast_ms <= 0 or not math.isfinite(slow_ms):
        return None
    return slow_ms / fast_ms


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
