"""Shared pytest configuration. Shared fakes live in tests/fakes/ (one place)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

# Hypothesis profiles: "ci" (HYPOTHESIS_PROFILE=ci, set by `make test`) for the whole suite on
# a shared box, where timing is no signal, and the default "dev". Tests that set their own
# example counts scale them through tests/strategies.py.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

if TYPE_CHECKING:
    from tests.fakes.bluez import FakeBlueZ

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


# --- BLE: a private system bus and the BlueZ stand-in (tests/fakes/bluez.py) -----------------


@pytest.fixture
async def system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A private dbus-daemon for this test; bleak/dbus-fast reach it via DBUS_SYSTEM_BUS_ADDRESS."""
    from tests.fakes.bluez import close_bleak_manager, private_system_bus

    async with private_system_bus(tmp_path / "dbus") as address:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        try:
            yield address
        finally:
            # bleak keeps one bus connection per event loop; close it while this loop runs
            await close_bleak_manager()


@pytest.fixture
async def bluez(system_bus: str) -> AsyncIterator[FakeBlueZ]:
    """The BlueZ stand-in serving ``org.bluez`` on the private bus (add peripherals to it)."""
    from tests.fakes.bluez import FakeBlueZ

    async with FakeBlueZ(system_bus) as fake:
        yield fake


# --- property tests of parsers (tests/strategies.py) ------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the files a property test writes per input.

    Module-scoped: hypothesis runs the test body many times within one call, so a
    function-scoped tmp_path would not be fresh per input anyway; each test names its files.
    """
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A CLI's main() run in-process configures the root logger on the stream capsys swapped
    in; left behind, every later test would log to a closed stream. Put the root back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
