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
