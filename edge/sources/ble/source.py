"""BLE wearables in: find, connect, subscribe, translate, reconnect forever.

The ``ble`` source finds wearables with one shared :class:`bleak.BleakScanner` (by address,
advertised name or advertised service UUID), connects to each through
``bleak_retry_connector.establish_connection`` (typed transient errors, retries, BlueZ
service cache: what Home Assistant uses), and subscribes to:

- the project's GATT service (``firmware_bridge.gatt``): notifications carry protocol
  packets, fragmented to the ATT payload; they are reassembled per connection and decoded
  into the same ``Hello`` / ``Samples`` / ``Event`` / ``TimeSync`` messages the serial
  source yields; or, for a device without it,
- the standard profiles a stock strap speaks, translated into that same vocabulary by
  :class:`~edge.sources.ble.translate.StandardProfileTranslator`.

Each device is its own stream keyed by its address. A dropped link is retried forever with
exponential backoff and jitter (:func:`backoff_delay`); every link change is delivered as a
:class:`~edge.sources.base.ConnectionEvent` item, and counted. Callbacks run on the event
loop and only decode and enqueue into the bounded :class:`~edge.sources.base.QueueBridge`.

One scanner serves every device on purpose: BlueZ allows one discovery session per D-Bus
client (a second ``StartDiscovery`` from the same process is ``InProgress``), and bleak
shares one D-Bus connection per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bleak import BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from edge.errors import SourceError
from edge.sources.base import ConnectionEvent, QueueBridge, SensorSource, SourceItem
from edge.sources.ble.scanner import DISCONNECT_TIMEOUT_S
from edge.sources.ble.translate import (
    BATTERY_LEVEL,
    CUSTOM_NOTIFY,
    FIRMWARE_REVISION,
    HEART_RATE_MEASUREMENT,
    TEMPERATURE_MEASUREMENT,
    StandardProfileTranslator,
)
from edge.sources.options import BleOptions, normalize_uuid
from firmware_bridge import gatt
from firmware_bridge.errors import ProtocolError
from firmware_bridge.protocol import Message

__all__ = ["BleSource", "backoff_delay"]

_LOGGER = logging.getLogger(__name__)

# The scanner stops when nobody has needed it for this long, so a hub with all wearables
# connected does not keep the radio scanning (it costs connection-event airtime on a Pi).
SCANNER_IDLE_S: Final = 1.0
# A link that stayed up this long resets the backoff; shorter ones count as failed rounds,
# so a wearable flapping at the edge of range is not reconnected every second all day.
STABLE_LINK_S: Final = 30.0

# Errors the BLE stack raises for a radio/link problem that a later retry may fix. asyncio
# TimeoutError: our deadlines; EOFError and OSError (BrokenPipeError, FileNotFoundError for
# a missing system-bus socket): D-Bus or bluetoothd went away under bleak.
_LINK_ERRORS: Final = (BleakError, TimeoutError, EOFError, OSError)


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
        self.options.validate()
        # read per advertisement: normalized once here
        self._addresses = frozenset(self.options.addresses)
        self._names = frozenset(self.options.names)
        self._match_services = frozenset(self.options.match_services)
        self._bridge = QueueBridge(self.stats, self.options.queue_size)
        self._rng = random.Random(self.options.seed)
        self._links: dict[str, _Link] = {}
        self._scanner_task: asyncio.Task[None] | None = None
        self._scan_error: str | None = None  # why the last scan could not start, if it could not
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
        for address in self.options.addresses:  # in the configured order
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
        matching = bool(self._names or self._match_services)
        dynamic = sum(1 for a in self._links if a not in self._addresses)
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
        if name is not None and name in self._names:
            return True
        return any(normalize_uuid(u) in self._match_services for u in adv.service_uuids)

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
        only_services = list(opts.match_services) if not opts.devices else None
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
                self._scan_error = None
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
                self._scan_error = f"{type(exc).__name__}: {exc}"
                delay = self._backoff(failures)
                _LOGGER.warning("ble: scanner failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        o = self.options
        return backoff_delay(
            failures, o.reconnect_min_s, o.reconnect_max_s, o.reconnect_jitter, self._rng
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
                if self._scan_error is not None:  # no scan ran: the device may be right here
                    await self._retry_later(link, failures, "cannot scan (is bluetoothd running, "
                                            "is the adapter up?)", self._scan_error)
                else:
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
            # a link that held is a fresh start (first retry after ~reconnect_min_s); one that
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

