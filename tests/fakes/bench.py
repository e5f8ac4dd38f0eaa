"""Small, consistent pieces of an edge-bench document (bench.json) for the benchmark tests."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from benchmarks import capacity, floor, latency, report


def floor_result(engine: str, precision: str, threads: int, gmacs: float | None,
                 kind: str = "matmul", median_ms: float = 1.0) -> floor.FloorResult:
    """One floor-model measurement."""
    return floor.FloorResult(f"{kind}_{precision}_{engine}", engine, precision, kind, threads, 10,
                             median_ms, median_ms, gmacs, gmacs)


def latency_row(fmt: str, threads: int, p50: float, *, precision: str = "fp32",
                macs: int = 1_000_000, backend: str = "litert",
                acceptable: bool | None = True) -> dict[str, Any]:
    """One latency result as the document holds it."""
    r = latency.LatencyResult(fmt, threads, backend=backend, precision=precision, runs=10,
                              stats_ms={"min": p50 / 2, "p50": p50, "p90": p50 * 1.1,
                                        "p99": p50 * 2, "max": p50 * 3, "mean": p50, "std": 0.0},
                              quantiles_ms=list(np.linspace(p50 / 2, p50 * 3, 101)),
                              macs=macs, acceptable=acceptable, file_bytes=1000,
                              peak_rss_mb=50.0, load_ms=1.0, first_ms=0.5)
    return asdict(r)


def bench_doc(**extra: Any) -> dict[str, Any]:
    """A whole document: latency of five formats on 1-2 threads, the floor, ``extra`` sections."""
    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "label": "test-machine",
        "machine": {"cpu_model": "Test CPU", "arch": "x86_64", "logical_cpus": 2},
        "bundle": {"model_id": "m", "macs": 1_000_000},
        "settings": {"runs": 10, "warmup": 1},
        "latency": [
            latency_row("onnx_fp32", 1, 0.20, backend="onnxruntime"),
            latency_row("tflite_fp32", 1, 0.10),
            latency_row("tflite_int8", 1, 0.05, precision="int8", acceptable=False),
            latency_row("tflite_fp32", 2, 0.08),
            latency_row("torch_teachers", 1, 5.0, backend="torch", acceptable=None),
        ],
        "floor": {
            "matmul_shape": [256, 256, 256],
            "results": [asdict(floor_result("tflite", "fp32", 1, None, kind="noop",
                                            median_ms=0.001))],
            # 1e6 MACs at 20 GMAC/s = 0.05 ms floor (fp32, 1 thread)
            "peak": {"fp32": {"1": {"gmacs": 20.0, "engine": "tflite"},
                              "2": {"gmacs": 40.0, "engine": "tflite"}},
                     "int8": {"1": {"gmacs": 100.0, "engine": "onnx"}}},
        },
        "notes": [],
    }
    doc.update(extra)
    return doc


def level(n: int, p99: float, **kw: Any) -> dict[str, Any]:
    """A measured daemon level of ``n`` devices with its verdict."""
    lv = capacity.DaemonLevel(n, 0, measured_s=60, decisions=12 * n, expected=12 * n,
                              e2e_ms={"p50": p99 / 2, "p99": p99, "max": p99}, **kw)
    lv.why_not = capacity.level_sustained(lv)
    lv.sustained = not lv.why_not
    return asdict(lv)
