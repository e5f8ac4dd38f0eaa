"""Smoke tests of edge-bench's code paths with tiny run counts: the JSON schema, the floor
math, the report writer, and one real pass through each measurement on a small bundle.

No timing assertions: speed goals live in benchmarks/results/ (see benchmarks/README.md).
Figures measured here are only checked for being present, finite and consistent.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import capacity, floor, latency, machine, report

# -- pure figures --------------------------------------------------------------------------


def test_latency_stats_are_the_percentiles_of_the_samples() -> None:
    times = np.arange(1, 101) * 1e-3  # 1..100 ms in seconds
    stats, curve = latency.latency_stats(times)
    assert stats["min"] == pytest.approx(1.0)
    assert stats["max"] == pytest.approx(100.0)
    assert stats["p50"] == pytest.approx(np.percentile(np.arange(1, 101), 50))
    assert stats["p99"] == pytest.approx(np.percentile(np.arange(1, 101), 99))
    assert len(curve) == len(latency.QUANTILES)
    assert curve == sorted(curve)
    with pytest.raises(ValueError):
        latency.latency_stats([])


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


def _floor_result(engine: str, precision: str, threads: int, gmacs: float | None,
                  kind: str = "matmul", median_ms: float = 1.0) -> floor.FloorResult:
    return floor.FloorResult(f"{kind}_{precision}_{engine}", engine, precision, kind, threads, 10,
                             median_ms, median_ms, gmacs, gmacs)


def test_peak_is_the_best_engine_per_precision_and_thread_count() -> None:
    results = [
        _floor_result("onnx", "fp32", 1, 40.0),
        _floor_result("tflite", "fp32", 1, 50.0),
        _floor_result("onnx", "int8", 1, 200.0),
        _floor_result("tflite", "fp32", 2, 90.0),
        _floor_result("onnx", "fp32", 1, None, kind="noop"),
    ]
    peak = floor.peak_by_precision(results)
    assert peak["fp32"][1] == {"gmacs": 50.0, "engine": "tflite"}
    assert peak["fp32"][2]["gmacs"] == 90.0
    assert peak["int8"][1]["engine"] == "onnx"


def _lat(fmt: str, threads: int, p50: float, *, precision: str = "fp32", macs: int = 1_000_000,
         backend: str = "litert", acceptable: bool | None = True) -> dict[str, Any]:
    r = latency.LatencyResult(fmt, threads, backend=backend, precision=precision, runs=10,
                              stats_ms={"min": p50 / 2, "p50": p50, "p90": p50 * 1.1,
                                        "p99": p50 * 2, "max": p50 * 3, "mean": p50, "std": 0.0},
                              quantiles_ms=list(np.linspace(p50 / 2, p50 * 3, 101)),
                              macs=macs, acceptable=acceptable, file_bytes=1000,
                              peak_rss_mb=50.0, load_ms=1.0, first_ms=0.5)
    return asdict(r)


def _doc(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "label": "test-machine",
        "machine": {"cpu_model": "Test CPU", "arch": "x86_64", "logical_cpus": 2},
        "bundle": {"model_id": "m", "macs": 1_000_000},
        "settings": {"runs": 10, "warmup": 1},
        "latency": [
            _lat("onnx_fp32", 1, 0.20, backend="onnxruntime"),
            _lat("tflite_fp32", 1, 0.10),
            _lat("tflite_int8", 1, 0.05, precision="int8", acceptable=False),
            _lat("tflite_fp32", 2, 0.08),
            _lat("torch_teachers", 1, 5.0, backend="torch", acceptable=None),
        ],
        "floor": {
            "matmul_shape": [256, 256, 256],
            "results": [asdict(_floor_result("tflite", "fp32", 1, None, kind="noop",
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


def test_hub_choice_skips_formats_the_exporter_rejected() -> None:
    doc = _doc()
    # tflite_int8 is fastest but not acceptable: the hub (and so the verdict) uses tflite_fp32
    assert report.choose_hub_format(doc) == "tflite_fp32"
    doc["latency"][2]["acceptable"] = True
    assert report.choose_hub_format(doc) == "tflite_int8"


def test_floor_multiples_and_targets_follow_from_the_document() -> None:
    doc = _doc()
    mults = {(m["format"], m["threads"]): m for m in report.floor_multiples(doc)}
    assert mults[("tflite_fp32", 1)]["floor_ms"] == pytest.approx(0.05)
    assert mults[("tflite_fp32", 1)]["multiple"] == pytest.approx(2.0)
    assert mults[("tflite_fp32", 2)]["multiple"] == pytest.approx(0.08 / 0.025)
    assert mults[("tflite_fp32", 1)]["call_overhead_ms"] == pytest.approx(0.001)
    assert mults[("tflite_int8", 1)]["multiple"] == pytest.approx(0.05 / 0.01)
    t = report.evaluate_targets(doc)
    assert t["chosen_format"] == "tflite_fp32"
    assert t["speedup_vs_teachers"]["value"] == pytest.approx(50.0)
    assert t["speedup_vs_teachers"]["ok"] is True
    assert t["floor_multiple"]["ok"] is True  # 2x <= 3x
    assert t["capacity"]["ok"] is None  # not measured
    doc["latency"][1]["stats_ms"]["p50"] = 0.5  # 10x the floor, 10x faster than teachers
    t = report.evaluate_targets(doc)
    assert t["chosen_format"] == "onnx_fp32"  # now the faster acceptable one
    assert t["floor_multiple"]["ok"] is False
    assert t["speedup_vs_teachers"]["ok"] is True  # 5.0 / 0.2 = 25x


def _level(n: int, p99: float, **kw: Any) -> dict[str, Any]:
    lv = capacity.DaemonLevel(n, 0, measured_s=60, decisions=12 * n, expected=12 * n,
                              e2e_ms={"p50": p99 / 2, "p99": p99, "max": p99}, **kw)
    lv.why_not = capacity.level_sustained(lv)
    lv.sustained = not lv.why_not
    return asdict(lv)


def test_level_sustained_names_every_reason() -> None:
    ok = capacity.DaemonLevel(10, 0, decisions=120, expected=120, e2e_ms={"p99": 10.0})
    assert capacity.level_sustained(ok) == []
    bad = capacity.DaemonLevel(10, 0, decisions=50, expected=120, e2e_ms={"p99": 80.0},
                               drops={"inference_queue_full": 3}, late=2)
    why = " ".join(capacity.level_sustained(bad))
    assert "dropped" in why and "expected" in why and "p99" in why and "later than one hop" in why
    assert capacity.level_sustained(capacity.DaemonLevel(1, 0, error="boom")) == ["error: boom"]
    # a couple of windows at the edges of the measured span are not a shortfall
    edge = capacity.DaemonLevel(10, 0, decisions=100, expected=120, e2e_ms={"p99": 1.0})
    assert capacity.level_sustained(edge) == []


def test_capacity_search_stops_at_the_first_failing_level() -> None:
    tried: list[int] = []

    def runner(spec: capacity.DaemonLevelSpec) -> capacity.DaemonLevel:
        tried.append(spec.devices)
        return capacity.DaemonLevel(**_level(spec.devices, 10.0 if spec.devices <= 200 else 90.0))

    base = capacity.DaemonLevelSpec(bundle="b", devices=0)
    res = capacity.search_capacity(base, (300, 50, 200, 100, 400), runner=runner)
    assert tried == [50, 100, 200, 300]
    assert res.max_sustained == 200 and res.first_failed == 300
    doc = _doc(capacity=asdict(res))
    t = report.evaluate_targets(doc)["capacity"]
    assert t["ok"] is True and t["p99_ms_at_target"] == pytest.approx(10.0)


def test_report_writer_renders_markdown_plots_and_index(tmp_path: Path) -> None:
    doc = _doc(capacity=asdict(capacity.CapacityResult(
        [capacity.DaemonLevel(**_level(50, 10.0)), capacity.DaemonLevel(**_level(100, 70.0))],
        50, 100)))
    folder = tmp_path / "results" / "x86_64-test-2cpu"
    folder.mkdir(parents=True)
    (folder / "bench.json").write_text(json.dumps(doc))
    md = report.render(folder)
    text = md.read_text()
    assert "| tflite_fp32 | 1 |" in text
    assert "**FAIL**" in text  # capacity: 100 failed, below the 200 target
    assert "p99 window->decision 70.0 ms > 50 ms" in text
    for name in ("latency.png", "latency_cdf.png", "floor_multiple.png", "capacity.png"):
        assert (folder / "plots" / name).stat().st_size > 1000
    rewritten = json.loads((folder / "bench.json").read_text())
    assert rewritten["targets"]["chosen_format"] == "tflite_fp32"
    index = report.write_index(tmp_path / "results").read_text()
    assert "[x86_64-test-2cpu](x86_64-test-2cpu/bench.md)" in index
    (folder / "bench.json").write_text(json.dumps({**doc, "schema": "other/9"}))
    with pytest.raises(ValueError, match="schema"):
        report.render(folder)


def test_machine_description_has_what_the_report_prints() -> None:
    m = machine.describe_machine()
    for key in ("cpu_model", "arch", "logical_cpus", "clock", "isa", "libraries", "load_average"):
        assert key in m
    assert m["libraries"]["numpy"] == np.__version__
    label = machine.machine_label(m)
    assert label.startswith(m["arch"] + "-") and label.endswith("cpu")
    pi = {"cpu_model": "Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4)", "arch": "aarch64",
          "logical_cpus": 4}
    assert machine.machine_label(pi) == "aarch64-cortex-a72-raspberry-pi-4-model-b-4cpu"


# -- real measurements, tiny counts ---------------------------------------------------------


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


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real RUN (tests/fakes/runs.py) with one teacher, exported to a real bundle."""
    torch = pytest.importorskip("torch")
    from export.pipeline import ExportOptions, export_run
    from tests.fakes.runs import build_run
    from train.models import TeacherConfig, build_teacher

    root = tmp_path_factory.mktemp("bench")
    run = build_run(root / "run", steps=100)
    cfg = TeacherConfig.from_contract(run.contract, stem_rate_hz=4.0)
    teacher = build_teacher(cfg.to_dict())
    (root / "run" / "teachers").mkdir()
    torch.save({"model_args": cfg.to_dict(), "contract": run.contract.to_dict(),
                "state_dict": teacher.state_dict()}, root / "run" / "teachers" / "wrist.pt")
    export_run(root / "run", root / "bundle",
               ExportOptions(formats=["onnx_fp32", "tflite_fp32"], plots=False,
                             compare_methods=False, latency_runs=3))
    return root / "run", root / "bundle"


