"""The daemon's configuration: TOML file, command-line overrides, errors that name the key."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from edge.config import DaemonConfig, apply_overrides, default_state_dir, load_config
from tests.fakes.inputs import exercise_config
from tests.strategies import (
    CONFIG_DEFAULTS,
    FAST_PARSER,
    byte_mutated,
    config_docs,
    examples,
    toml_values,
)


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
min_dwell_s = 45
[sinks]
retention_days = 7
[residents]
"AA:BB:CC:DD:EE:FF" = "room-3"
[sim.faults]
drop = 0.01
"""))
    assert (cfg.device, cfg.backend, cfg.threads, cfg.json) == ("serial", "onnx", 2, True)
    assert cfg.serial.port == "/dev/ttyACM0" and cfg.serial.baud == 230400
    assert cfg.decisions.ema_alpha == 0.5 and cfg.decisions.min_dwell_s == 45.0
    assert isinstance(cfg.decisions.min_dwell_s, float)  # ints accepted for floats
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


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string (lone surrogates aside)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return '"?"'  # None has no TOML form


def _toml(doc: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items()) + "\n"


@examples(3 * FAST_PARSER)
@given(
    st.one_of(
        config_docs().map(lambda d: _toml(d).encode("utf-8", "surrogatepass")),
        config_docs().map(lambda d: _toml(d).encode("utf-8", "surrogatepass")).flatmap(byte_mutated),
        st.binary(max_size=200),
        st.integers(1, 5000).map(lambda n: b"a = " + b"[" * n),
    )
)
def test_load_config_raises_only_config_errors(workdir: Path, raw: bytes) -> None:
    path = workdir / "edge.toml"
    path.write_bytes(raw)
    exercise_config(path)


@examples(2 * FAST_PARSER)
@given(
    st.dictionaries(
        st.one_of(
            st.sampled_from(sorted(CONFIG_DEFAULTS)),
            st.sampled_from(
                sorted(f"{k}.{s}" for k, v in CONFIG_DEFAULTS.items() if isinstance(v, dict)
                       for s in v)
            ),
            st.text(max_size=10),
        ),
        st.one_of(st.none(), toml_values),
        max_size=5,
    )
)
def test_apply_overrides_raises_only_config_errors(overrides: dict[str, Any]) -> None:
    with contextlib.suppress(ConfigError):
        apply_overrides(DaemonConfig(), overrides)


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe = 1\n", b"a = " + b"[" * 10_000, b"a = " + b"{b = " * 10_000],
    ids=["not_utf8", "deep_array", "deep_inline_table"],
)
def test_regression_config_file_not_utf8_or_deeply_nested(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "edge.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == "config"


def test_regression_overrides_of_a_section_and_its_key() -> None:
    with pytest.raises(ConfigError) as e:
        apply_overrides(DaemonConfig(), {"health": False, "health.interval_s": False})
    assert e.value.key.startswith("health")
