"""The [actigraphy] section and the simulated resident's [sim] keys: checked, with their key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from edge.config import DaemonConfig, apply_overrides


@pytest.mark.parametrize(("key", "value", "words"), [
    ("actigraphy.epoch_s", 45, "not one of 30, 60"),
    ("actigraphy.baseline_days", 1, ">= 2"),
    ("actigraphy.run_days", 0, ">= 1"),
    ("actigraphy.band_k", 0.0, "> 0"),
    ("actigraphy.history_days", 8, ">= 9"),
    ("actigraphy.nonwear_min", -1.0, ">= 0"),
    ("sim.days", -1.0, "between 0 and 366"),
    ("sim.fragment_sleep_from_day", -2, ">= -1"),
])
def test_bad_values_name_their_key(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as e:
        apply_overrides(DaemonConfig(), {key: value})
    assert e.value.key == key


def test_a_simulated_residents_days_may_run_fast_but_need_actigraphy_and_the_database() -> None:
    cfg = apply_overrides(DaemonConfig(), {"sim.days": 14, "speed": 100000})
    assert cfg.actigraphy.enabled and cfg.actigraphy.epoch_s == 60
    with pytest.raises(ConfigError, match="10000x") as e:
        apply_overrides(DaemonConfig(), {"speed": 100000})  # a recording: not meaningful
    assert e.value.key == "speed"
    for off in ({"actigraphy.enabled": False}, {"sinks.sqlite": False}):
        with pytest.raises(ConfigError, match="needs \\[actigraphy\\] enabled") as e:
            apply_overrides(DaemonConfig(), {"sim.days": 3, **off})
        assert e.value.key == "sim.days"
    with pytest.raises(ConfigError, match="wrist") as e:
        apply_overrides(DaemonConfig(), {"sim.days": 3, "sim.kind": "hr"})
    assert e.value.key == "sim.days"
