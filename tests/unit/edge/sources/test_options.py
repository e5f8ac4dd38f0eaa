"""edge.sources.options: each source's typed options are its section of the daemon's
configuration, validated with the dotted key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.config import DaemonConfig, load_config
from edge.sources.ble import BleSource
from edge.sources.options import BleOptions, ReplayOptions, SerialOptions, SimOptions
from firmware_bridge import gatt


def test_the_config_sections_are_the_sources_options(tmp_path: Path) -> None:
    p = tmp_path / "edge.toml"
    p.write_text('[ble]\ndevices = ["aa:bb:cc:dd:ee:01", "HRM-Strap"]\nreconnect_jitter = 0.1\n'
                 '[serial]\nport = "/dev/ttyACM0"\n[sim]\ndevices = 2\n[replay]\nfile = "x.npz"\n')
    cfg = load_config(p)
    assert isinstance(cfg.ble, BleOptions) and isinstance(cfg.serial, SerialOptions)
    assert isinstance(cfg.sim, SimOptions) and isinstance(cfg.replay, ReplayOptions)
    assert cfg.ble.addresses == ("AA:BB:CC:DD:EE:01",) and cfg.ble.names == ("HRM-Strap",)
    assert cfg.ble.reconnect_jitter == 0.1 and cfg.serial.port == "/dev/ttyACM0"
    assert cfg.sim.devices == 2 and cfg.replay.file == "x.npz"


@pytest.mark.parametrize(("text", "key"), [
    ("[serial]\nport = ''", "serial.port"),
    ("[serial]\nread_size = 0", "serial.read_size"),
    ("[ble]\nreconnect_jitter = 1.0", "ble.reconnect_jitter"),
    ("[ble]\nconnect_attempts = 0", "ble.connect_attempts"),
    ("[ble]\nmax_devices = 65", "ble.max_devices"),
    ("[sim]\nfaults = { nope = 1 }", "sim.faults.nope"),
])
def test_a_bad_option_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "edge.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert info.value.key == key


def test_sources_check_options_given_directly() -> None:
    from edge.sources.serial import SerialSource

    with pytest.raises(ConfigError) as info:
        SerialSource(SerialOptions(baud=0))
    assert info.value.key == "serial.baud"
    assert DaemonConfig().sim.make_faults().seed == 0


def test_options_validate_and_split_devices() -> None:
    opts = BleOptions(devices=["aa:bb:cc:dd:ee:01", "HRM-Strap"], scan_timeout_s=3.0)
    opts.validate()
    assert opts.addresses == ("AA:BB:CC:DD:EE:01",)
    assert opts.names == ("HRM-Strap",)
    assert opts.match_services == ()  # explicit devices: no catch-all service match
    default = BleOptions()
    assert gatt.HEART_RATE_SERVICE_UUID in default.match_services
    assert gatt.WEARABLE_SERVICE_UUID in default.match_services
    assert BleOptions(service_uuids=["180D"]).match_services == (gatt.HEART_RATE_SERVICE_UUID,)
    for bad, key in (
        ({"scan_timeout_s": 0.0}, "ble.scan_timeout_s"),
        ({"reconnect_min_s": 2.0, "reconnect_max_s": 1.0}, "ble.reconnect_max_s"),
        ({"reconnect_jitter": 1.5}, "ble.reconnect_jitter"),
        ({"max_devices": 0}, "ble.max_devices"),
        ({"connect_timeout_s": math.nan}, "ble.connect_timeout_s"),
        ({"connect_attempts": 0}, "ble.connect_attempts"),
    ):
        with pytest.raises(ConfigError) as info:
            BleOptions(**bad).validate()  # type: ignore[arg-type]
        assert info.value.key == key
    with pytest.raises(ConfigError):  # the source checks what it is given
        BleSource(BleOptions(max_devices=0))
