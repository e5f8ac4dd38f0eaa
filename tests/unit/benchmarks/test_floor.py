"""benchmarks.floor: the hardware floor's arithmetic, the Pi table, and the floor models on the hub runtimes."""

from __future__ import annotations

import math

import pytest

from benchmarks import floor
from tests.fakes.bench import floor_result


def test_floor_math_and_pi_table() -> None:
    assert floor.floor_ms(1e9, 1.0) == pytest.approx(1000.0)  # 1 GMAC at 1 GMAC/s = 1 s
    with pytest.raises(ValueError):
        floor.floor_ms(10, 0.0)
    macs = 2_000_000
    rows = floor.pi_estimates(macs)
    assert {(r["board"], r["precision"]) for r in rows} == {
        (c.board, p) for c in floor.PI_CORES for p in ("fp32", "int8")
    }
    for r in rows:
        core = next(c for c in floor.PI_CORES if c.board == r["board"])
        per_cycle = core.fp32_macs_per_cycle if r["precision"] == "fp32" else core.int8_macs_per_cycle
        expect = macs / (per_cycle * core.clock_ghz * 1e9) * 1e3
        assert r["floor_ms_1core"] == pytest.approx(expect)
        assert r["floor_ms_all"] == pytest.approx(expect / core.cores)


def test_peak_is_the_best_engine_per_precision_and_thread_count() -> None:
    results = [
        floor_result("onnx", "fp32", 1, 40.0),
        floor_result("tflite", "fp32", 1, 50.0),
        floor_result("onnx", "int8", 1, 200.0),
        floor_result("tflite", "fp32", 2, 90.0),
        floor_result("onnx", "fp32", 1, None, kind="noop"),
    ]
    peak = floor.peak_by_precision(results)
    assert peak["fp32"][1] == {"gmacs": 50.0, "engine": "tflite"}
    assert peak["fp32"][2]["gmacs"] == 90.0
    assert peak["int8"][1]["engine"] == "onnx"


@pytest.mark.parametrize("engine", ["onnx", "tflite"])
def test_floor_models_run_through_the_hub_runtimes(engine: str) -> None:
    models = [m for m in floor.load_floor_models() if m.engine == engine]
    assert {m.kind for m in models} == {"matmul", "noop"}
    assert {m.precision for m in models if m.kind == "matmul"} == {"fp32", "int8"}
    for m in models:
        r = floor.measure_floor_model(m, 1, min_seconds=0.0, min_runs=3, warmup_s=0.0)
        assert r.runs >= 3 and 0 < r.best_ms <= r.median_ms
        if m.kind == "matmul":
            assert r.gmacs_median is not None and math.isfinite(r.gmacs_median)
            assert r.gmacs_median == pytest.approx(m.macs / (r.median_ms * 1e-3) / 1e9)
        else:
            assert r.gmacs_median is None
