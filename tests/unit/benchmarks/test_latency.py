"""benchmarks.latency: percentiles of the samples, and one real pass of each measurement
(bundle formats, the torch teachers, a subprocess, preprocessing) on a small bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import latency


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
