"""BLE wearables in: scan, connect, subscribe, translate, reconnect forever.

The ``ble`` source finds wearables with one shared :class:`bleak.BleakScanner` (by address,
advertised name or advertised service UUID), connects to each through
``bleak_retry_connector.establish_connection`` (typed transient errors, retries, BlueZ
service cache: what Home Assistant uses), and subscribes to:

- the project's GATT service (``firmware_bridge.gatt``): notifications carry protocol
  packets, fragmented to the ATT payload; they are reassembled per connection and decoded
  into the same ``Hello`` / ``Samples`` / ``Event`` / ``TimeSync`` messages the serial
  source yields; or, for a device without it,
- the standard profiles a stock strap speaks, translated into that same vocabulary by
  :class:`StandardProfileTranslator`: a synthesised ``Hello`` announcing sensors ``hr``
  (bpm) and ``rr`` (s) (and ``temp`` (degC) with a Health Thermometer), ``Samples`` per
  Heart Rate / Temperature Measurement, ``Event`` for battery level and skin contact.

Each device is its own stream keyed by its address. A dropped link is retried forever with
exponential backoff and jitter (:func:`backoff_delay`); every link change is delivered as a
:class:`~edge.sources.base.ConnectionEvent` item, and counted. Callbacks run on the event
loop and only decode and enqueue into the bounded :class:`~edge.sources.base.QueueBridge`.

One scanner serves every device on purpose: BlueZ allows one discovery session per D-Bus
client (a second ``StartDiscovery`` from the same process is ``InProgress``), and bleak
shares one D-Bus connection per event loop.

bleak and bleak-retry-connector are imported here and nowhere else in ``edge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from bleak import BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from edge.errors import SourceError
from edge.sources.base import (
    DEFAULT_QUEUE_SIZE,
    ConnectionEvent,
    QueueBridge,
    SensorSource,
    SourceItem,
)
from firmware_bridge import gatt
from firmware_bridge.errors import ProtocolError
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Event,
    EventKind,
    Hello,
    Message,
    SampleFormat,
    Samples,
    SensorInfo,
    TimeSync,
)

__all__ = [
    "HR_SENSOR_ID",
    "RR_SENSOR_ID",
    "TEMP_SENSOR_ID",
    "BleOptions",
    "BleSource",
    "DiscoveredWearable",
    "StandardProfileTranslator",
    "backoff_delay",
    "format_scan_results",
    "scan",
]

_LOGGER = logging.getLogger(__name__)

# Sensor ids of the synthesised HELLO for a standard-profile device (a u8 each, fixed so a
# recording of a strap always means the same thing).
HR_SENSOR_ID: Final = 0
RR_SENSOR_ID: Final = 1
TEMP_SENSOR_ID: Final = 2
# Heart Rate Measurement arrives about once a second (the profile's typical rate); RR
# intervals are beat-to-beat and are laid on a nominal 1 Hz grid ending at reception.
HR_NOMINAL_RATE_HZ: Final = 1.0
# Health Thermometer sends a measurement per interval the device chooses; 1 s is typical.
TEMP_NOMINAL_RATE_HZ: Final = 1.0
# RR intervals travel in units of 1/1024 s (Heart Rate Service spec); keeping that unit as
# the raw scale makes the translation lossless.
RR_SCALE_S: Final = 1.0 / 1024.0
# The thermometer sends a decimal float (IEEE-11073); float32 keeps its ~7 significant digits
# without the hub inventing a fixed-point scale.
TEMP_FORMAT: Final = SampleFormat.FLOAT32
# A BlueZ "Disconnect" waits up to 10 s for the link to go down; past that we drop the client.
DISCONNECT_TIMEOUT_S: Final = 10.0
# The scanner stops when nobody has needed it for this long, so a hub with all wearables
# connected does not keep the radio scanning (it costs connection-event airtime on a Pi).
SCANNER_IDLE_S: Final = 1.0
# A link that stayed up this long resets the backoff; shorter ones count as failed rounds,
# so a wearable flapping at the edge of range is not reconnected every second all day.
STABLE_LINK_S: Final = 30.0
_ADDRESS_RE: Final = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")

# Errors the BLE stack raises for a radio/link problem that a later retry may fix. asyncio
# TimeoutError: our deadlines; EOFError and OSError (BrokenPipeError, FileNotFoundError for
# a missing system-bus socket): D-Bus or bluetoothd went away under bleak.
_LINK_ERRORS: Final = (BleakError, TimeoutError, EOFError, OSError)


def _norm_uuid(uuid: str) -> str:
    """Lower-case 128-bit form; 16-bit SIG UUIDs ("180d", "0x180D") are expanded."""
    u = uuid.strip().lower().removeprefix("0x")
    if len(u) == 4:
        return f"0000{u}-0000-1000-8000-00805f9b34fb"
    return u


# The characteristics and services this source understands (lower-case 128-bit strings).
CUSTOM_SERVICE: Final = _norm_uuid(gatt.WEARABLE_SERVICE_UUID)
CUSTOM_NOTIFY: Final = _norm_uuid(gatt.WEARABLE_PACKET_CHAR_UUID)
HEART_RATE_SERVICE: Final = _norm_uuid(gatt.HEART_RATE_SERVICE_UUID)
HEART_RATE_MEASUREMENT: Final = _norm_uuid(gatt.HEART_RATE_MEASUREMENT_UUID)
BATTERY_SERVICE: Final = _norm_uuid(gatt.BATTERY_SERVICE_UUID)
BATTERY_LEVEL: Final = _norm_uuid(gatt.BATTERY_LEVEL_UUID)
HEALTH_THERMOMETER_SERVICE: Final = _norm_uuid(gatt.HEALTH_THERMOMETER_SERVICE_UUID)
TEMPERATURE_MEASUREMENT: Final = _norm_uuid(gatt.TEMPERATURE_MEASUREMENT_UUID)
DEVICE_INFORMATION_SERVICE: Final = _norm_uuid(gatt.DEVICE_INFORMATION_SERVICE_UUID)
FIRMWARE_REVISION: Final = _norm_uuid(gatt.FIRMWARE_REVISION_UUID)

# What `scan` reports a device offers, by advertised service UUID.
_PROFILE_NAMES: Final = {
    CUSTOM_SERVICE: "wearable-edge",
    HEART_RATE_SERVICE: "heart-rate",
    BATTERY_SERVICE: "battery",
    HEALTH_THERMOMETER_SERVICE: "thermometer",
    DEVICE_INFORMATION_SERVICE: "device-info",
}
# Services the source can read data from (the others only add battery / identity).
_READABLE_SERVICES: Final = (CUSTOM_SERVICE, HEART_RATE_SERVICE, HEALTH_THERMOMETER_SERVICE)
# With nothing configured, a wearable worth connecting to advertises one of these.
DEFAULT_MATCH_SERVICES: Final = (CUSTOM_SERVICE, HEART_RATE_SERVICE)


@dataclass(frozen=True)
class BleOptions:
    """What to connect to and how hard to try. Typed; validated on construction."""

    # exact addresses ("AA:BB:CC:DD:EE:FF") to connect to; each is kept forever
    addresses: tuple[str, ...] = ()
    # advertised local names to connect to (exact match)
    names: tuple[str, ...] = ()
    # connect to any advertiser of one of these services; empty (and no addresses/names):
    # the project's GATT service or the standard Heart Rate service
    service_uuids: tuple[str, ...] = ()
    # at most this many wearables matched by name/service (a Pi's controller holds ~5-10 LE links)
    max_devices: int = 8
    scan_timeout_s: float = 10.0  # wait for one advertisement per attempt; BlueZ's own default
    connect_timeout_s: float = 60.0  # outer deadline over establish_connection's own retries
    connect_attempts: int = 3  # establish_connection max_attempts per reconnect round
    backoff_base_s: float = 1.0  # first wait after a drop or failure
    backoff_max_s: float = 60.0  # ceiling: a resident out of range for hours costs ~nothing
    # ± fraction of random jitter, so wearables dropped together do not retry in lockstep
    backoff_jitter: float = 0.2
    # StartNotify + PropertiesChanged (bleak's default, works with every device) rather than
    # AcquireNotify (a socket per characteristic, lower overhead, not supported by all)
    use_start_notify: bool = True
    # a device with the project's service is read only through it; the standard profiles
    # are used for devices without it
    standard_profiles: bool = True
    adapter: str | None = None  # "hci0"; None = BlueZ's default adapter
    queue_size: int = DEFAULT_QUEUE_SIZE  # items buffered for a slow consumer (oldest dropped)
    seed: int | None = None  # jitter RNG seed (tests); None = OS entropy

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(a.upper() for a in self.addresses))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "service_uuids", tuple(_norm_uuid(u) for u in self.service_uuids))
        for a in self.addresses:
            if not _ADDRESS_RE.match(a):
                raise SourceError(f"ble.addresses: {a!r} is not a BLE address AA:BB:CC:DD:EE:FF")
        for name, value in (
            ("scan_timeout_s", self.scan_timeout_s),
            ("connect_timeout_s", self.connect_timeout_s),
            ("backoff_base_s", self.backoff_base_s),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise SourceError(f"ble.{name}: {value!r} must be a positive number of seconds")
        if not self.backoff_max_s >= self.backoff_base_s:
            raise SourceError("ble.backoff_max_s: must be >= backoff_base_s")
        if not 0 <= self.backoff_jitter < 1:
            raise SourceError("ble.backoff_jitter: must be in [0, 1)")
        if self.max_devices < 1 or self.connect_attempts < 1 or self.queue_size < 1:
            raise SourceError("ble.max_devices, connect_attempts and queue_size must be >= 1")

    @classmethod
    def from_devices(cls, devices: Iterable[str], **kwargs: Any) -> BleOptions:
        """Split a config's ``devices`` list into addresses and names (what looks like an address is one)."""
        addresses: list[str] = []
        names: list[str] = []
        for d in devices:
            (addresses if _ADDRESS_RE.match(d) else names).append(d)
        return cls(addresses=tuple(addresses), names=tuple(names), **kwargs)

    @property
    def match_services(self) -> tuple[str, ...]:
        """Service UUIDs that make an advertiser a match (defaults when nothing is configured)."""
        if self.service_uuids:
            return self.service_uuids
        if self.addresses or self.names:
            return ()
        return DEFAULT_MATCH_SERVICES


