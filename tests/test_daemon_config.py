"""The daemon's configuration: TOML file, command-line overrides, errors that name the key."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.config import DaemonConfig, apply_overrides, default_state_dir, load_config


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edge-daemon.toml"
    p.write_text(text)
    return p


def test_defaults_are_valid_and_run_the_embedded_default() -> None:
    cfg = load_config(None)
    assert cfg.device == "sim" and cfg.backend == "auto" and cfg.speed == 1.0


def test_toml_sets_top_level_and_section_keys(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, """
device = "serial"
backend = "onnx"
threads = 2
db = "/var/lib/x/edge.db"
json = true
resident = "room-12"
[serial]
port = "/dev/ttyACM0"
baud = 230400
[decisions]
ema_alpha = 0.5
sustained_stress_s = 900
[sinks]
retention_days = 7
[residents]
"AA:BB:CC:DD:EE:FF" = "room-3"
[sim.faults]
drop = 0.01
"""))
    assert (cfg.device, cfg.backend, cfg.threads, cfg.json) == ("serial", "onnx", 2, True)
    assert cfg.serial.port == "/dev/ttyACM0" and cfg.serial.baud == 230400
    assert cfg.decisions.ema_alpha == 0.5 and cfg.decisions.sustained_stress_s == 900.0
    assert isinstance(cfg.decisions.sustained_stress_s, float)  # ints accepted for floats
    assert cfg.sinks.retention_days == 7.0
    assert cfg.residents == {"AA:BB:CC:DD:EE:FF": "room-3"}
    assert cfg.sim.faults == {"drop": 0.01}
    assert cfg.db_path == Path("/var/lib/x/edge.db")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('device = "zigbee"', "device"),
        ('backend = "cuda"', "backend"),
        ("threads = 0", "threads"),
        ('threads = "2"', "threads"),
        ("speed = -1", "speed"),
        ("colour = 1", "colour"),
        ("[serial]\nbaud = 0", "serial.baud"),
        ("[serial]\nparity = 'N'", "serial.parity"),
        ("[decisions]\nema_alpha = 1.5", "decisions.ema_alpha"),
        ("[decisions]\nmin_dwell_s = -3", "decisions.min_dwell_s"),
        ("[sinks]\nretention_days = 'forever'", "sinks.retention_days"),
        ("[health]\nstatus_line = 'blink'", "health.status_line"),
        ("[sim]\nfaults = { drop = -0.5 }", "sim.faults.drop"),
        ("[ble]\ndevices = 'AA:BB'", "ble.devices"),
        ("[ble]\ndevices = ['ok', 3]", "ble.devices[1]"),
        ("serial = 3", "serial"),
        ("json = 'yes'", "json"),
        ('device = "replay"', "replay.file"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_key(tmp_path: Path, text: str,
                                                          key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.key == key
    assert key in str(info.value)


def test_missing_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.key == "config"
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "device = "))


def test_command_line_overrides_the_file_and_none_means_not_given(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, 'device = "serial"\nspeed = 2.0\n[serial]\nbaud = 9600'))
    cfg = apply_overrides(cfg, {"serial.port": "/dev/ttyS1", "speed": 60, "device": None})
    assert cfg.device == "serial" and cfg.speed == 60.0 and cfg.serial.port == "/dev/ttyS1"
    assert cfg.serial.baud == 9600
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, {"inference.queue_size": 0})
    assert info.value.key == "inference.queue_size"


def _leaf_keys(obj: object, prefix: str = "") -> set[str]:
    out = set()
    for f in fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if is_dataclass(v):
            out |= _leaf_keys(v, f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
    return out


def test_every_cli_option_has_a_toml_key() -> None:
    from edge.cli import CLI_TO_CONFIG

    keys = _leaf_keys(DaemonConfig())
    assert set(CLI_TO_CONFIG.values()) <= keys, set(CLI_TO_CONFIG.values()) - keys


def test_state_dir_follows_systemd_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/wearable-edge")
    assert default_state_dir() == Path("/var/lib/wearable-edge")
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "wearable-edge"
    assert load_config(None).db_path == tmp_path / "wearable-edge" / "edge.db"
