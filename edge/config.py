"""The daemon's configuration: typed dataclasses, read from TOML and the command line.

The source sections (``serial``, ``ble``, ``sim``, ``replay``) are the sources' own typed
options, defined beside each source, as ``mqtt`` (the MQTT sink) and ``alerts`` (the alert
rules) are; the rest are defined here.

Every command-line option has a TOML key (``--port`` is ``serial.port``, the rest are
top-level keys of the same name), so a hub can be configured by one file under
``/etc/wearable-edge/`` and the command line only overrides. The whole configuration is
validated at start: a wrong value raises :class:`~core.errors.ConfigError` whose ``key`` is
the dotted TOML path (``decisions.ema_alpha``), so the user knows which line to fix.

Precedence: defaults < ``--config FILE.toml`` < command-line flags. Reading, layering and
type checks are the kernel's one config engine (:mod:`core.config`), shared with training;
this module keeps the dataclasses and the hub's own rules (each section's ``validate()``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from core import config as engine
from core.config import require_choice as _choice
from core.config import require_non_negative as _non_negative
from core.config import require_positive as _positive
from core.errors import ConfigError
from edge.activity.options import ActigraphyOptions
from edge.alerts.options import AlertConfig
from edge.fleet.hub_options import FleetJoinOptions
from edge.personal.options import PersonalOptions
from edge.sinks.mqtt.options import MqttOptions
from edge.sources.options import (
    SIM_DAYS_MAX_SPEED,
    SIM_DEVICES_LIMIT,
    BleOptions,
    ReplayOptions,
    SerialOptions,
    SimOptions,
)

__all__ = [
    "BACKENDS",
    "DEVICES",
    "PRECISIONS",
    "SIM_DEVICES_LIMIT",
    "ActigraphyOptions",
    "AlertConfig",
    "BleOptions",
    "CalibrationConfig",
    "DaemonConfig",
    "DecisionConfig",
    "HealthConfig",
    "InferenceConfig",
    "MqttOptions",
    "PersonalOptions",
    "ReplayOptions",
    "SerialOptions",
    "SimOptions",
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
    # moved to the alert rules, the one place that decides when stress is sustained:
    # [alerts] sustained_stress_min (per wearer too); set here, it is refused with that advice
    sustained_stress_s: float | None = None
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
        if self.sustained_stress_s is not None:
            raise ConfigError("has moved: set sustained_stress_min (minutes) under [alerts], "
                              "or per wearer under [alerts.wearers.NAME]",
                              key=f"{key}.sustained_stress_s")
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
    # STATE_DIR/status.json (what `edge-daemon status` reads) is rewritten this often; a few
    # seconds keeps it current at the cost of one small write; 0: no status file
    status_file_interval_s: float = 5.0

    def validate(self, key: str) -> None:
        _positive(self.interval_s, f"{key}.interval_s")
        _choice(self.status_line, STATUS_MODES, f"{key}.status_line")
        _non_negative(self.status_file_interval_s, f"{key}.status_file_interval_s")


@dataclass
class DaemonConfig:
    """Everything ``edge-daemon`` needs; the TOML file's top level plus one table per section."""

    device: str = "sim"  # the embedded default: needs no hardware
    # a bundle directory or .tar; empty = the shipped demo bundles (edge/demo_bundle for the
    # wrist service, edge/hr_demo_bundle for heart-rate straps and watches)
    bundle: str = ""
    # more bundles beside `bundle`, one per kind of wearable: each device gets the one that
    # fits what it offers (edge.models)
    bundles: list[str] = field(default_factory=list)
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
    # Ed25519 public keys (PEM files) trusted to sign bundles, beside the defaults that
    # edge.signing lists (the demo key, this user's export key, /etc/wearable-edge/trusted-keys)
    trusted_keys: list[str] = field(default_factory=list)
    trust_demo_key: bool = True  # the shipped demo key: anyone can sign with it; off in the field
    allow_unsigned: bool = False  # development only: load a bundle without a signature (logged)
    summary_json: str = ""  # also write the end-of-run summary here as JSON (benchmarks read it)
    serial: SerialOptions = field(default_factory=SerialOptions)
    ble: BleOptions = field(default_factory=BleOptions)
    sim: SimOptions = field(default_factory=SimOptions)
    replay: ReplayOptions = field(default_factory=ReplayOptions)
    decisions: DecisionConfig = field(default_factory=DecisionConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    sinks: SinkConfig = field(default_factory=SinkConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    mqtt: MqttOptions = field(default_factory=MqttOptions)  # off until mqtt.url (--mqtt) is set
    alerts: AlertConfig = field(default_factory=AlertConfig)
    # activity counts per epoch, each wearer's day and rhythm trends (edge.activity)
    actigraphy: ActigraphyOptions = field(default_factory=ActigraphyOptions)
    # labels people confirm, personal heads, verified model updates (edge.personal)
    personal: PersonalOptions = field(default_factory=PersonalOptions)
    # a care home's federation this hub joins (edge.fleet.member); off until fleet.url is set
    fleet: FleetJoinOptions = field(default_factory=FleetJoinOptions)

    def validate(self) -> DaemonConfig:
        _choice(self.device, DEVICES, "device")
        _choice(self.backend, BACKENDS, "backend")
        _choice(self.precision, PRECISIONS, "precision")
        _choice(self.log_level, LOG_LEVELS, "log_level")
        if not 1 <= self.threads <= 64:
            raise ConfigError("must be between 1 and 64", key="threads")
        _non_negative(self.duration, "duration")
        _positive(self.speed, "speed")
        if self.device == "sim" and self.sim.days:
            if self.speed > SIM_DAYS_MAX_SPEED:
                raise ConfigError(f"must be at most {SIM_DAYS_MAX_SPEED:.0f}", key="speed")
            if not (self.actigraphy.enabled and self.sinks.sqlite):
                raise ConfigError("a simulated resident's days feed only actigraphy, which "
                                  "needs [actigraphy] enabled and the database", key="sim.days")
        elif self.speed > 10000:
            raise ConfigError("more than 10000x real time is not a meaningful replay", key="speed")
        if self.device == "replay" and not self.replay.file:
            raise ConfigError("--device replay needs a file (replay.file or --file)", key="replay.file")
        for key, name in [("resident", self.resident),
                          *((f"residents.{k}", v) for k, v in self.residents.items())]:
            if name == "hub":  # hub events, alerts and topics use this name for the hub itself
                raise ConfigError("'hub' names the hub itself in events and MQTT topics; "
                                  "choose another resident id", key=key)
        for section in ("serial", "ble", "sim", "replay", "decisions", "inference", "sinks",
                        "calibration", "health", "mqtt", "alerts", "actigraphy", "personal",
                        "fleet"):
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
    return engine.load(DaemonConfig, *(() if path is None else (path,))).validate()


def apply_overrides(cfg: DaemonConfig, overrides: Mapping[str, Any]) -> DaemonConfig:
    """``{"serial.port": "/dev/ttyACM0", "speed": 60}`` applied on top of ``cfg``; validated.

    ``None`` values are ignored, so an argparse namespace can be passed as is.
    """
    return engine.apply_overrides(cfg, overrides).validate()
