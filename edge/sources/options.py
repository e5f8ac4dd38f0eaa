"""Each source's typed options, which are also the source sections of the configuration.

:class:`SerialOptions`, :class:`BleOptions`, :class:`SimOptions` and :class:`ReplayOptions`
are what the ``serial``, ``ble``, ``sim`` and ``replay`` sources take, and the ``[serial]``,
``[ble]``, ``[sim]`` and ``[replay]`` sections of the daemon's configuration. They live
apart from the sources (as bleak keeps its per-backend arguments apart from the backends),
so reading a configuration imports no source and none of their libraries (bleak, pyserial,
numpy), whichever source is used.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

from core.config import require_at_least, require_positive
from core.errors import ConfigError

if TYPE_CHECKING:
    from firmware_bridge.sim import Faults

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "SIM_DAYS_LIMIT",
    "SIM_DAYS_MAX_SPEED",
    "SIM_DEVICES_LIMIT",
    "SIM_KINDS",
    "BleOptions",
    "ReplayOptions",
    "SerialOptions",
    "SimOptions",
    "is_address",
    "normalize_uuid",
]

# ~4 s of a 4-sensor wearable at 10 packets/s per sensor per device for 25 devices: enough to
# ride out a slow window without letting a stalled consumer grow memory without bound.
DEFAULT_QUEUE_SIZE: Final = 4096


@dataclass
class SerialOptions:
    """The ``[serial]`` section: which port, how fast, how often to retry it."""

    port: str = "/dev/ttyUSB0"  # the usual name of a USB-serial adapter on Linux
    baud: int = 115200  # the most common UART default
    reopen_interval_s: float = 1.0  # retry period while the port is gone (USB unplugged)
    read_size: int = 4096  # bytes per read; one pty/USB buffer

    def validate(self, key: str = "serial") -> None:
        """Raise :class:`~core.errors.ConfigError` naming the first bad key under ``key``."""
        if not self.port:
            raise ConfigError("needs a serial port path such as /dev/ttyUSB0", key=f"{key}.port")
        for name in ("baud", "reopen_interval_s", "read_size"):
            require_positive(getattr(self, name), f"{key}.{name}")


_HEX: Final = frozenset(string.hexdigits)
# BlueZ's controllers hold a handful of LE links (a Pi's about 5-10); past this a typo
# (devices = 1000 names) is more likely than a hub that could serve them
BLE_DEVICES_LIMIT: Final = 64


def is_address(text: str) -> bool:
    """True if ``text`` looks like a BLE address ``AA:BB:CC:DD:EE:FF`` (either case)."""
    parts = text.split(":")
    return len(parts) == 6 and all(len(p) == 2 and set(p) <= _HEX for p in parts)


def normalize_uuid(uuid: str) -> str:
    """Lower-case 128-bit form; 16-bit SIG UUIDs ("180d", "0x180D") are expanded."""
    u = uuid.strip().lower().removeprefix("0x")
    if len(u) == 4:
        return f"0000{u}-0000-1000-8000-00805f9b34fb"
    return u


@dataclass
class BleOptions:
    """Which wearables to connect to and how hard to try; :meth:`validate` checks it."""

    # addresses ("AA:BB:CC:DD:EE:FF", kept forever) or advertised local names (exact match)
    # to connect to; empty = every advertiser of `service_uuids`
    devices: list[str] = field(default_factory=list)
    # connect to any advertiser of one of these services; empty (and no devices): the
    # project's GATT service or the standard Heart Rate service
    service_uuids: list[str] = field(default_factory=list)
    # at most this many wearables matched by name/service (a Pi's controller holds ~5-10 LE links)
    max_devices: int = 8
    scan_timeout_s: float = 10.0  # wait for one advertisement per attempt; BlueZ's own default
    connect_timeout_s: float = 60.0  # outer deadline over establish_connection's own retries
    connect_attempts: int = 3  # establish_connection max_attempts per reconnect round
    reconnect_min_s: float = 1.0  # first wait after a drop or failure
    # back-off ceiling: a resident out of range for hours costs almost nothing
    reconnect_max_s: float = 60.0
    # ± fraction of random jitter, so wearables dropped together do not retry in lockstep
    reconnect_jitter: float = 0.2
    # StartNotify + PropertiesChanged (bleak's default, works with every device) rather than
    # AcquireNotify (a socket per characteristic, lower overhead, not supported by all)
    use_start_notify: bool = True
    # a device with the project's service is read only through it; the standard profiles
    # are used for devices without it
    standard_profiles: bool = True
    adapter: str = ""  # "hci0"; empty = BlueZ's default adapter
    queue_size: int = DEFAULT_QUEUE_SIZE  # items buffered for a slow consumer (oldest dropped)
    seed: int | None = None  # jitter RNG seed (tests); None = OS entropy

    def validate(self, key: str = "ble") -> None:
        """Raise :class:`~core.errors.ConfigError` naming the first bad key under ``key``."""
        for name in ("scan_timeout_s", "connect_timeout_s", "reconnect_min_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{value!r} must be a positive number of seconds",
                                  key=f"{key}.{name}")
        if not self.reconnect_max_s >= self.reconnect_min_s:
            raise ConfigError("must be >= reconnect_min_s", key=f"{key}.reconnect_max_s")
        if not 0 <= self.reconnect_jitter < 1:
            raise ConfigError("must be in [0, 1)", key=f"{key}.reconnect_jitter")
        if not 1 <= self.max_devices <= BLE_DEVICES_LIMIT:
            raise ConfigError(f"must be between 1 and {BLE_DEVICES_LIMIT}",
                              key=f"{key}.max_devices")
        for name in ("connect_attempts", "queue_size"):
            require_at_least(getattr(self, name), 1, f"{key}.{name}")

    @property
    def addresses(self) -> tuple[str, ...]:
        """The configured devices that are addresses, upper-case (what BlueZ reports)."""
        return tuple(d.upper() for d in self.devices if is_address(d))

    @property
    def names(self) -> tuple[str, ...]:
        """The configured devices that are advertised names."""
        return tuple(d for d in self.devices if not is_address(d))

    @property
    def match_services(self) -> tuple[str, ...]:
        """Service UUIDs that make an advertiser a match (defaults when nothing is configured)."""
        if self.service_uuids:
            return tuple(normalize_uuid(u) for u in self.service_uuids)
        if self.devices:
            return ()
        from edge.sources.ble.translate import DEFAULT_MATCH_SERVICES  # needs numpy

        return DEFAULT_MATCH_SERVICES


# what a simulated wearable plays: "wrist" the project's full wrist service (BVP, EDA, skin
# temperature, accelerometer), "hr" a stock heart-rate strap (RR intervals and heart rate
# through the standard Heart Rate Service's vocabulary), "mixed" one of each in turn
SIM_KINDS: Final = ("wrist", "hr", "mixed")

# the longest simulated resident (sim.days): a year holds every season of a rhythm
SIM_DAYS_LIMIT: Final = 366
# sim/replay speed beyond which a recording's playback is not meaningful; a simulated
# resident's days may go faster (the hub's processing, not the pacing, is then the limit)
SIM_DAYS_MAX_SPEED: Final = 1_000_000.0

# the largest sim.max_devices accepted: each simulated wearable costs a hub about what a real
# one does, so beyond this a run measures the machine's swapping, not the daemon
SIM_DEVICES_LIMIT: Final = 10_000


@dataclass
class SimOptions:
    """The ``[sim]`` section: what the simulated wearables play, how many, which faults."""

    # a recording (.npz ours or WESAD .pkl) the simulated wearable plays; empty = the demo
    # recording shipped with the demo bundle
    recording: str = ""
    # "wrist" (the full wrist service), "hr" (a stock heart-rate strap: RR intervals, heart
    # rate, contact; the recording's beats, or beats simulated from its labels), or "mixed"
    # (wearable i is a wrist device when i is even, a strap when odd)
    kind: str = "wrist"
    # N > 0: instead of the recording, N days and nights of a simulated resident
    # (firmware_bridge.sim.days: a wrist accelerometer and a light sensor, made as played),
    # for the hub's actigraphy; no model fits it, so it gets no windows. 0: the recording
    days: float = 0.0
    # ...whose nights fragment from this day on (0 = the first day): the injected change a
    # trend should catch; -1: never
    fragment_sleep_from_day: int = 10
    devices: int = 1  # simulated wearables, each its own device and resident
    # the most `devices` accepted: a guard against a typo (--sim-devices 1000) on a hub, 8x
    # the BLE links a Pi's controller holds; capacity benchmarks raise it (<= 10000)
    max_devices: int = 64
    # start wearable i after hop * i / N of data time: real wearables are switched on at
    # random times, so their windows complete spread over a hop; unstaggered, all N windows
    # are cut in the same instant, a burst that no hub sees and that inflates the p99
    stagger: bool = True
    seed: int = 0  # the simulator's noise and fault schedule
    # play the wearables in a child process that writes their frames into a pipe, as a serial
    # port or a radio adapter delivers them: the hub decodes real frames and pays only what a
    # hub of real wearables pays (the capacity benchmark's setting); false: in-process
    process: bool = False
    # with `process`: the CPUs the simulator process runs on (empty: the hub's own)
    process_cpus: list[int] = field(default_factory=list)
    # simulator fault switches, the fields of firmware_bridge.sim.Faults (drop = 0.01,
    # disconnect_at_s = [120.0], clock_drift_ppm = 50, contact_lost_at_s = 300, ...)
    faults: dict[str, Any] = field(default_factory=dict)

    def validate(self, key: str = "sim") -> None:
        """Raise :class:`~core.errors.ConfigError` naming the first bad key under ``key``."""
        if self.kind not in SIM_KINDS:
            raise ConfigError(f"{self.kind!r} is not one of {', '.join(SIM_KINDS)}",
                              key=f"{key}.kind")
        if not 0 <= self.days <= SIM_DAYS_LIMIT:
            raise ConfigError(f"must be between 0 and {SIM_DAYS_LIMIT} (days)", key=f"{key}.days")
        if self.days and self.kind != "wrist":
            raise ConfigError("a simulated resident's days are a wrist wearable: leave "
                              f"{key}.kind at 'wrist'", key=f"{key}.days")
        require_at_least(self.fragment_sleep_from_day, -1, f"{key}.fragment_sleep_from_day")
        if not 1 <= self.max_devices <= SIM_DEVICES_LIMIT:
            raise ConfigError(f"must be between 1 and {SIM_DEVICES_LIMIT}",
                              key=f"{key}.max_devices")
        if not 1 <= self.devices <= self.max_devices:
            raise ConfigError(f"must be between 1 and {key}.max_devices ({self.max_devices}); "
                              f"raise {key}.max_devices for a larger simulation",
                              key=f"{key}.devices")
        if self.process and self.days:
            raise ConfigError("a simulated resident's days play in-process: leave "
                              f"{key}.process off", key=f"{key}.process")
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0
               for c in self.process_cpus):
            raise ConfigError("must be CPU numbers (integers >= 0)", key=f"{key}.process_cpus")
        for name, value in self.faults.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ConfigError("must be a finite number (or a list of them)",
                                      key=f"{key}.faults.{name}")
        if self.faults:
            self.make_faults(key)

    def make_faults(self, key: str = "sim") -> Faults:
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
class ReplayOptions:
    """The ``[replay]`` section: the file to play."""

    file: str = ""  # a WESAD S*.pkl, our .npz recording, or a frame file made by --record-raw

    def validate(self, key: str = "replay") -> None:
        pass  # a missing file is a usage error raised when the replay device is chosen