@pytest.mark.slow
def test_latency_of_bundle_and_torch_formats(small_bundle: tuple[Path, Path]) -> None:
    run, bundle = small_bundle
    for fmt in ("tflite_fp32", "torch_teachers"):
        r = latency.measure_spec(latency.LatencySpec(fmt, 1, bundle=str(bundle), run=str(run),
                                                     runs=5, warmup=1))
        assert r.error is None and r.runs == 5
        st = r.stats_ms
        assert 0 < st["min"] <= st["p50"] <= st["p90"] <= st["p99"] <= st["max"]
        assert r.load_ms is not None and r.first_ms is not None and r.peak_rss_mb > 0
        assert r.macs and r.macs > 0 and r.file_bytes and r.file_bytes > 0
    # the subprocess path, and a failure coming back as data rather than an exception
    r = latency.measure_in_subprocess(latency.LatencySpec("onnx_fp32", 1, bundle=str(bundle),
                                                          runs=5, warmup=1))
    assert r.error is None and r.backend == "onnxruntime" and r.rss_before_load_mb
    bad = latency.measure_in_subprocess(latency.LatencySpec("onnx_int8", 1, bundle=str(bundle),
                                                            runs=5, warmup=1))
    assert bad.error is not None and "onnx_int8" in bad.error


