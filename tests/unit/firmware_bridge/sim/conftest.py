"""Fixtures of the simulator tests: one small deterministic synthetic recording."""

from __future__ import annotations

import pytest

from firmware_bridge.sim.synthetic import synthetic_recording


@pytest.fixture(scope="module")
def rec():  # type: ignore[no-untyped-def]
    return synthetic_recording(40.0, seed=3)
