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


def _ceiling_runner(ceiling: int, tried: list[int]):
    def runner(spec: capacity.DaemonLevelSpec) -> capacity.DaemonLevel:
        tried.append(spec.devices)
        ok = spec.devices <= ceiling
        return capacity.DaemonLevel(**level(spec.devices, 10.0 if ok else 90.0,
                                            peak_rss_mb=100.0 + 0.25 * spec.devices))
    return runner


def test_capacity_search_grows_until_a_level_fails_then_bisects_to_the_ceiling() -> None:
    tried: list[int] = []
    base = capacity.DaemonLevelSpec(bundle="b", devices=0)
    res = capacity.search_capacity(base, (250, 100), runner=_ceiling_runner(1337, tried))
    # the given levels, then doubling past them, then halving the gap
    assert tried[:5] == [100, 250, 500, 1000, 2000]
    assert tried[5:] == [1500, 1250, 1370]  # 1370 - 1250 is within a tenth: done
    assert res.max_sustained == 1250 and res.first_failed == 1370
    assert (res.first_failed - res.max_sustained) <= 0.1 * res.max_sustained
    assert [lv.devices for lv in res.levels] == sorted(tried) and res.tried == tried
    assert res.rss_mb_per_wearable == pytest.approx(0.25) and res.rss_base_mb == pytest.approx(100)
    doc = bench_doc(capacity=asdict(res))
    t = report.evaluate_targets(doc)["capacity"]
    assert t["ok"] is True and t["value"] == 1250
    assert t["p99_level"] == 1000 and t["p99_ms_at_target"] == pytest.approx(10.0)
    assert report.evaluate_targets(doc)["rss_mb_per_wearable"]["ok"] is True


def test_capacity_search_below_the_first_level_and_at_the_cap() -> None:
    tried: list[int] = []
    base = capacity.DaemonLevelSpec(bundle="b", devices=0)
    res = capacity.search_capacity(base, (100,), runner=_ceiling_runner(30, tried))
    assert tried[0] == 100 and res.max_sustained is not None and res.max_sustained <= 30
    assert res.first_failed is not None and res.first_failed - res.max_sustained <= 10
    tried.clear()
    res = capacity.search_capacity(base, (100,), runner=_ceiling_runner(10**6, tried),
                                   max_level=300)
    assert tried == [100, 200, 300] and res.max_sustained == 300 and res.first_failed is None
    assert capacity.rss_slope(res.levels[:1]) == (None, None)


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
    # the simulator ran in its own process: the split is the daemon's, and adds up
    assert lv.sim_process and lv.cpu_ms_per_decision and lv.cpu_ms_per_decision > 0
    assert set(lv.cpu_split_ms) == {*capacity.CPU_STAGES, "decode"}
    stages = sum(lv.cpu_split_ms[k] for k in capacity.CPU_STAGES)
    assert stages == pytest.approx(lv.cpu_ms_per_decision, rel=0.05)
    assert lv.cpu_split_ms["inference"] > 0 and lv.cpu_split_ms["preprocessing"] > 0