@pytest.mark.slow
def test_preprocess_per_window(small_bundle: tuple[Path, Path]) -> None:
    _, bundle = small_bundle
    pre = latency.measure_preprocess(bundle, windows=10)
    assert pre.windows >= 10 and pre.invalid == 0
    assert pre.cut_ms["p50"] > 0 and pre.total_ms_per_window >= pre.cut_ms["mean"]


@pytest.mark.slow
def test_daemon_level_measures_decisions_and_cpu(small_bundle: tuple[Path, Path]) -> None:
    _, bundle = small_bundle
    spec = capacity.DaemonLevelSpec(bundle=str(bundle), devices=2, measure_s=4.0, settle_s=0.5)
    lv = capacity.run_level_in_subprocess(spec)
    assert lv.error is None, lv.error
    assert lv.expected == int(2 * 4.0 / lv.hop_s)
    assert lv.decisions > 0 and lv.e2e_ms["n"] == lv.decisions
    assert lv.e2e_ms["p50"] <= lv.e2e_ms["p99"] <= lv.e2e_ms["max"]
    assert lv.cpu_s > 0 and lv.cpu_share_per_device == pytest.approx(lv.cpu_share / 2)
    assert lv.engine.startswith(("tflite:", "onnx:"))


@pytest.mark.arm
def test_arm64_emulation_gives_x86_logits(small_bundle: tuple[Path, Path]) -> None:
    """Opt-in (WEARABLE_EDGE_ARM=1); needs `python -m benchmarks.arm.emulate setup` first."""
    from benchmarks.arm import emulate

    _, bundle = small_bundle
    ok, result = emulate.check(bundle)
    assert set(result["arm"]) == set(emulate.CPUS)
    for cpu, res in result["arm"].items():
        assert {r["format"] for r in res["formats"]} == {"onnx_fp32", "tflite_fp32"}, cpu
        for r in res["formats"]:
            assert r["ok"], (cpu, r)
            assert r["same_classes"], (cpu, r)
    assert ok
