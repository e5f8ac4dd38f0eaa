"""edge.sources.ble.source: reconnect backoff (the source against the BlueZ stand-in: tests/e2e/test_ble.py)."""

from __future__ import annotations

import random

from edge.sources.ble import (
    backoff_delay,
)


def test_backoff_grows_exponentially_to_the_ceiling_with_bounded_jitter() -> None:
    rng = random.Random(0)
    no_jitter = [backoff_delay(n, 0.5, 10.0, 0.0, rng) for n in range(1, 8)]
    assert no_jitter == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(0, 0.5, 10.0, 0.0, rng) == 0.5  # "no failure yet" waits like the first
    assert backoff_delay(10_000, 0.5, 10.0, 0.0, rng) == 10.0  # no overflow for huge counts
    jittered = [backoff_delay(3, 1.0, 60.0, 0.2, rng) for _ in range(500)]
    assert min(jittered) >= 4.0 * 0.8 and max(jittered) <= 4.0 * 1.2
    assert len(set(jittered)) > 400  # really random, so devices do not retry in lockstep
