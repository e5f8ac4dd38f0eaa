"""The [alerts] section: thresholds, per-wearer overrides, each bad value naming its key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from edge.alerts import AlertConfig


def test_defaults_are_valid_and_overrides_apply_per_wearer() -> None:
    cfg = AlertConfig(wearers={"anna": {"sustained_stress_min": 5, "cooldown_min": 60}})
    cfg.validate("alerts")
    assert cfg.threshold("anna", "sustained_stress_min") == 5.0
    assert cfg.threshold("anna", "cooldown_min") == 60.0
    assert cfg.threshold("bob", "sustained_stress_min") == 10.0


@pytest.mark.parametrize(("cfg", "key"), [
    (AlertConfig(sustained_stress_min=-1), "alerts.sustained_stress_min"),
    (AlertConfig(battery_low_pct=120), "alerts.battery_low_pct"),
    (AlertConfig(max_gap_s=0), "alerts.max_gap_s"),
    (AlertConfig(wearers={"anna": {"sustained_stress": 5}}), "alerts.wearers.anna.sustained_stress"),
    (AlertConfig(wearers={"anna": {"hub_unhealthy_min": 5}}), "alerts.wearers.anna.hub_unhealthy_min"),
    (AlertConfig(wearers={"anna": {"cooldown_min": float("nan")}}), "alerts.wearers.anna.cooldown_min"),
])
def test_bad_thresholds_name_their_key(cfg: AlertConfig, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        cfg.validate("alerts")
    assert e.value.key == key
