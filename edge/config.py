"""The daemon's configuration: typed dataclasses, read from TOML and the command line.

Every command-line option has a TOML key (``--port`` is ``serial.port``, the rest are
top-level keys of the same name), so a hub can be configured by one file under
``/etc/wearable-edge/`` and the command line only overrides. The whole configuration is
validated at start: a wrong value raises :class:`~edge.errors.ConfigError` whose ``key`` is
the dotted TOML path (``decisions.ema_alpha``), so the user knows which line to fix.

Precedence: defaults < ``--config FILE.toml`` < command-line flags.
"""

from __future__ import annotations

import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin

from edge.errors import ConfigError

__all__ = [
    "BACKENDS",
    "DEVICES",
    "PRECISIONS",
    "SIM_DEVICES_LIMIT",
    "BleConfig",
    "CalibrationConfig",
    "DaemonConfig",
    "DecisionConfig",
    "HealthConfig",
    "InferenceConfig",
    "ReplayConfig",
    "SerialConfig",
    "SimConfig",
    "SinkConfig",
    "apply_overrides",
    "default_state_dir",
    "load_config",
]

DEVICES: Final = ("ble", "serial", "sim", "replay")  # the four SensorSource backends
BACKENDS: Final = ("auto", "tflite", "onnx")  # "auto" measures the bundle's formats at start
PRECISIONS: Final = ("auto", "int8", "fp32")  # "auto": whatever the bundle recommends / is fastest
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
STATUS_MODES: Final = ("auto", "on", "off")  # "auto": a live line only when stdout is a TTY
# the largest sim.max_devices accepted: each simulated wearable costs a hub about what a real
# one does (~0.4 MB, ~0.15 % of an x86 core measured), so beyond this a run measures swapping
SIM_DEVICES_LIMIT: Final = 10_000


def default_state_dir() -> Path:
    """Where the hub keeps its database and calibrations when not told otherwise.

    systemd's ``StateDirectory=`` exports ``$STATE_DIRECTORY`` (``/var/lib/wearable-edge``);
    an interactive user gets ``$XDG_STATE_HOME/wearable-edge`` (``~/.local/state/...``).
    """
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "wearable-edge"


@dataclass
class SerialConfig:
    port: str = "/dev/ttyUSB0"  # the usual name of a USB-serial adapter on Linux
    baud: int = 115200  # the most common UART default; the bridge protocol needs ~20 kB/s at most
    reopen_interval_s: float = 1.0  # retry period while the port is gone (USB unplugged)
    read_size: int = 4096  # bytes per read; one pty/USB buffer

    def validate(self, key: str) -> None:
        if not self.port:
            raise ConfigError("needs a serial port path such as /dev/ttyUSB0", key=f"{key}.port")
        _positive(self.baud, f"{key}.baud")
        _positive(self.reopen_interval_s, f"{key}.reopen_interval_s")
        _positive(self.read_size, f"{key}.read_size")


@dataclass
class BleConfig:
    # addresses ("AA:BB:CC:DD:EE:FF") or advertised names to connect to; empty = every
    # advertiser of `service_uuids`
    devices: list[str] = field(default_factory=list)
    # service UUIDs that identify a wearable worth connecting to; empty = the project's GATT
    # service and the standard Heart Rate service
    service_uuids: list[str] = field(default_factory=list)
    scan_timeout_s: float = 10.0  # one discovery pass; BlueZ's own default is 10 s too
    reconnect_min_s: float = 1.0  # first back-off after a disconnect
    reconnect_max_s: float = 60.0  # back-off ceiling: a resident out of range for hours costs ~nothing
    max_devices: int = 8  # wearables matched by name/service; a Pi's controller holds ~5-10 links
    adapter: str = ""  # "hci0"; empty = BlueZ's default adapter

    def validate(self, key: str) -> None:
        _positive(self.scan_timeout_s, f"{key}.scan_timeout_s")
        _positive(self.reconnect_min_s, f"{key}.reconnect_min_s")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError("must be >= reconnect_min_s", key=f"{key}.reconnect_max_s")
        if not 1 <= self.max_devices <= 64:
            raise ConfigError("must be between 1 and 64", key=f"{key}.max_devices")


