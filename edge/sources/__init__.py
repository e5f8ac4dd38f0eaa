"""Sensor sources: ble / serial / sim / replay behind one small contract.

``open_source(kind, options)`` imports the chosen backend only when it is chosen, so a
missing optional library (bleak on a serial-only hub, say) never breaks ``import edge``.
``options`` is the daemon's :class:`~edge.config.DaemonConfig`; each backend reads its own
section (``serial``, ``ble``, ``sim``, ``replay``) and the shared ``speed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edge.errors import ConfigError
from edge.sources.base import (
    DEFAULT_QUEUE_SIZE,
    ConnectionEvent,
    QueueBridge,
    SensorSource,
    SourceItem,
    SourceStats,
)

if TYPE_CHECKING:
    from edge.config import DaemonConfig

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "ConnectionEvent",
    "QueueBridge",
    "SensorSource",
    "SourceItem",
    "SourceStats",
    "open_source",
]


def open_source(
    kind: str, options: DaemonConfig, *, class_names: Sequence[str] | None = None
) -> SensorSource:
    """The source for ``kind`` (``ble``, ``serial``, ``sim``, ``replay``), not yet started.

    ``class_names`` (the model's) lets sim/replay translate their ground-truth labels.
    """
    if kind == "serial":
        from edge.sources.serial import SerialSource

        s = options.serial
        return SerialSource(s.port, s.baud, reopen_interval_s=s.reopen_interval_s,
                            read_size=s.read_size)
    if kind == "ble":
        from edge.sources.ble import BleOptions, BleSource

        b = options.ble
        return BleSource(
            BleOptions.from_devices(
                b.devices,
                service_uuids=tuple(b.service_uuids),
                max_devices=b.max_devices,
                scan_timeout_s=b.scan_timeout_s,
                backoff_base_s=b.reconnect_min_s,
                backoff_max_s=b.reconnect_max_s,
                adapter=b.adapter or None,
            )
        )
    if kind == "sim":
        from edge.sources.sim import SimSource

        return SimSource.from_config(options, class_names=class_names)
    if kind == "replay":
        from edge.sources.replay import open_replay

        return open_replay(options, class_names=class_names)
    raise ConfigError(f"unknown device {kind!r}; expected ble, serial, sim or replay", key="device")
