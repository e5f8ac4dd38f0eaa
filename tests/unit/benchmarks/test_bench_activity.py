"""benchmarks.bench_activity stays runnable: its cases on a small scale, and its report."""

from __future__ import annotations

from benchmarks import bench_activity as bench


def test_the_cases_run_and_the_report_names_them() -> None:
    counts = bench.counts_cost(30, 60.0, repeats=1)
    assert counts["epochs"] == 59  # the first part-minute waits for the grid
    assert counts["cpu_s_per_hour"] > 0
    close = bench.close_cost(repeats=1)
    assert close["history_days"] == bench.HISTORY_DAYS and close["cpu_s_per_close"] > 0
    text = bench._markdown({"command": bench.COMMAND, "created": "now", "machine": "m",
                            "load_before": [0], "load_after": [0], "counts": [counts],
                            "close": close, "simulated": None})
    assert "| 30 Hz | 60 s |" in text and "A day's close" in text
