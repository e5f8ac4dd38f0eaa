"""Shared pytest configuration. Shared fakes live in tests/fakes/ (one place)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Hardware-in-the-loop and emulation tests are opt-in; they are deselected, not skipped,
    # so a skipped test is never counted as a pass.
    keep, drop = [], []
    for item in items:
        if "hil" in item.keywords and os.environ.get("WEARABLE_EDGE_HIL") != "1":
            drop.append(item)
        elif "arm" in item.keywords and os.environ.get("WEARABLE_EDGE_ARM") != "1":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
