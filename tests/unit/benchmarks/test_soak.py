"""The soak's leak verdict: a pool's one step passes, growth that goes on fails."""

from __future__ import annotations

from benchmarks.soak import POOL_STEP, _no_growth


def test_a_flat_series_and_one_sample_blips_pass() -> None:
    assert _no_growth([7] * 40)
    assert _no_growth([14] * 20 + [15] + [14] * 19)  # a file held for a moment


def test_a_pool_stepping_up_once_mid_run_passes_only_with_its_slack() -> None:
    # asyncio's default executor starts a second worker when two jobs overlap: once
    threads = [7] * 15 + [8] * 25
    assert not _no_growth(threads)  # the bare median test calls it growth
    assert _no_growth(threads, POOL_STEP["threads"])


def test_steady_growth_fails_even_with_the_slack() -> None:
    leaking_fds = [14 + i // 2 for i in range(60)]  # one descriptor more every two samples
    assert not _no_growth(leaking_fds, POOL_STEP["fds"])
    leaking_threads = [7 + i // 4 for i in range(60)]
    assert not _no_growth(leaking_threads, POOL_STEP["threads"])


def test_tasks_get_no_slack() -> None:
    assert POOL_STEP["tasks"] == 0
    assert not _no_growth([10] * 10 + [11] * 20, POOL_STEP["tasks"])
