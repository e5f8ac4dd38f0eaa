"""Actigraphy on the hub, typed: the ``[actigraphy]`` section of the daemon's configuration.

Every field is a TOML key under ``[actigraphy]``; ``validate`` raises
:class:`~core.errors.ConfigError` naming the dotted key, like every config section. Kept
apart from the service (:mod:`edge.activity.service`) so reading a configuration imports no
hub module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.config import require_at_least, require_positive
from core.errors import ConfigError

__all__ = ["EPOCH_LENGTHS", "ROLLING_DAYS", "ActigraphyOptions"]

# Sadeh (1994) scores 60 s epochs, Cole-Kripke (1992) 30 s ones: the two the kernel scores
EPOCH_LENGTHS: Final = (30, 60)
ROLLING_DAYS: Final = 7  # the rhythm of a day is measured over the week ending with it


@dataclass
class ActigraphyOptions:
    """Activity counts from each wearer's wrist accelerometer, and a daily rhythm report."""

    enabled: bool = True  # counts per epoch in the database, a daily row, trend events
    epoch_s: int = 60  # 60 (Sadeh) or 30 (Cole-Kripke)
    # a run of zero counts this long is the wearable off the wrist, not sleep: two hours is
    # longer than anyone lies perfectly still, shorter than a night on the bedside table
    nonwear_min: float = 120.0
    # a wearer's first days set their own band for each measure; a week holds every weekday
    baseline_days: int = 7
    run_days: int = 3  # an event when a measure stays outside the band this many days running
    # the band is the baseline median +- band_k robust standard deviations (1.4826 MAD)
    band_k: float = 2.5
    # epochs older than this are deleted (a day's rows and the trend events are kept: they
    # hold the wearer's baseline); at least the rhythm's week plus the night either side
    history_days: int = 35

    def validate(self, key: str) -> None:
        if self.epoch_s not in EPOCH_LENGTHS:
            raise ConfigError(f"{self.epoch_s!r} is not one of 30, 60 (seconds)",
                              key=f"{key}.epoch_s")
        require_at_least(self.nonwear_min, 0, f"{key}.nonwear_min")
        require_at_least(self.baseline_days, 2, f"{key}.baseline_days")
        require_at_least(self.run_days, 1, f"{key}.run_days")
        require_positive(self.band_k, f"{key}.band_k")
        require_at_least(self.history_days, ROLLING_DAYS + 2, f"{key}.history_days")
        for name in ("epoch_s", "baseline_days", "run_days", "history_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise ConfigError(f"{value!r} must be a whole number", key=f"{key}.{name}")
