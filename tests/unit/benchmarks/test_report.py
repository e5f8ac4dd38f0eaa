"""benchmarks.report: the hub's format, floor multiples and targets from a document, and the written report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import capacity, report
from tests.fakes.bench import bench_doc, level


def test_hub_choice_skips_formats_the_exporter_rejected() -> None:
    doc = bench_doc()
    # tflite_int8 is fastest but not acceptable: the hub (and so the verdict) uses tflite_fp32
    assert report.choose_hub_format(doc) == "tflite_fp32"
    doc["latency"][2]["acceptable"] = True
    assert report.choose_hub_format(doc) == "tflite_int8"


def test_floor_multiples_and_targets_follow_from_the_document() -> None:
    doc = bench_doc()
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


def test_report_writer_renders_markdown_plots_and_index(tmp_path: Path) -> None:
    doc = bench_doc(capacity=asdict(capacity.CapacityResult(
        [capacity.DaemonLevel(**level(50, 10.0)), capacity.DaemonLevel(**level(100, 70.0))],
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


def test_issue_targets_each_have_a_value_and_a_verdict() -> None:
    lv = level(1000, 20.0, cpu_ms_per_decision=0.6,
               cpu_split_ms={"decisions": 0.02, "inference": 0.1})
    doc = bench_doc(preprocess={"total_ms_per_window": 0.08},
                    capacity={"levels": [level(500, 10.0), lv], "max_sustained": 1000,
                              "first_failed": 1100, "rss_mb_per_wearable": 0.4,
                              "rss_base_mb": 120.0})
    t = report.evaluate_targets(doc)
    for name in ("floor_multiple", "speedup_vs_teachers", "capacity", "int8_vs_fp32",
                 "preprocess_vs_inference", "daemon_vs_compute"):
        assert "value" in t[name] and "ok" in t[name], name
    # int8: only LiteRT has both files here; 0.05 / 0.10 (the exporter's verdict carried)
    i8 = t["int8_vs_fp32"]
    assert i8["runtime"] == "litert" and i8["value"] == pytest.approx(0.5) and i8["ok"] is True
    assert i8["runtimes"]["litert"]["int8_acceptable"] is False
    assert t["preprocess_vs_inference"]["value"] == pytest.approx(0.8)
    # compute path = 0.08 preprocessing + 0.10 inference + 0.02 decision; the daemon 0.6
    d = t["daemon_vs_compute"]
    assert d["compute_ms"] == pytest.approx(0.2) and d["value"] == pytest.approx(3.0)
    assert d["ok"] is True and d["level"] == 1000
    assert t["capacity"]["ok"] is True and t["capacity"]["p99_ms_at_max"] == pytest.approx(20.0)
    assert t["rss_mb_per_wearable"]["ok"] is False
    # nothing measured: no verdict rather than a wrong one
    bare = report.evaluate_targets(bench_doc(latency=[]))
    assert bare["int8_vs_fp32"]["ok"] is None and bare["daemon_vs_compute"]["value"] is None
