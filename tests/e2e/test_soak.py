"""The soak's CI variant: one hour of data from three wearables through the real daemon.

``python -m benchmarks.soak`` (24 h, several minutes) is the full run with its figures in
``benchmarks/results/soak/``; this runs the same code on one simulated hour (about 20 s
here) and holds it to the same verdicts: memory flat after warm-up (<= 5 %), no fd, thread
or asyncio task leak, every expected window cut and decided, every decision in a sound
database, no drop.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.soak import run_soak, verdicts
from tests.fakes.daemon import toy_bundle

pytestmark = pytest.mark.slow

HOURS = 1.0
DEVICES = 3


def test_one_hour_of_three_wearables_memory_flat_no_leak_counts_exact(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    bundle = toy_bundle(tmp_path_factory.getbasetemp())
    r = run_soak(hours=HOURS, devices=DEVICES, bundle=str(bundle), out=tmp_path,
                 health_s=1.0, sample_s=0.5, progress=False)
    v = r["verdicts"]
    assert len(r["samples"]) >= 10 and len(r["health"]) >= 5, "too few samples to judge"
    assert v["memory_flat"], v
    assert v["no_fd_thread_task_leak"], v
    assert v["decisions_as_expected"], v
    # exactly: windows per wearable = (data span - window) / hop + 1, all valid and decided
    assert v["windows_cut"] == v["windows_expected"] == v["decisions"] == r["db_rows"]
    for dev in r["summary"]["per_device"].values():
        assert dev["seq_lost"] == 0 and dev["samples"] == 360_000  # (64 + 4 + 32 x 3) Hz x 1 h
    assert r["summary"]["devices"] == [f"sim-{i}" for i in range(DEVICES)]
    # what the benchmark writes, and that it can be judged again from it alone
    saved = json.loads((tmp_path / "results.json").read_text())
    assert verdicts(saved) == v
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert "**pass**" in (tmp_path / "results.md").read_text()


def test_the_verdicts_fail_on_a_leak() -> None:
    """The judge can fail: a run whose memory, fds and counts drift is not passed."""
    samples = [{"rss_kb": 100_000 + 2_000 * i, "fds": 12 + i // 5, "threads": 5,
                "wall_s": i} for i in range(20)]
    health = [{"decisions": 100 * i, "rss_mb": 100.0, "tasks": 7 + i, "fds": 12}
              for i in range(10)]
    r = {"samples": samples, "health": health, "wearables": 3, "hours_per_wearable": 1.0,
         "window_s": 4.0, "hop_s": 2.0, "db_rows": 5000, "db_integrity": "ok",
         "summary": {"decisions": 5000, "windows": {"valid": 5000},
                     "drops": {"inference_queue_full": 3}}}
    v = verdicts(r)
    assert not v["memory_flat"] and not v["no_fd_thread_task_leak"]
    assert not v["decisions_as_expected"]
