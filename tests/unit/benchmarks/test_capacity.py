"""benchmarks.capacity: when a level is sustained, the search for the most devices, one real daemon level."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import capacity, report
from tests.fakes.bench import bench_doc, level


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
        return capacity.DaemonLevel(**level(spec.devices, 10.0 if spec.devices <= 200 else 90.0))

    base = capacity.DaemonLevelSpec(bundle="b", devices=0)
    res = capacity.search_capacity(base, (300, 50, 200, 100, 400), runner=runner)
    assert tried == [50, 100, 200, 300]
    assert res.max_sustained == 200 and res.first_failed == 300
    doc = bench_doc(capacity=asdict(res))
    t = report.evaluate_targets(doc)["capacity"]
    assert t["ok"] is True and t["p99_ms_at_target"] == pytest.approx(10.0)


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
