"""Which of a device's sensors can feed which modality of a model's input contract."""

from __future__ import annotations

from typing import Final

from core.contract import Modality
from firmware_bridge.protocol import SensorInfo

__all__ = ["sensor_mismatch", "unit_matches"]

# unit spellings firmware and standard profiles use for the contract's units
_UNIT_ALIASES: Final = {
    "°c": "degc", "celsius": "degc", "c": "degc",
    "µs": "us", "μs": "us", "microsiemens": "us",
    "au": "a.u.", "arb": "a.u.",
}


def unit_matches(sensor_unit: str, modality_unit: str) -> bool:
    """True if ``sensor_unit`` is ``modality_unit`` under the usual spellings."""
    def norm(u: str) -> str:
        u = u.strip().lower()
        return _UNIT_ALIASES.get(u, u)

    return norm(sensor_unit) == norm(modality_unit)


def sensor_mismatch(s: SensorInfo, m: Modality) -> str | None:
    """Why sensor ``s`` cannot feed modality ``m`` (its kind names ``m``), or None if it can."""
    if s.kind != m.name:
        return f"it is {s.kind!r}, not {m.name!r}"
    if s.channels != m.n_channels:
        return f"it has {s.channels} channels, the model expects {m.n_channels}"
    if not unit_matches(s.unit, m.unit):
        return f"it reports {s.unit!r}, the model expects {m.unit!r}"
    return None