@dataclass
class SimConfig:
    # a recording (.npz ours or WESAD .pkl) the simulated wearable plays; empty = the demo
    # recording shipped with the demo bundle
    recording: str = ""
    devices: int = 1  # simulated wearables, each its own device and resident
    # the most `devices` accepted: a guard against a typo (--sim-devices 1000) on a hub, 8x
    # the BLE links a Pi's controller holds; capacity benchmarks raise it (<= 10000)
    max_devices: int = 64
    # start wearable i after hop * i / N of data time: real wearables are switched on at
    # random times, so their windows complete spread over a hop; unstaggered, all N windows
    # are cut in the same instant, a burst that no hub sees and that inflates the p99
    stagger: bool = True
    seed: int = 0  # the simulator's noise and fault schedule
    # simulator fault switches, the fields of firmware_bridge.sim.Faults (drop = 0.01,
    # disconnect_at_s = [120.0], clock_drift_ppm = 50, contact_lost_at_s = 300, ...)
    faults: dict[str, Any] = field(default_factory=dict)

    def validate(self, key: str) -> None:
        if not 1 <= self.max_devices <= SIM_DEVICES_LIMIT:
            raise ConfigError(f"must be between 1 and {SIM_DEVICES_LIMIT}",
                              key=f"{key}.max_devices")
        if not 1 <= self.devices <= self.max_devices:
            raise ConfigError(f"must be between 1 and {key}.max_devices ({self.max_devices}); "
                              f"raise {key}.max_devices for a larger simulation",
                              key=f"{key}.devices")
        for name, value in self.faults.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ConfigError("must be a finite number (or a list of them)",
                                      key=f"{key}.faults.{name}")
        if self.faults:
            self.make_faults(key)

    def make_faults(self, key: str = "sim") -> Any:
        """The simulator's ``Faults`` from ``faults``; ConfigError naming a bad switch."""
        from firmware_bridge.errors import SimulatorError
        from firmware_bridge.sim import Faults

        known = {f.name for f in fields(Faults)}
        kwargs: dict[str, Any] = {"seed": self.seed}
        for name, value in self.faults.items():
            if name not in known:
                raise ConfigError(f"unknown fault (known: {', '.join(sorted(known))})",
                                  key=f"{key}.faults.{name}")
            if name in ("stall_at_s", "disconnect_at_s"):  # lists of times
                value = tuple(float(v) for v in (value if isinstance(value, list) else [value]))
            elif isinstance(value, list):
                raise ConfigError("must be a single number", key=f"{key}.faults.{name}")
            elif name in ("seed", "clock_jump_us"):
                value = int(value)
            try:
                Faults(**{name: value})
            except (SimulatorError, TypeError, ValueError) as e:
                raise ConfigError(str(e), key=f"{key}.faults.{name}") from None
            kwargs[name] = value
        return Faults(**kwargs)


@dataclass
class ReplayConfig:
    file: str = ""  # a WESAD S*.pkl, our .npz recording, or a frame file made by --record-raw

    def validate(self, key: str) -> None:
        pass  # a missing file is a usage error raised when the replay device is chosen


@dataclass
class DecisionConfig:
    # EMA weight of the newest window: 0.3 at a 5 s hop gives a ~15 s time constant, long enough
    # to ride out one odd window, short enough that a real change shows within half a minute
    ema_alpha: float = 0.3
    # hysteresis: a challenger class must beat the current state's smoothed probability by this
    # margin before the state changes, so two near-equal classes cannot flap
    switch_margin: float = 0.1
    # and must itself reach this smoothed probability (not a plurality of three weak votes)
    enter_threshold: float = 0.5
    min_dwell_s: float = 30.0  # a state holds at least this long (6 hops) before it may change
    sustained_stress_s: float = 600.0  # 10 min of stress raises an alert (and again every period)
    stress_class: str = "stress"  # which class name counts as stress for the sustained alert
    battery_low_pct: float = 15.0  # battery-low event below this; rearmed 5 points above it
    invalid_events: bool = True  # an event when a device's windows turn invalid (and back)

    def validate(self, key: str) -> None:
        if not 0.0 < self.ema_alpha <= 1.0:
            raise ConfigError("must be in (0, 1]", key=f"{key}.ema_alpha")
        if not 0.0 <= self.switch_margin < 1.0:
            raise ConfigError("must be in [0, 1)", key=f"{key}.switch_margin")
        if not 0.0 <= self.enter_threshold <= 1.0:
            raise ConfigError("must be in [0, 1]", key=f"{key}.enter_threshold")
        _non_negative(self.min_dwell_s, f"{key}.min_dwell_s")
        _positive(self.sustained_stress_s, f"{key}.sustained_stress_s")
        if not 0.0 <= self.battery_low_pct <= 100.0:
            raise ConfigError("must be a percentage", key=f"{key}.battery_low_pct")


