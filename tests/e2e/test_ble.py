"""BLE end to end: the REAL bleak client and bleak-retry-connector against an emulated BlueZ.

No radio here, so ``tests/fakes/bluez.py`` serves the ``org.bluez`` object model on a
private ``dbus-daemon`` and bleak is pointed at it with ``DBUS_SYSTEM_BUS_ADDRESS`` (the
``bluez`` fixture). Scanning, connecting, service resolution, StartNotify (notifications
as ``PropertiesChanged(Value)``) and AcquireNotify (a socket passed over D-Bus), link loss
and reconnection all run through bleak's own code; the assertions also check the BlueZ calls the stand-in received, so a test cannot
pass on a code path that skips BlueZ.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from edge.errors import SourceError
from edge.sources.base import ConnectionEvent, SourceItem
from edge.sources.ble import (
    HR_SENSOR_ID,
    RR_SENSOR_ID,
    TEMP_SENSOR_ID,
    BleOptions,
    BleSource,
    scan,
)
from firmware_bridge import gatt
from firmware_bridge.framing import encode_packet
from firmware_bridge.protocol import Event, EventKind, Hello, Samples, TimeSync
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.bluez import (
    BATTERY_LEVEL,
    HEART_RATE_MEASUREMENT,
    TEMPERATURE_MEASUREMENT,
    FakeBlueZ,
    heart_rate_strap,
    multi_sensor_wearable,
)

STRAP = "C0:FF:EE:00:00:01"
STRAP_2 = "C0:FF:EE:00:00:02"
WRIST = "D0:0D:00:00:00:01"
TV = "11:22:33:44:55:66"  # advertises nothing we speak

# Short backoffs and scans so reconnection tests take seconds, not minutes.
FAST = {
    "scan_timeout_s": 2.0,
    "reconnect_min_s": 0.05,
    "reconnect_max_s": 0.5,
    "connect_attempts": 2,
    "connect_timeout_s": 20.0,
    "seed": 1,
}
STEP_S = 10.0  # deadline for any single expected item or state


def hr_value(bpm: int, rr_s: tuple[float, ...] = (), contact: bool | None = True) -> bytes:
    return gatt.encode_heart_rate_measurement(gatt.HeartRateMeasurement(bpm, rr_s, contact))


async def take_until(
    it: AsyncIterator[SourceItem],
    pred: Callable[[SourceItem], bool],
    timeout_s: float = STEP_S,
) -> list[SourceItem]:
    """Items up to and including the first one matching ``pred`` (deadline: ``timeout_s``)."""
    out: list[SourceItem] = []
    async with asyncio.timeout(timeout_s):
        while True:
            item = await anext(it)
            out.append(item)
            if pred(item):
                return out


def is_link(device: str, connected: bool) -> Callable[[SourceItem], bool]:
    return lambda i: (
        i.device == device
        and isinstance(i.message, ConnectionEvent)
        and i.message.connected is connected
    )


def is_samples(device: str, sensor_id: int) -> Callable[[SourceItem], bool]:
    return lambda i: (
        i.device == device and isinstance(i.message, Samples) and i.message.sensor_id == sensor_id
    )


@functools.lru_cache(maxsize=1)
def _recording() -> Any:
    return synthetic_recording(20.0, seed=0)


def wearable_messages(seconds: float, device_id: str = "WE-0001") -> list[Any]:
    """What the project's firmware sends in its first ``seconds``: the wearable simulator's
    own timeline (HELLO, TIME_SYNC, battery EVENT, BVP/EDA/TEMP/ACC sample packets).
    At the default ATT MTU (23) most packets need several fragments.
    """
    sim = SimulatedWearable(_recording(), device_id=device_id, speed=math.inf)
    return [e.message for e in sim.timeline() if e.event == "message" and e.t < seconds]


@pytest.fixture
async def source_factory(bluez: FakeBlueZ) -> AsyncIterator[Callable[..., BleSource]]:
    """Make BleSources that are always stopped before the BlueZ stand-in and bus go away."""
    made: list[BleSource] = []

    def make(**kwargs: Any) -> BleSource:
        src = BleSource(BleOptions(**{**FAST, **kwargs}))
        made.append(src)
        return src

    yield make
    for src in made:
        async with asyncio.timeout(30):
            await src.stop()


async def test_scan_finds_the_strap_and_the_wearable(bluez: FakeBlueZ) -> None:
    bluez.add_peripheral(heart_rate_strap(STRAP))
    bluez.add_peripheral(multi_sensor_wearable(WRIST))
    tv = heart_rate_strap(TV, "Living room TV")
    tv.advertised_uuids = ()
    bluez.add_peripheral(tv)

    found = {w.address: w for w in await scan(0.6)}
    assert set(found) == {STRAP, WRIST, TV}
    assert found[STRAP].name == "HRM-Strap" and found[STRAP].profiles == ("heart-rate",)
    assert found[WRIST].profiles == ("wearable-edge",) and found[WRIST].supported
    assert not found[TV].supported
    assert {w.address for w in await scan(0.6, supported_only=True)} == {STRAP, WRIST}
    # through BlueZ's discovery API, not a shortcut
    assert bluez.count_calls("StartDiscovery") == 2 and bluez.count_calls("StopDiscovery") == 2
    assert not bluez.discovering


async def test_strap_notifications_become_samples_and_events(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    strap = bluez.add_peripheral(heart_rate_strap(STRAP, battery=87))
    source = source_factory(devices=[STRAP])
    await source.start()
    it = aiter(source)

    first = await take_until(it, lambda i: isinstance(i.message, Event))
    kinds = [type(i.message) for i in first]
    assert kinds == [ConnectionEvent, Hello, TimeSync, Event]
    assert all(i.device == STRAP for i in first)
    assert first[0].message == ConnectionEvent(True, "", 1)
    hello = first[1].message
    assert [s.kind for s in hello.sensors] == ["hr"]  # rr: once the strap sends RR
    assert hello.firmware_version == "2.4.1"  # read from Device Information 0x2A26
    assert first[3].message.kind == EventKind.BATTERY and first[3].message.value == 87

    await strap.wait_notifying(BATTERY_LEVEL)  # the last subscription the source makes
    assert strap.is_notifying(HEART_RATE_MEASUREMENT)
    sent = [(72, (0.8203125,)), (74, (0.80078125, 0.8125)), (75, ())]
    for bpm, rr in sent:
        assert strap.notify(HEART_RATE_MEASUREMENT, hr_value(bpm, rr))
    items = await take_until(
        it, lambda i: is_samples(STRAP, HR_SENSOR_ID)(i) and i.message.seq == 2
    )
    hr = [i.message for i in items if is_samples(STRAP, HR_SENSOR_ID)(i)]
    rr = [i.message for i in items if is_samples(STRAP, RR_SENSOR_ID)(i)]
    assert [int(m.raw[0, 0]) for m in hr] == [72, 74, 75]
    (hello_rr,) = [i.message for i in items if isinstance(i.message, Hello)]
    assert [s.kind for s in hello_rr.sensors] == ["hr", "rr"]  # with the first RR intervals
    rr_info = hello_rr.sensor_map()[RR_SENSOR_ID]
    got_rr = np.concatenate([rr_info.to_physical(m.raw)[:, 0] for m in rr]).tolist()
    assert got_rr == [0.8203125, 0.80078125, 0.8125]
    contact = [i.message for i in items if isinstance(i.message, Event)]
    assert contact == [Event(EventKind.CONTACT, 1, contact[0].t_device_us, 1)]

    assert strap.notify(BATTERY_LEVEL, bytes([15]))
    (battery,) = [i.message for i in await take_until(it, lambda i: isinstance(i.message, Event))]
    assert (battery.kind, battery.value) == (EventKind.BATTERY, 15)

    prefix = strap.path
    assert bluez.count_calls("Connect", prefix) == 1
    assert bluez.count_calls("StartNotify", prefix) == 2  # HR + battery
    assert bluez.count_calls("ReadValue", prefix) >= 2  # firmware revision + battery
    assert source.health()["devices"][STRAP]["connected"] is True


async def test_custom_service_fragments_reassemble_into_the_exact_messages(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    wrist = bluez.add_peripheral(multi_sensor_wearable(WRIST, att_mtu=23))
    source = source_factory(devices=[WRIST])
    await source.start()
    it = aiter(source)
    (up,) = await take_until(it, is_link(WRIST, True))
    assert up.message.connects == 1
    await wrist.wait_notifying(gatt.WEARABLE_PACKET_CHAR_UUID)

    sent = wearable_messages(seconds=3.0)
    assert {type(m) for m in sent} == {Hello, TimeSync, Event, Samples} and len(sent) > 20
    fragments = sum(wrist.send_message(m) for m in sent)
    assert fragments > 2 * len(sent)  # packets really were cut to the 20-byte ATT payload
    async with asyncio.timeout(STEP_S):
        received = [await anext(it) for _ in sent]
    assert [i.message for i in received] == sent
    assert all(i.device == WRIST for i in received)
    health = source.health()
    assert health["fragments"] == fragments
    assert health["devices"][WRIST]["gatt_messages"] == len(sent)
    assert health["devices"][WRIST].get("gatt_fragments_lost", 0) == 0
    # the standard profiles of a custom-firmware wearable are not used alongside its service
    assert not wrist.is_notifying(BATTERY_LEVEL)


async def test_disconnect_then_the_source_reconnects_by_itself_and_data_resumes(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    strap = bluez.add_peripheral(heart_rate_strap(STRAP))
    source = source_factory(devices=[STRAP])
    await source.start()
    it = aiter(source)
    await take_until(it, is_link(STRAP, True))
    await strap.wait_notifying(BATTERY_LEVEL)
    strap.notify(HEART_RATE_MEASUREMENT, hr_value(70))
    await take_until(it, is_samples(STRAP, HR_SENSOR_ID))

    # 1. link loss (supervision timeout): BlueZ signals Connected=False, removes the GATT
    # objects; the device keeps advertising and the source reconnects on its own.
    strap.drop_connection()
    down = await take_until(it, is_link(STRAP, False))
    assert down[-1].message == ConnectionEvent(False, "link lost", 1)
    again = await take_until(it, is_link(STRAP, True))
    assert again[-1].message == ConnectionEvent(True, "", 2)
    after = await take_until(it, lambda i: isinstance(i.message, Hello))
    assert after[-1].device == STRAP  # a fresh HELLO after every reconnection
    await strap.wait_notifying(BATTERY_LEVEL)
    strap.notify(HEART_RATE_MEASUREMENT, hr_value(101))
    hr = await take_until(it, is_samples(STRAP, HR_SENSOR_ID))
    assert int(hr[-1].message.raw[0, 0]) == 101
    assert hr[-1].message.seq == 1  # sequence numbers run on across the reconnection

    # 2. out of range long enough that BlueZ forgets the device (InterfacesRemoved); scans
    # find nothing, the source backs off and keeps trying; the wearable comes back.
    strap.go_out_of_range(remove_device=True)
    await take_until(it, is_link(STRAP, False))
    await asyncio.sleep(0.5)
    await bluez.wait_for(lambda: bluez.discovering, 5.0)  # the source is looking for it
    assert not strap.connected and strap.connect_count == 2
    strap.come_back()
    third = await take_until(it, is_link(STRAP, True))
    assert third[-1].message.connects == 3
    await strap.wait_notifying(BATTERY_LEVEL)
    strap.notify(HEART_RATE_MEASUREMENT, hr_value(66))
    hr = await take_until(it, is_samples(STRAP, HR_SENSOR_ID))
    assert int(hr[-1].message.raw[0, 0]) == 66

    assert strap.connect_count == 3 and bluez.count_calls("Connect", strap.path) == 3
    health = source.health()
    assert health["reconnects"] == 2 and health["disconnects"] == 2
    assert health["devices"][STRAP]["connects"] == 3


async def test_several_wearables_at_once_each_its_own_stream(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    straps = [bluez.add_peripheral(heart_rate_strap(a, f"HRM-{a[-2:]}")) for a in (STRAP, STRAP_2)]
    wrist = bluez.add_peripheral(multi_sensor_wearable(WRIST))
    tv = heart_rate_strap(TV, "Living room TV")
    tv.advertised_uuids = ()
    bluez.add_peripheral(tv)
    source = source_factory()  # default match: our service or Heart Rate, by advertisement
    await source.start()
    it = aiter(source)

    seen: set[str] = set()
    async with asyncio.timeout(STEP_S * 2):
        while seen != {STRAP, STRAP_2, WRIST}:
            item = await anext(it)
            if isinstance(item.message, ConnectionEvent) and item.message.connected:
                seen.add(item.device)
    assert TV not in source.devices
    for s in straps:
        await s.wait_notifying(BATTERY_LEVEL)
    await wrist.wait_notifying(gatt.WEARABLE_PACKET_CHAR_UUID)

    straps[0].notify(HEART_RATE_MEASUREMENT, hr_value(61))
    straps[1].notify(HEART_RATE_MEASUREMENT, hr_value(62))
    sent = wearable_messages(seconds=1.0, device_id="WE-0002")
    for m in sent:
        wrist.send_message(m)
    got: dict[str, list[Any]] = {STRAP: [], STRAP_2: [], WRIST: []}
    async with asyncio.timeout(STEP_S):
        while len(got[WRIST]) < len(sent) or not got[STRAP] or not got[STRAP_2]:
            item = await anext(it)
            if isinstance(item.message, Samples) or item.device == WRIST:
                got[item.device].append(item.message)
    assert got[WRIST] == sent
    assert int(got[STRAP][0].raw[0, 0]) == 61 and int(got[STRAP_2][0].raw[0, 0]) == 62

    # one wearable drops: only it reconnects, the others keep streaming meanwhile
    straps[1].drop_connection()
    await take_until(it, is_link(STRAP_2, False))
    straps[0].notify(HEART_RATE_MEASUREMENT, hr_value(63))
    await take_until(it, is_samples(STRAP, HR_SENSOR_ID))
    await take_until(it, is_link(STRAP_2, True))
    assert straps[0].connect_count == 1 and wrist.connect_count == 1
    assert straps[1].connect_count == 2
    # one shared scanner: BlueZ allows a single discovery session per D-Bus client
    senders = {sender for _, m, _, sender in bluez.calls if m == "StartDiscovery"}
    assert len(senders) == 1


async def test_match_by_name_connects_only_that_wearable(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    bluez.add_peripheral(heart_rate_strap(STRAP, "HRM-Grandpa"))
    other = bluez.add_peripheral(heart_rate_strap(STRAP_2, "HRM-Visitor"))
    source = source_factory(devices=["HRM-Grandpa"])
    await source.start()
    it = aiter(source)
    up = await take_until(it, lambda i: isinstance(i.message, ConnectionEvent))
    assert up[-1].device == STRAP
    await asyncio.sleep(0.3)
    assert source.devices == (STRAP,) and other.connect_count == 0


async def test_acquire_notify_path_and_lost_fragments_are_counted_not_fatal(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    """use_start_notify=False: bleak takes BlueZ's AcquireNotify socket path instead."""
    wrist = bluez.add_peripheral(multi_sensor_wearable(WRIST, att_mtu=32))
    source = source_factory(devices=[WRIST], use_start_notify=False)
    await source.start()
    it = aiter(source)
    await take_until(it, is_link(WRIST, True))
    await wrist.wait_notifying(gatt.WEARABLE_PACKET_CHAR_UUID)
    assert bluez.count_calls("AcquireNotify", wrist.path) == 1
    assert bluez.count_calls("StartNotify", wrist.path) == 0

    sent = wearable_messages(seconds=1.0)
    victim = max(range(len(sent)), key=lambda k: len(encode_packet(sent[k])))
    expected = sent[:victim] + sent[victim + 1 :]
    for k, m in enumerate(sent):
        if k != victim:
            wrist.send_message(m)
            continue
        # the radio loses one fragment from the middle of the longest packet
        frags = wrist.fragments(m)
        assert len(frags) >= 3
        for j, f in enumerate(frags):
            if j != 1:
                wrist.notify(gatt.WEARABLE_PACKET_CHAR_UUID, f)
    async with asyncio.timeout(STEP_S):
        got = [await anext(it) for _ in expected]
    assert [i.message for i in got] == expected  # that packet dropped, the rest intact
    stats = source.health()["devices"][WRIST]
    assert stats["gatt_fragments_lost"] == 1 and stats["gatt_packets_incomplete"] == 1


