"""Sensor sources: ble / serial / sim / replay behind one small contract.

Each backend takes its own typed options (:class:`~edge.sources.options.SerialOptions`,
:class:`~edge.sources.ble.BleOptions`, :class:`~edge.sources.options.SimOptions`,
:class:`~edge.sources.options.ReplayOptions`), which are also the sections of the daemon's
configuration and live apart from the backends, so reading a configuration imports none.
:func:`open_source` is the one place that hands the chosen backend its section and the
run's parameters (speed, whether to loop, the model's hop); it imports the backend only
when it is chosen, so a missing optional library (bleak on a serial-only hub, say) never
breaks ``import edge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from core.errors import ConfigError
from core.lazy import lazy_attributes

if TYPE_CHECKING:
    from edge.config import DaemonConfig
    from edge.sources.base import (
        DEFAULT_QUEUE_SIZE,
        ConnectionEvent,
        QueueBridge,
        SensorSource,
        SourceItem,
        SourceStats,
    )

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "ConnectionEvent",
    "QueueBridge",
    "SensorSource",
    "SourceItem",
    "SourceStats",
    "open_source",
]


_CONTRACT: Final = frozenset(("DEFAULT_QUEUE_SIZE", "ConnectionEvent", "QueueBridge", "SensorSource",
                       "SourceItem", "SourceStats"))


# the contract is resolved on first use: the configuration imports the options modules under
# this package and must not pay for the sources themselves
__getattr__ = lazy_attributes(__name__, dict.fromkeys(_CONTRACT, "base"), globals())


def open_source(
    cfg: DaemonConfig,
    *,
    class_names: Sequence[str] | None = None,
    hop_s: float | None = None,
) -> SensorSource:
    """The source ``cfg.device`` names (``ble``, ``serial``, ``sim``, ``replay``), not yet
    started, built from its own section of ``cfg``.

    ``class_names`` (the model's) lets sim/replay translate their ground-truth labels;
    ``hop_s`` (the model's hop) is the span ``sim.stagger`` spreads simulated starts over.
    """
    kind = cfg.device
    if kind == "serial":
        from edge.sources.serial import SerialSource

        return SerialSource(cfg.serial)
    if kind == "ble":
        from edge.sources.ble import BleSource

        return BleSource(cfg.ble)
    if kind == "sim":
        from edge.bundle import demo_bundle_path, hr_demo_bundle_path
        from edge.sources.sim import SimSource

        # the demo recording sits beside a bundle's manifest; a strap plays the heart-rate
        # demo bundle's, whose held-out wearer has beats from the chest ECG (and wrist signals)
        shipped = demo_bundle_path() if cfg.sim.kind == "wrist" else hr_demo_bundle_path()
        bundle_dir = Path(cfg.bundle) if cfg.bundle else shipped
        if cfg.sim.process:
            from edge.sources.sim_process import SimProcessSource

            return SimProcessSource.from_options(
                cfg.sim, speed=cfg.speed, loop_forever=cfg.duration > 0, hop_s=hop_s,
                bundle_dir=bundle_dir if bundle_dir.is_dir() else None, class_names=class_names,
            )
        return SimSource.from_options(
            cfg.sim, speed=cfg.speed,
            loop_forever=cfg.duration > 0,  # a timed run keeps playing; else play once
            hop_s=hop_s, bundle_dir=bundle_dir if bundle_dir.is_dir() else None,
            class_names=class_names,
        )
    if kind == "replay":
        from edge.sources.replay import open_replay

        return open_replay(cfg.replay, speed=cfg.speed, sim=cfg.sim, class_names=class_names)
    raise ConfigError(f"unknown device {kind!r}; expected ble, serial, sim or replay", key="device")