@dataclass
class InferenceConfig:
    # windows waiting for the engine; at a 5 s hop this is minutes of backlog per device, so a
    # full queue means the engine cannot keep up, and the oldest window is dropped and counted
    queue_size: int = 256
    max_batch: int = 16  # windows per engine call when a backlog builds (one call is cheaper)
    warmup_runs: int = 2  # engine runs before READY so the first real window is not the slow one
    # at SIGTERM, wait this long for windows already cut; systemd's TimeoutStopSec is 30 s and
    # the database flush after it needs a few more
    drain_timeout_s: float = 20.0

    def validate(self, key: str) -> None:
        _positive(self.queue_size, f"{key}.queue_size")
        _positive(self.max_batch, f"{key}.max_batch")
        _non_negative(self.warmup_runs, f"{key}.warmup_runs")
        _positive(self.drain_timeout_s, f"{key}.drain_timeout_s")


@dataclass
class SinkConfig:
    sqlite: bool = True  # the decisions database (off: JSON lines and the log only)
    commit_interval_s: float = 2.0  # batch commits: one fsync per period, kind to an SD card
    batch_size: int = 256  # ... or sooner when this many records wait
    retention_days: float = 30.0  # rows older than this are deleted (0 keeps everything)
    # cap on the database size (0 = none): on a small SD card the database stops growing here
    # and reports "disk full" (records stay buffered) instead of filling the card for the OS
    max_db_mb: float = 0.0
    # records kept in memory while a sink is failing (disk full, read-only); beyond this the
    # oldest are dropped and counted. 20k decisions is ~1 day of 1 wearable at a 5 s hop
    buffer_max: int = 20000
    retry_max_s: float = 30.0  # back-off ceiling between retries of a failing sink
    close_timeout_s: float = 5.0  # at shutdown, time to write what is pending before giving up
    jsonl_path: str = ""  # also append JSON lines to this file (empty: off)
    log_decisions: bool = True  # state changes and events in the log at INFO

    def validate(self, key: str) -> None:
        _positive(self.commit_interval_s, f"{key}.commit_interval_s")
        _positive(self.batch_size, f"{key}.batch_size")
        _non_negative(self.retention_days, f"{key}.retention_days")
        _non_negative(self.max_db_mb, f"{key}.max_db_mb")
        _positive(self.buffer_max, f"{key}.buffer_max")
        _positive(self.retry_max_s, f"{key}.retry_max_s")
        _positive(self.close_timeout_s, f"{key}.close_timeout_s")


@dataclass
class CalibrationConfig:
    # a new resident's first minutes (the bundle's normalization.calibration_s) set the
    # baseline; False: a resident without a stored baseline gets no decisions (counted)
    enroll: bool = True
    directory: str = ""  # where baselines are kept; empty = STATE_DIR/calibration

    def validate(self, key: str) -> None:
        pass


@dataclass
class HealthConfig:
    interval_s: float = 60.0  # a health line in the log this often
    status_line: str = "auto"  # the one-line live status: auto (TTY only), on, off

    def validate(self, key: str) -> None:
        _positive(self.interval_s, f"{key}.interval_s")
        _choice(self.status_line, STATUS_MODES, f"{key}.status_line")