async def test_health_thermometer_indications_become_celsius_samples(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    strap = bluez.add_peripheral(heart_rate_strap(STRAP, thermometer=True))
    source = source_factory(devices=[STRAP])
    await source.start()
    it = aiter(source)
    items = await take_until(it, lambda i: isinstance(i.message, Hello))
    assert [s.kind for s in items[-1].message.sensors] == ["hr", "temp"]
    await strap.wait_notifying(BATTERY_LEVEL)
    assert strap.is_notifying(TEMPERATURE_MEASUREMENT)
    value = gatt.encode_temperature_measurement(gatt.TemperatureMeasurement(98.6, fahrenheit=True))
    assert strap.notify(TEMPERATURE_MEASUREMENT, value)
    (temp,) = [
        i.message
        for i in await take_until(it, is_samples(STRAP, TEMP_SENSOR_ID))
        if isinstance(i.message, Samples)
    ]
    assert temp.raw[0, 0] == pytest.approx(37.0, abs=1e-4)


async def test_stop_announces_the_drop_ends_iteration_and_disconnects(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource]
) -> None:
    strap = bluez.add_peripheral(heart_rate_strap(STRAP))
    source = source_factory(devices=[STRAP])
    await source.start()
    it = aiter(source)
    await take_until(it, is_link(STRAP, True))
    await strap.wait_connected()
    await source.stop()
    rest = [i async for i in it]  # ends: stop() closes the stream
    assert rest[-1].message == ConnectionEvent(False, "stopped", 1)
    await strap.wait_disconnected()
    assert bluez.count_calls("Disconnect", strap.path) >= 1
    await source.stop()  # idempotent