def backoff_delay(
    failures: int, base_s: float, max_s: float, jitter: float, rng: random.Random
) -> float:
    """Exponential backoff with jitter: ``min(max, base·2^(failures-1)) · (1 ± jitter)``.

    ``failures`` counts consecutive failed rounds (1 after the first; a dropped link that
    had been up counts as 1, so the first retry comes after about ``base_s``).
    """
    exp = min(max(failures, 1) - 1, 62)  # 2**62 s is past any ceiling; avoids float overflow
    delay = min(max_s, base_s * float(2**exp))
    return max(0.0, delay * (1.0 + rng.uniform(-jitter, jitter)))


# ---------------------------------------------------------------------------------------------
# Standard profiles -> protocol messages


class StandardProfileTranslator:
    """A stock device's GATT values -> protocol messages, for one device. Pure: no I/O.

    A stock device has no clock the hub can read, so its "device time" is the hub's
    monotonic clock at reception in µs (the same clock as ``SourceItem.received_at``), and
    :meth:`hello` is followed by a :class:`TimeSync` pairing that clock with itself, so the
    daemon's clock mapping is the identity. Sequence numbers continue across reconnections.
    """

    def __init__(
        self,
        device_id: str,
        *,
        heart_rate: bool,
        thermometer: bool,
        firmware_version: str = "",
    ) -> None:
        self.device_id = device_id
        self.heart_rate = heart_rate
        self.thermometer = thermometer
        self.firmware_version = firmware_version
        self._seq: Counter[int] = Counter()  # per sensor id
        self._event_seq = 0
        self._sync_seq = 0
        self._battery: int | None = None
        self._contact: bool | None = None

    def sensors(self) -> tuple[SensorInfo, ...]:
        out = []
        if self.heart_rate:
            out.append(
                SensorInfo(
                    HR_SENSOR_ID, "hr", "bpm", HR_NOMINAL_RATE_HZ, 1, SampleFormat.UINT16, 1.0
                )
            )
            out.append(
                SensorInfo(
                    RR_SENSOR_ID, "rr", "s", HR_NOMINAL_RATE_HZ, 1, SampleFormat.UINT16, RR_SCALE_S
                )
            )
        if self.thermometer:
            out.append(
                SensorInfo(
                    TEMP_SENSOR_ID, "temp", "degC", TEMP_NOMINAL_RATE_HZ, 1, TEMP_FORMAT, 1.0
                )
            )
        return tuple(out)

    def hello(self, now_us: int) -> list[Message]:
        """What a connection starts with: HELLO and a TimeSync (device clock = hub clock)."""
        hello = Hello(self.device_id, self.firmware_version, PROTOCOL_VERSION, self.sensors())
        sync = TimeSync(self._sync_seq, now_us, now_us)
        self._sync_seq = (self._sync_seq + 1) & 0xFFFF
        return [hello, sync]

    def _next_seq(self, sensor_id: int) -> int:
        seq = self._seq[sensor_id]
        self._seq[sensor_id] = (seq + 1) & 0xFFFF
        return seq

    def _event(self, kind: EventKind, now_us: int, value: int) -> Event:
        ev = Event(kind, self._event_seq, now_us, value)
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        return ev

    def heart_rate_measurement(self, data: bytes, now_us: int) -> list[Message]:
        """One 0x2A37 notification -> Samples(hr), Samples(rr) if any, Event(contact) on change.

        Raises :class:`~firmware_bridge.errors.ProtocolError` for a malformed value.
        """
        m = gatt.parse_heart_rate_measurement(bytes(data))
        out: list[Message] = [
            Samples(
                HR_SENSOR_ID, self._next_seq(HR_SENSOR_ID), now_us, np.array([[m.bpm]], np.uint16)
            )
        ]
        if m.rr_s:
            rr = np.rint(np.asarray(m.rr_s, np.float64) / RR_SCALE_S).astype(np.uint16)  # (k,)
            # the last interval ends about now; lay the k values on the nominal grid before it
            step_us = round(1e6 / HR_NOMINAL_RATE_HZ)
            t0 = max(0, now_us - (len(rr) - 1) * step_us)
            out.append(Samples(RR_SENSOR_ID, self._next_seq(RR_SENSOR_ID), t0, rr[:, None]))
        if m.contact is not None and m.contact != self._contact:
            self._contact = m.contact
            out.append(self._event(EventKind.CONTACT, now_us, int(m.contact)))
        return out

    def battery_level(self, data: bytes, now_us: int) -> list[Message]:
        """A 0x2A19 value (read or notified) -> Event(battery) when the level changed."""
        level = gatt.parse_battery_level(bytes(data))
        if level == self._battery:
            return []  # BlueZ echoes a read as a notification too; one event per change
        self._battery = level
        return [self._event(EventKind.BATTERY, now_us, level)]

    def temperature_measurement(self, data: bytes, now_us: int) -> list[Message]:
        """A 0x2A1C indication -> Samples(temp) in °C."""
        m = gatt.parse_temperature_measurement(bytes(data))
        celsius = m.celsius
        if not math.isfinite(celsius):
            return []  # NaN / ±INFINITY: the thermometer says "no valid reading"
        raw = np.array([[celsius]], np.float32)
        return [Samples(TEMP_SENSOR_ID, self._next_seq(TEMP_SENSOR_ID), now_us, raw)]


