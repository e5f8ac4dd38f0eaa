"""The alert rules' typed options: the ``[alerts]`` section of the daemon's configuration.

Thresholds apply to every wearer unless ``[alerts.wearers.<name>]`` overrides them for one.
Kept apart from the rules (:mod:`edge.alerts.rules`) so that reading a configuration imports
no hub module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from core.errors import ConfigError

__all__ = ["THRESHOLDS", "AlertConfig"]

# the thresholds; all but hub_unhealthy_min (the hub's own) can be set per wearer
THRESHOLDS: Final = ("sustained_stress_min", "no_contact_min", "disconnected_min",
                     "battery_low_pct", "hub_unhealthy_min", "cooldown_min")


@dataclass
class AlertConfig:
    enabled: bool = True
    sustained_stress_min: float = 10.0  # a carer looks in after ten minutes of stress
    no_contact_min: float = 10.0  # off the wrist this long: a bath is over, a forgotten band is not
    disconnected_min: float = 15.0  # out of radio range this long: not a walk to the kitchen
    battery_low_pct: float = 15.0  # a day's wear left at about this charge
    hub_unhealthy_min: float = 5.0  # sinks retry for minutes before a person needs to know
    cooldown_min: float = 30.0  # at most one alert per rule and wearer in this time
    # decisions further apart than this do not make one stretch of stress (4 x a 30 s dwell)
    max_gap_s: float = 120.0
    # per-wearer overrides of the thresholds above: {"anna": {"sustained_stress_min": 5}}
    wearers: dict[str, dict[str, float]] = field(default_factory=dict)

    def validate(self, key: str) -> None:
        for name in THRESHOLDS:
            _check_threshold(name, getattr(self, name), f"{key}.{name}")
        if not self.max_gap_s > 0:
            raise ConfigError(f"{self.max_gap_s!r} must be > 0", key=f"{key}.max_gap_s")
        for wearer, overrides in self.wearers.items():
            for name, value in overrides.items():
                k = f"{key}.wearers.{wearer}.{name}"
                if name not in THRESHOLDS or name == "hub_unhealthy_min":
                    known = ", ".join(n for n in THRESHOLDS if n != "hub_unhealthy_min")
                    raise ConfigError(f"is not a per-wearer threshold (known: {known})", key=k)
                _check_threshold(name, value, k)

    def threshold(self, resident: str, name: str) -> float:
        """``name`` (a field of this class) for ``resident``, with its override if any."""
        return float(self.wearers.get(resident, {}).get(name, getattr(self, name)))


def _check_threshold(name: str, value: float, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{value!r} is not a number", key=key)
    if name == "battery_low_pct":
        if not 0.0 <= value <= 100.0:
            raise ConfigError("must be a percentage", key=key)
    elif value < 0:
        raise ConfigError(f"{value!r} must be >= 0", key=key)
