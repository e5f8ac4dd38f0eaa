"""edge.source_hints: the line that says what a daemon without data waits for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edge.source_hints import bluetooth_adapters, watch_for_data, why_no_data


class _Source:
    def __init__(self, kind: str, **attrs: Any) -> None:
        self.kind = kind
        self.__dict__.update(attrs)

    def health(self) -> dict[str, Any]:
        return {}


def test_a_missing_serial_port_is_named_with_the_ports_there_are_and_dialout() -> None:
    hint = why_no_data(_Source("serial", port="/dev/ttyDOES-NOT-EXIST"))  # type: ignore[arg-type]
    assert hint.startswith("serial port /dev/ttyDOES-NOT-EXIST: no such port; available: ")
    assert "dialout" in hint


def test_adapters_are_read_from_the_kernel_class_directory(tmp_path: Path) -> None:
    assert bluetooth_adapters(tmp_path / "absent") == []
    (tmp_path / "hci0").mkdir()
    (tmp_path / "hci0:11").mkdir()  # a connection, not an adapter
    assert bluetooth_adapters(tmp_path) == ["hci0"]


class _Notifier:
    def __init__(self) -> None:
        self.said: list[str] = []

    def status(self, text: str) -> None:
        self.said.append(text)


def test_a_service_without_data_tells_systemd_what_it_waits_for() -> None:
    daemon = SimpleNamespace(devices={}, waiting_for="",
                             source=_Source("serial", port="/dev/ttyDOES-NOT-EXIST"))
    notifier = _Notifier()

    async def scenario() -> None:
        task = asyncio.create_task(watch_for_data(daemon, notifier, interval_s=0.01))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(scenario())
    assert notifier.said and notifier.said[-1].startswith("waiting: serial port /dev/ttyDOES")
    assert "no such port" in daemon.waiting_for