# ---------------------------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True)
class DiscoveredWearable:
    address: str
    name: str | None
    rssi: int  # dBm of the strongest advertisement seen
    service_uuids: tuple[str, ...]  # as advertised
    profiles: tuple[str, ...]  # what of ours it offers: "wearable-edge", "heart-rate", ...

    @property
    def supported(self) -> bool:
        """Whether ``edge-daemon --device ble`` can read it (judged by its advertisement)."""
        return bool(set(self.service_uuids) & set(_READABLE_SERVICES))


async def scan(
    timeout_s: float = 5.0,
    *,
    service_uuids: Sequence[str] = (),
    adapter: str | None = None,
    supported_only: bool = False,
) -> list[DiscoveredWearable]:
    """Listen for advertisements for ``timeout_s``; nearby devices, strongest first.

    Only what advertisements say (a stock strap usually advertises Heart Rate alone; its
    battery service shows up after connecting). ``supported_only`` keeps the devices the
    ``ble`` source can read.
    """
    seen: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    uuids = [_norm_uuid(u) for u in service_uuids] or None

    strongest: dict[str, int] = {}

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        address = device.address.upper()
        seen[address] = (device, adv)  # the latest advertisement has the freshest data
        strongest[address] = max(adv.rssi, strongest.get(address, adv.rssi))

    scanner = BleakScanner(
        detection_callback=on_adv,
        service_uuids=uuids,
        bluez={"adapter": adapter} if adapter else {},
    )
    try:
        async with asyncio.timeout(timeout_s + DISCONNECT_TIMEOUT_S):
            await scanner.start()
            try:
                await asyncio.sleep(timeout_s)
            finally:
                await scanner.stop()
    except (BleakError, EOFError, OSError) as exc:
        raise SourceError(
            f"BLE scan failed: {exc} (is bluetoothd running and the adapter up?)"
        ) from exc
    out = []
    for address, (device, adv) in seen.items():
        advertised = tuple(_norm_uuid(u) for u in adv.service_uuids)
        found = DiscoveredWearable(
            address=address,
            name=adv.local_name or device.name,
            rssi=strongest[address],
            service_uuids=advertised,
            profiles=tuple(_PROFILE_NAMES[u] for u in advertised if u in _PROFILE_NAMES),
        )
        if found.supported or not supported_only:
            out.append(found)
    out.sort(key=lambda w: (-w.rssi, w.address))
    return out


