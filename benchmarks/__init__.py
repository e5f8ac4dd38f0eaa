"""Benchmarks: per-window latency, the hardware floor, hub capacity (`edge-bench`)."""