async def test_scan_with_the_adapter_powered_off_says_what_to_do(bluez: FakeBlueZ) -> None:
    bluez.powered = False
    with pytest.raises(SourceError, match="adapter"):
        await scan(0.2)


async def test_a_named_device_without_a_working_scanner_is_not_called_silent(
    bluez: FakeBlueZ, source_factory: Callable[..., BleSource], caplog: pytest.LogCaptureFixture
) -> None:
    """With the adapter off no scan ever runs: the log must say so, not "not advertising"."""
    bluez.powered = False
    bluez.add_peripheral(heart_rate_strap(STRAP, "HRM-Grandpa"))
    source = source_factory(devices=[STRAP], scan_timeout_s=0.3)
    told = asyncio.Event()

    class _Heard(logging.Handler):  # the source logs on the loop's thread: set() is safe
        def emit(self, record: logging.LogRecord) -> None:
            if "cannot scan" in record.getMessage():
                told.set()

    heard = _Heard()
    logging.getLogger("edge.sources.ble.source").addHandler(heard)
    try:
        with caplog.at_level(logging.WARNING, logger="edge.sources.ble.source"):
            await source.start()
            async with asyncio.timeout(10):
                await told.wait()
    finally:
        logging.getLogger("edge.sources.ble.source").removeHandler(heard)
    said = [r.getMessage() for r in caplog.records if STRAP in r.getMessage()]
    assert said and all("bluetoothd" in m and "not advertising" not in m for m in said), said