@dataclass
class DaemonConfig:
    """Everything ``edge-daemon`` needs; the TOML file's top level plus one table per section."""

    device: str = "sim"  # the embedded default: needs no hardware
    bundle: str = ""  # a bundle directory or .tar; empty = the demo bundle in edge/demo_bundle
    backend: str = "auto"
    precision: str = "auto"
    threads: int = 1  # engine threads; 1 leaves the other cores of a Pi to the radio and the OS
    db: str = ""  # SQLite path; empty = STATE_DIR/edge.db
    state_dir: str = ""  # database and calibrations; empty = $STATE_DIRECTORY or ~/.local/state
    json: bool = False  # one JSON line per decision / event on stdout
    duration: float = 0.0  # seconds of wall time to run (0 = until the source ends or a signal)
    speed: float = 1.0  # sim / replay: play N x faster than real time
    log_level: str = "info"
    record_raw: str = ""  # write every raw frame here (local only; off by default: privacy)
    resident: str = ""  # resident id for a single wearable; empty = the device's own id
    # device key or device id -> resident id, for several wearables
    residents: dict[str, str] = field(default_factory=dict)
    trusted_keys: list[str] = field(default_factory=list)  # Ed25519 public keys for bundles
    summary_json: str = ""  # also write the end-of-run summary here as JSON (benchmarks read it)
    serial: SerialConfig = field(default_factory=SerialConfig)
    ble: BleConfig = field(default_factory=BleConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    decisions: DecisionConfig = field(default_factory=DecisionConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    sinks: SinkConfig = field(default_factory=SinkConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    def validate(self) -> DaemonConfig:
        _choice(self.device, DEVICES, "device")
        _choice(self.backend, BACKENDS, "backend")
        _choice(self.precision, PRECISIONS, "precision")
        _choice(self.log_level, LOG_LEVELS, "log_level")
        if not 1 <= self.threads <= 64:
            raise ConfigError("must be between 1 and 64", key="threads")
        _non_negative(self.duration, "duration")
        _positive(self.speed, "speed")
        if self.speed > 10000:
            raise ConfigError("more than 10000x real time is not a meaningful replay", key="speed")
        if self.device == "replay" and not self.replay.file:
            raise ConfigError("--device replay needs a file (replay.file or --file)", key="replay.file")
        for section in ("serial", "ble", "sim", "replay", "decisions", "inference", "sinks",
                        "calibration", "health"):
            getattr(self, section).validate(section)
        return self

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else default_state_dir()

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else self.state_path / "edge.db"

    @property
    def calibration_path(self) -> Path:
        c = self.calibration.directory
        return Path(c) if c else self.state_path / "calibration"

    @property
    def realtime(self) -> bool:
        """True when data time is wall time (a real wearable, or sim/replay at 1x)."""
        return self.device in ("ble", "serial") or self.speed == 1.0


def load_config(path: str | os.PathLike[str] | None = None) -> DaemonConfig:
    """Defaults, updated from the TOML file at ``path`` (if any); validated."""
    cfg = DaemonConfig()
    if path is None:
        return cfg.validate()
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"file {p} does not exist", key="config") from None
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror}", key="config") from None
    # tomllib decodes the bytes itself (UnicodeDecodeError) and recurses per nesting level
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{p} is not valid TOML: {e}", key="config") from None
    return _merge(cfg, data, "").validate()


def apply_overrides(cfg: DaemonConfig, overrides: Mapping[str, Any]) -> DaemonConfig:
    """``{"serial.port": "/dev/ttyACM0", "speed": 60}`` applied on top of ``cfg``; validated.

    ``None`` values are ignored, so an argparse namespace can be passed as is.
    """
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        parts = dotted.split(".")
        d = nested
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):  # {"health": False, "health.interval_s": 5}
                raise ConfigError("is given both as a value and as a table", key=dotted)
        d[parts[-1]] = value
    return _merge(cfg, nested, "").validate()


# -- typed merge ------------------------------------------------------------------------------
def _merge(obj: Any, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError("must be a table", key=prefix or "config")
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    changes: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", key=key)
        current = getattr(obj, name)
        if is_dataclass(current):
            changes[name] = _merge(current, value, key)
        else:
            changes[name] = _coerce(value, hints[name], key)
    return replace(obj, **changes)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    if tp is Any:
        return value  # checked by the owning section's validate()
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(get_args(tp)):
            return None
        return _coerce(value, args[0], key)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{value!r} is not one of {get_args(tp)}", key=key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{value!r} is not true/false", key=key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{value!r} is not an integer", key=key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{value!r} is not a number", key=key)
        if not math.isfinite(value):
            raise ConfigError(f"{value!r} is not finite", key=key)
        return float(value)
    if tp is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"{value!r} is not a string", key=key)
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{value!r} is not a list", key=key)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        k_tp, v_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{value!r} is not a table", key=key)
        return {_coerce(k, k_tp, key): _coerce(v, v_tp, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"unsupported type {tp!r}", key=key)  # pragma: no cover - a schema bug


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ConfigError(f"{value!r} is not one of {', '.join(choices)}", key=key)


def _positive(value: float, key: str) -> None:
    if not value > 0:
        raise ConfigError(f"{value!r} must be > 0", key=key)


def _non_negative(value: float, key: str) -> None:
    if not value >= 0:
        raise ConfigError(f"{value!r} must be >= 0", key=key)