def format_scan_results(results: Sequence[DiscoveredWearable]) -> str:
    """A plain-text table for ``edge-daemon scan`` (the CLI prints it)."""
    if not results:
        return "no BLE devices found (is the wearable awake and in range?)"
    rows = [("ADDRESS", "RSSI", "NAME", "OFFERS", "USABLE")]
    for w in results:
        rows.append(
            (
                w.address,
                f"{w.rssi} dBm",
                w.name or "-",
                ", ".join(w.profiles) or "-",
                "yes" if w.supported else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# ---------------------------------------------------------------------------------------------
# The source


@dataclass
class _Link:
    """One wearable: its connection state and per-device counters."""

    address: str
    name: str | None = None
    client: BleakClientWithServiceCache | None = None
    task: asyncio.Task[None] | None = None
    waiter: asyncio.Future[BLEDevice] | None = None  # set while waiting for an advertisement
    connected: bool = False
    profile: str = ""  # "custom" or "standard", once known
    rssi: int | None = None
    counters: Counter[str] = field(default_factory=Counter)
    translator: StandardProfileTranslator | None = None
    decoder: gatt.NotificationDecoder | None = None  # this connection's (custom profile)
    decoded: Counter[str] = field(default_factory=Counter)  # stats of earlier connections

    def new_decoder(self) -> gatt.NotificationDecoder:
        self.retire_decoder()
        self.decoder = gatt.NotificationDecoder()
        return self.decoder

    def retire_decoder(self) -> None:
        if self.decoder is not None:
            self.decoded.update(self.decoder.stats)
            self.decoder = None

    def decoder_stats(self) -> Counter[str]:
        """Reassembly/decoding counters (lost fragments, CRC rejects ...) over all connections."""
        total = Counter(self.decoded)
        if self.decoder is not None:
            total.update(self.decoder.stats)
        return total

    def health(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "profile": self.profile,
            "rssi": self.rssi,
            **self.counters,
            **{f"gatt_{k}": v for k, v in self.decoder_stats().items()},
        }


class BleSource(SensorSource):
    """Wearables over BLE (BlueZ via bleak), each its own stream keyed by its address."""

    kind = "ble"

    def __init__(self, options: BleOptions | None = None) -> None:
        super().__init__()
        self.options = options or BleOptions()
        self._bridge = QueueBridge(self.stats, self.options.queue_size)
        self._rng = random.Random(self.options.seed)
        self._links: dict[str, _Link] = {}
        self._scanner_task: asyncio.Task[None] | None = None
        self._scan_needed = asyncio.Event()
        self._running = False
        self._stopped = False
        self._failure: BaseException | None = None

    # -- SensorSource ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        if self._stopped:
            raise SourceError("a stopped BleSource cannot be restarted; make a new one")
        self._running = True
        for address in self.options.addresses:
            self._add_link(address, None)
        self._scanner_task = self._spawn(self._scan_loop(), "ble-scanner")
        self._update_scan_needed()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        tasks = [link.task for link in self._links.values() if link.task is not None]
        if self._scanner_task is not None:
            tasks.append(self._scanner_task)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=DISCONNECT_TIMEOUT_S)
            if pending:
                self.stats.inc("stop_timeouts", len(pending))
        for link in list(self._links.values()):
            await self._close_client(link, "stopped")
        self._bridge.put(None)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SourceItem]:
        async for item in self._bridge.iterate():
            yield item
        if self._failure is not None:
            raise SourceError(f"BLE source failed: {self._failure!r}") from self._failure

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """The scanner and link loops run until cancelled; anything else is a bug: end loudly."""
        if task.cancelled() or self._stopped:
            return
        exc = task.exception()
        _LOGGER.error("ble: %s ended unexpectedly", task.get_name(), exc_info=exc)
        self.stats.inc("task_failures")
        if self._failure is None:
            self._failure = exc or SourceError(f"{task.get_name()} returned")
            self._bridge.put(None)

    def health(self) -> dict[str, Any]:
        return {
            **super().health(),
            "queue": self._bridge.qsize(),
            "scanning": self._scan_needed.is_set(),
            "devices": {a: link.health() for a, link in self._links.items()},
        }

    @property
    def devices(self) -> tuple[str, ...]:
        """Addresses of the wearables this source holds (configured or matched so far)."""
        return tuple(self._links)

    # -- plumbing --------------------------------------------------------------------------

    def _emit(self, device: str, message: Any, received_at: float | None = None) -> None:
        at = time.monotonic() if received_at is None else received_at
        self._bridge.put(SourceItem(device, at, message))

    def _add_link(self, address: str, name: str | None) -> _Link:
        link = _Link(address=address, name=name)
        self._links[address] = link
        link.task = self._spawn(self._run_link(link), f"ble-{address}")
        return link

    def _wants_new_devices(self) -> bool:
        matching = bool(self.options.names or self.options.match_services)
        dynamic = sum(1 for a in self._links if a not in self.options.addresses)
        return matching and dynamic < self.options.max_devices

    def _update_scan_needed(self) -> None:
        waiting = any(
            link.waiter is not None and not link.waiter.done() for link in self._links.values()
        )
        if self._running and (waiting or self._wants_new_devices()):
            self._scan_needed.set()
        else:
            self._scan_needed.clear()

    def _matches(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        name = adv.local_name or device.name
        if name is not None and name in self.options.names:
            return True
        advertised = {_norm_uuid(u) for u in adv.service_uuids}
        return bool(advertised & set(self.options.match_services))

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """Scanner callback (event loop): hand the device to its waiting link, or adopt it."""
        address = device.address.upper()
        self.stats.inc("advertisements")
        link = self._links.get(address)
        if link is None:
            if not (self._running and self._wants_new_devices() and self._matches(device, adv)):
                return
            _LOGGER.info("ble: found %s (%s)", address, adv.local_name or device.name)
            link = self._add_link(address, adv.local_name or device.name)
            link.rssi = adv.rssi
            link.waiter = asyncio.get_running_loop().create_future()
        link.rssi = adv.rssi
        if link.name is None:
            link.name = adv.local_name or device.name
        if link.waiter is not None and not link.waiter.done():
            link.waiter.set_result(device)
            self._update_scan_needed()

    async def _scan_loop(self) -> None:
        """Run the one shared scanner whenever a link waits for its device (or matching is on)."""
        opts = self.options
        only_services = list(opts.match_services) if not (opts.addresses or opts.names) else None
        failures = 0
        while True:
            await self._scan_needed.wait()
            scanner = BleakScanner(
                detection_callback=self._on_advertisement,
                service_uuids=only_services,
                bluez={"adapter": opts.adapter} if opts.adapter else {},
            )
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await scanner.start()
                self.stats.inc("scans")
                failures = 0
                try:
                    idle_since: float | None = None
                    while True:
                        await asyncio.sleep(SCANNER_IDLE_S / 4)
                        if self._scan_needed.is_set():
                            idle_since = None
                        elif idle_since is None:
                            idle_since = time.monotonic()
                        elif time.monotonic() - idle_since >= SCANNER_IDLE_S:
                            break
                finally:
                    with contextlib.suppress(*_LINK_ERRORS):
                        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                            await scanner.stop()
            except _LINK_ERRORS as exc:
                failures += 1
                self.stats.inc("scanner_errors")
                delay = self._backoff(failures)
                _LOGGER.warning("ble: scanner failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        o = self.options
        return backoff_delay(
            failures, o.backoff_base_s, o.backoff_max_s, o.backoff_jitter, self._rng
        )

    async def _wait_for_advertisement(self, link: _Link) -> BLEDevice | None:
        if link.waiter is None:
            link.waiter = asyncio.get_running_loop().create_future()
        self._update_scan_needed()
        try:
            async with asyncio.timeout(self.options.scan_timeout_s):
                return await link.waiter
        except TimeoutError:
            return None
        finally:
            link.waiter = None
            self._update_scan_needed()

    async def _retry_later(self, link: _Link, failures: int, what: str, exc: object) -> None:
        delay = self._backoff(failures)
        # warn once per streak; a resident away for hours must not flood the journal
        level = logging.WARNING if failures <= 1 else logging.DEBUG
        _LOGGER.log(
            level, "ble %s: %s (%s); retry %d in %.1f s", link.address, what, exc, failures, delay
        )
        await asyncio.sleep(delay)

    async def _run_link(self, link: _Link) -> None:
        """Find, connect, subscribe, wait for the drop; again, forever (until stop)."""
        failures = 0  # consecutive failed rounds, for the backoff
        while True:
            device = await self._wait_for_advertisement(link)
            if device is None:
                failures += 1
                self._count(link, "scan_timeouts")
                await self._retry_later(link, failures, "not advertising", "scan timeout")
                continue
            lost = asyncio.Event()

            def on_disconnected(
                _client: BleakClientWithServiceCache, lost: asyncio.Event = lost
            ) -> None:
                lost.set()

            try:
                async with asyncio.timeout(self.options.connect_timeout_s):
                    client = await establish_connection(
                        BleakClientWithServiceCache,
                        device,
                        link.name or link.address,
                        disconnected_callback=on_disconnected,
                        max_attempts=self.options.connect_attempts,
                    )
            except _LINK_ERRORS as exc:
                failures += 1
                self._count(link, "connect_failures")
                await self._retry_later(link, failures, "connect failed", exc)
                continue
            self._link_up(link, client)
            try:
                async with asyncio.timeout(self.options.connect_timeout_s):
                    await self._subscribe(link, client)
            except (*_LINK_ERRORS, ProtocolError, SourceError) as exc:
                failures += 1
                self._count(link, "subscribe_failures")
                await self._close_client(link, f"subscribe failed: {exc}")
                await self._retry_later(link, failures, "subscribe failed", exc)
                continue
            up_since = time.monotonic()
            await lost.wait()
            await self._close_client(link, "link lost")
            # a link that held is a fresh start (first retry after ~backoff_base_s); one that
            # dropped at once (a wearable at the edge of range) keeps backing off
            stable = time.monotonic() - up_since >= STABLE_LINK_S
            failures = 1 if stable else failures + 1
            await self._retry_later(link, failures, "link lost", "reconnecting")

    def _count(self, link: _Link, key: str) -> None:
        link.counters[key] += 1
        self.stats.inc(key)

    def _link_up(self, link: _Link, client: BleakClientWithServiceCache) -> None:
        link.client = client
        link.connected = True
        self._count(link, "connects")
        if link.counters["connects"] > 1:
            self._count(link, "reconnects")
        _LOGGER.info("ble %s: connected (#%d)", link.address, link.counters["connects"])
        self._emit(link.address, ConnectionEvent(True, "", link.counters["connects"]))

    async def _close_client(self, link: _Link, reason: str) -> None:
        """Disconnect (if still connected) and announce the drop once."""
        client, link.client = link.client, None
        was_connected, link.connected = link.connected, False
        link.retire_decoder()
        if was_connected:
            self._count(link, "disconnects")
            self._emit(link.address, ConnectionEvent(False, reason, link.counters["connects"]))
        if client is not None:
            with contextlib.suppress(*_LINK_ERRORS):
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await client.disconnect()

    async def _subscribe(self, link: _Link, client: BleakClientWithServiceCache) -> None:
        services = client.services
        notify_args: dict[str, Any] = {"bluez": {"use_start_notify": self.options.use_start_notify}}
        custom = services.get_characteristic(CUSTOM_NOTIFY)
        if custom is not None:
            link.profile = "custom"
            # one decoder per connection: a packet cut by a drop is never glued to the next
            decoder = link.new_decoder()

            def on_custom(_char: BleakGATTCharacteristic, data: bytearray) -> None:
                now = time.monotonic()
                self.stats.inc("fragments")
                for message in decoder.feed(bytes(data)):
                    self._emit(link.address, message, now)

            await client.start_notify(custom, on_custom, **notify_args)
            return
        if not self.options.standard_profiles:
            raise SourceError(f"{link.address} lacks the wearable-edge GATT service")
        hr = services.get_characteristic(HEART_RATE_MEASUREMENT)
        temp = services.get_characteristic(TEMPERATURE_MEASUREMENT)
        battery = services.get_characteristic(BATTERY_LEVEL)
        if hr is None and temp is None:
            raise SourceError(
                f"{link.address} offers neither the wearable-edge service, Heart Rate nor "
                "Health Thermometer"
            )
        link.profile = "standard"
        if link.translator is None:
            link.translator = StandardProfileTranslator(
                link.address,
                heart_rate=hr is not None,
                thermometer=temp is not None,
                firmware_version=await self._read_text(client, FIRMWARE_REVISION),
            )
        tr = link.translator
        now = time.monotonic()
        for m in tr.hello(round(now * 1e6)):
            self._emit(link.address, m, now)

        def handler(fn: Callable[[bytes, int], list[Message]], what: str) -> Callable[..., None]:
            def on_value(_char: BleakGATTCharacteristic, data: bytearray) -> None:
                now = time.monotonic()
                try:
                    messages = fn(bytes(data), round(now * 1e6))
                except ProtocolError as exc:
                    self._count(link, f"rejected_{what}_{exc.reason}")
                    return
                self.stats.inc("notifications")
                for m in messages:
                    self._emit(link.address, m, now)

            return on_value

        if hr is not None:
            await client.start_notify(hr, handler(tr.heart_rate_measurement, "hr"), **notify_args)
        if temp is not None:
            await client.start_notify(
                temp, handler(tr.temperature_measurement, "temp"), **notify_args
            )
        if battery is not None:
            on_battery = handler(tr.battery_level, "battery")
            if "read" in battery.properties:
                with contextlib.suppress(BleakError):
                    on_battery(battery, await client.read_gatt_char(battery))
            if {"notify", "indicate"} & set(battery.properties):
                await client.start_notify(battery, on_battery, **notify_args)

    async def _read_text(self, client: BleakClientWithServiceCache, uuid: str) -> str:
        char = client.services.get_characteristic(uuid)
        if char is None or "read" not in char.properties:
            return ""
        try:
            return (
                bytes(await client.read_gatt_char(char)).decode("utf-8", "replace").strip("\x00 ")
            )
        except BleakError:
            return ""
