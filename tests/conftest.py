"""Shared pytest configuration. Shared fakes live in tests/fakes/ (one place)."""

from __future__ import annotations

import os

import pytest

# marker -> the environment variable that opts in to it
OPT_IN_MARKERS = {"hil": "WEARABLE_EDGE_HIL", "arm": "WEARABLE_EDGE_ARM"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Hardware-in-the-loop and emulation tests are opt-in; they are deselected, not skipped,
    # so a skipped test is never counted as a pass.
    def opted_out(item: pytest.Item) -> bool:
        return any(
            marker in item.keywords and os.environ.get(var) != "1"
            for marker, var in OPT_IN_MARKERS.items()
        )

    drop = [item for item in items if opted_out(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not opted_out(item)]
