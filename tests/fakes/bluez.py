"""A BlueZ stand-in: the ``org.bluez`` D-Bus object model on a private ``dbus-daemon``.

Stands in for ``bluetoothd`` and the radio behind it, so that the REAL bleak client
(``BleakScanner``, ``BleakClient``, ``bleak_retry_connector.establish_connection``) runs its
own code end to end on a machine without Bluetooth: scanning, connecting, service
resolution, notifications, disconnection and reconnection all travel over a real D-Bus
(Debian's ``dbus-daemon``) as the same method calls and signals BlueZ uses.

What is modelled (as BlueZ 5.6x does it, see ``doc/org.bluez.*.rst`` in BlueZ):

* ``/org/bluez/hci0`` ``Adapter1``: ``Powered``, ``Roles`` (with ``"central"``),
  ``SetDiscoveryFilter`` (``UUIDs`` honoured), ``StartDiscovery`` / ``StopDiscovery`` with
  one discovery session per D-Bus client (a second ``StartDiscovery`` from the same client
  is ``org.bluez.Error.InProgress``, as in BlueZ), ``RemoveDevice``.
* ``Device1`` objects that appear (``InterfacesAdded``) when discovery sees an in-range
  peripheral, then report each "advertisement" as an ``RSSI`` ``PropertiesChanged`` every
  :data:`ADV_INTERVAL_S` while discovering. ``Connect`` / ``Disconnect``; ``Connected`` and
  ``ServicesResolved`` change by ``PropertiesChanged``; GATT objects are exported on connect
  and removed (``InterfacesRemoved``) on disconnect, as BlueZ does for an unbonded device.
* ``GattService1`` / ``GattCharacteristic1`` at BlueZ's exact paths
  (``.../dev_AA_BB_CC_DD_EE_FF/service000a/char000b``): ``UUID``, ``Flags``, ``Service``,
  ``Device``, ``Value``, ``Notifying``, ``MTU``; ``ReadValue`` (which, like BlueZ, also
  emits ``PropertiesChanged(Value)``), ``WriteValue``, ``StartNotify`` / ``StopNotify``
  (one session per D-Bus client; notifications are ``PropertiesChanged(Value)``), and on
  characteristics that can notify, ``NotifyAcquired`` + ``AcquireNotify`` (a
  ``SOCK_SEQPACKET`` socket passed over D-Bus; each notification is one datagram). bleak
  3.1 uses ``StartNotify`` unless ``start_notify(..., bluez={"use_start_notify": False})``.

What is not modelled: pairing and bonding, BR/EDR, descriptors, ``AcquireWrite``, passive
scanning (``AdvertisementMonitor1``), advertising data other than name, service UUIDs and
RSSI, a client closing an acquired notify socket early (see ``_acquire_notify``), and the
radio itself (every notification is delivered).

Test controls (:class:`FakePeripheral`): :meth:`~FakePeripheral.notify`,
:meth:`~FakePeripheral.drop_connection` (link loss, as a supervision timeout looks to
BlueZ), :meth:`~FakePeripheral.go_out_of_range` (stops advertising, and by default the
device object is removed as BlueZ does for a temporary device), :meth:`~FakePeripheral.come_back`,
and ``wait_*`` helpers with deadlines. Every method call received is logged in
:attr:`FakeBlueZ.calls`, so a test can prove which BlueZ API bleak used.

Usage::

    async with private_system_bus(tmp_path) as address:         # a real dbus-daemon
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address          # what bleak reads
        async with FakeBlueZ(address) as bluez:
            strap = bluez.add_peripheral(heart_rate_strap("C0:FF:EE:00:00:01"))
            ...                                                  # bleak code under test
            strap.notify(HEART_RATE_MEASUREMENT, b"\\x10\\x48\\x00\\x04")
        await close_bleak_manager()                              # before the loop closes

The ``bluez`` / ``system_bus`` pytest fixtures in ``tests/conftest.py`` do the set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import random
import shutil
import socket
import struct
import tempfile
import termios
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Final, Self

from dbus_fast import BusType, DBusError, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.service import ServiceInterface, dbus_property
from dbus_fast.service import dbus_method as method

from firmware_bridge import gatt
from firmware_bridge.framing import encode_packet
from firmware_bridge.protocol import Message as ProtocolMessage

__all__ = [
    "ADAPTER_PATH",
    "ADV_INTERVAL_S",
    "BATTERY_LEVEL",
    "BATTERY_SERVICE",
    "BLUEZ_SERVICE",
    "DEVICE_INFORMATION_SERVICE",
    "FIRMWARE_REVISION",
    "HEALTH_THERMOMETER_SERVICE",
    "HEART_RATE_MEASUREMENT",
    "HEART_RATE_SERVICE",
    "MANUFACTURER_NAME",
    "MODEL_NUMBER",
    "TEMPERATURE_MEASUREMENT",
    "CharacteristicSpec",
    "FakeBlueZ",
    "FakePeripheral",
    "PeripheralSpec",
    "ServiceSpec",
    "bus_config",
    "close_bleak_manager",
    "heart_rate_strap",
    "multi_sensor_wearable",
    "private_system_bus",
    "sig_uuid",
]

_LOGGER = logging.getLogger(__name__)

BLUEZ_SERVICE: Final = "org.bluez"
ADAPTER_PATH: Final = "/org/bluez/hci0"
# Real advertisers send every 20 ms - 10 s and BlueZ reports each one; 50 ms keeps scans in
# tests short while still being a stream of updates rather than a single event.
ADV_INTERVAL_S: Final = 0.05
# BlueZ takes a few ms to tens of ms between "Connected" and "ServicesResolved" (the GATT
# discovery); a small non-zero delay keeps the client's wait-for-resolution path exercised.
SERVICE_RESOLUTION_S: Final = 0.01
# An LE connection attempt to an absent device fails after the controller's create-connection
# timeout (seconds on real hardware); shortened so reconnect tests stay fast.
CONNECT_FAIL_S: Final = 0.2
# How long dbus-daemon may take to start and print its address on a loaded 2-core machine.
DAEMON_START_TIMEOUT_S: Final = 10.0
# Unread bytes allowed in the stand-in's bus socket before the radio waits: far below the
# kernel's ~208 KiB default send buffer, so dbus-fast never meets EAGAIN (see _Radio).
_BUS_BACKLOG: Final = 64 * 1024
_RADIO_POLL_S: Final = 0.001  # how often a waiting radio re-checks (1 ms: a BLE connection event)
# sun_path is 108 bytes on Linux; longer tmp_path-based socket paths fall back to /tmp.
_MAX_SOCKET_PATH: Final = 100

_ERR: Final = "org.bluez.Error"


def sig_uuid(short: int) -> str:
    """The full 128-bit form of a Bluetooth SIG 16-bit UUID, lower case as BlueZ reports it."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


# Bluetooth SIG assigned numbers, written out here independently of firmware_bridge.gatt so
# the stand-in is a second, independent source (a wrong constant there fails a test here).
HEART_RATE_SERVICE: Final = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT: Final = sig_uuid(0x2A37)
BODY_SENSOR_LOCATION: Final = sig_uuid(0x2A38)
BATTERY_SERVICE: Final = sig_uuid(0x180F)
BATTERY_LEVEL: Final = sig_uuid(0x2A19)
DEVICE_INFORMATION_SERVICE: Final = sig_uuid(0x180A)
MANUFACTURER_NAME: Final = sig_uuid(0x2A29)
MODEL_NUMBER: Final = sig_uuid(0x2A24)
FIRMWARE_REVISION: Final = sig_uuid(0x2A26)
HEALTH_THERMOMETER_SERVICE: Final = sig_uuid(0x1809)
TEMPERATURE_MEASUREMENT: Final = sig_uuid(0x2A1C)

# D-Bus signatures dbus_fast.annotations has no alias for.
DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusFdAndMtu = Annotated[tuple[int, int], DBusSignature("hq")]


# ---------------------------------------------------------------------------------------------
# The bus


def bus_config(socket_path: Path) -> str:
    """A minimal system-bus configuration: one unix socket, EXTERNAL auth, allow everything."""
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket_path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


def _prepare_bus_dir(directory: Path) -> tuple[Path, str | None]:
    """Write the bus config; returns it and a scratch dir to delete (if the path was long)."""
    directory.mkdir(parents=True, exist_ok=True)
    socket_dir = directory
    scratch: str | None = None
    if len(str(directory / "system_bus_socket")) > _MAX_SOCKET_PATH:
        scratch = tempfile.mkdtemp(prefix="bz-")
        socket_dir = Path(scratch)
    config = directory / "dbus-system.conf"
    config.write_text(bus_config(socket_dir / "system_bus_socket"))
    return config, scratch


@contextlib.asynccontextmanager
async def private_system_bus(directory: Path) -> AsyncIterator[str]:
    """Run a private ``dbus-daemon`` on a unix socket under ``directory``; yield its address.

    Torn down with deadlines: SIGTERM, then SIGKILL after 5 s.
    """
    exe = shutil.which("dbus-daemon")
    if exe is None:
        raise RuntimeError("dbus-daemon not found: apt-get install -y dbus (.ci/run does)")
    config, scratch = _prepare_bus_dir(directory)
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--config-file={config}",
        "--nofork",
        "--nopidfile",
        "--print-address=1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(DAEMON_START_TIMEOUT_S):
            line = await proc.stdout.readline()
        address = line.decode().strip()
        if not address.startswith("unix:"):
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        err = await proc.stderr.read()
            raise RuntimeError(f"dbus-daemon did not start: {address!r} {err.decode()!r}")
        yield address
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5.0):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                async with asyncio.timeout(5.0):
                    await proc.wait()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


async def close_bleak_manager(timeout_s: float = 5.0) -> None:
    """Close the BlueZ manager bleak keeps per event loop, before the loop closes.

    bleak holds one D-Bus connection per loop in a module-level dict and only releases it
    when a *later* loop asks for a manager; pytest gives each test its own loop, so without
    this the socket would outlive its loop and surface as an unraisable ResourceWarning in
    some later test. Reaches into bleak's private state on purpose: there is no public API.
    """
    from bleak.backends.bluezdbus import manager as bleak_manager

    loop = asyncio.get_running_loop()
    instance = bleak_manager._global_instances.pop(loop, None)
    if instance is None or instance._bus is None:
        return
    bus = instance._bus
    watcher = instance._bus_watcher_task
    bus.disconnect()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await bus.wait_for_disconnect()
    if watcher is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await watcher


# ---------------------------------------------------------------------------------------------
# What a peripheral offers


@dataclass
class CharacteristicSpec:
    uuid: str  # full 128-bit, lower case
    flags: tuple[str, ...]  # BlueZ flag names: "read", "write", "notify", "indicate", ...
    value: bytes = b""  # initial value (what a read returns until changed)


@dataclass
class ServiceSpec:
    uuid: str
    characteristics: list[CharacteristicSpec]
    primary: bool = True


@dataclass
class PeripheralSpec:
    address: str  # "AA:BB:CC:DD:EE:FF"
    name: str  # advertised local name; also the Alias
    services: list[ServiceSpec]
    advertised_uuids: tuple[str, ...]  # service UUIDs in the advertisement
    rssi: int = -60  # dBm, jittered by ±3 on every advertisement
    att_mtu: int = 23  # negotiated ATT_MTU reported as the characteristics' MTU property
    address_type: str = "public"


def heart_rate_strap(
    address: str,
    name: str = "HRM-Strap",
    *,
    battery: int = 87,
    thermometer: bool = False,
    rssi: int = -58,
) -> PeripheralSpec:
    """A stock chest strap: Heart Rate (notify), Battery (read+notify), Device Information.

    ``thermometer=True`` adds a Health Thermometer service (Temperature Measurement, indicate).
    """
    services = [
        ServiceSpec(
            HEART_RATE_SERVICE,
            [
                CharacteristicSpec(HEART_RATE_MEASUREMENT, ("notify",)),
                CharacteristicSpec(BODY_SENSOR_LOCATION, ("read",), b"\x01"),  # 1 = chest
            ],
        ),
        ServiceSpec(
            BATTERY_SERVICE,
            [CharacteristicSpec(BATTERY_LEVEL, ("read", "notify"), bytes([battery]))],
        ),
        ServiceSpec(
            DEVICE_INFORMATION_SERVICE,
            [
                CharacteristicSpec(MANUFACTURER_NAME, ("read",), b"Acme Sensors"),
                CharacteristicSpec(MODEL_NUMBER, ("read",), b"HRM-1"),
                CharacteristicSpec(FIRMWARE_REVISION, ("read",), b"2.4.1"),
            ],
        ),
    ]
    if thermometer:
        services.append(
            ServiceSpec(
                HEALTH_THERMOMETER_SERVICE,
                [CharacteristicSpec(TEMPERATURE_MEASUREMENT, ("indicate",))],
            )
        )
    return PeripheralSpec(
        address=address,
        name=name,
        services=services,
        advertised_uuids=(HEART_RATE_SERVICE,),
        rssi=rssi,
        att_mtu=23,
    )


def multi_sensor_wearable(
    address: str,
    name: str = "WE-Wrist",
    *,
    att_mtu: int = 64,
    battery: int = 95,
    rssi: int = -66,
) -> PeripheralSpec:
    """A wearable running the project's firmware: its GATT service (packet notify + command
    write), Battery and Device Information. ``att_mtu`` sets how packets are fragmented
    (:meth:`FakePeripheral.send_message` cuts at ``att_mtu - 3``).
    """
    return PeripheralSpec(
        address=address,
        name=name,
        services=[
            ServiceSpec(
                gatt.WEARABLE_SERVICE_UUID,
                [
                    CharacteristicSpec(gatt.WEARABLE_PACKET_CHAR_UUID, ("notify",)),
                    CharacteristicSpec(
                        gatt.WEARABLE_COMMAND_CHAR_UUID, ("write", "write-without-response")
                    ),
                ],
            ),
            ServiceSpec(
                BATTERY_SERVICE,
                [CharacteristicSpec(BATTERY_LEVEL, ("read", "notify"), bytes([battery]))],
            ),
            ServiceSpec(
                DEVICE_INFORMATION_SERVICE,
                [
                    CharacteristicSpec(MANUFACTURER_NAME, ("read",), b"wearable-edge"),
                    CharacteristicSpec(FIRMWARE_REVISION, ("read",), b"0.1.0"),
                ],
            ),
        ],
        advertised_uuids=(gatt.WEARABLE_SERVICE_UUID,),
        rssi=rssi,
        att_mtu=att_mtu,
    )


# ---------------------------------------------------------------------------------------------
# D-Bus interfaces (thin: state lives in the model objects below)


class _Adapter1(ServiceInterface):
    def __init__(self, bluez: FakeBlueZ) -> None:
        super().__init__("org.bluez.Adapter1")
        self._bluez = bluez

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return "00:1A:7D:DA:71:13"

    @dbus_property(PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "wearable-edge-hub"

    @dbus_property(PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "wearable-edge-hub"

    @dbus_property(PropertyAccess.READ)
    def Powered(self) -> DBusBool:
        return self._bluez.powered

    @dbus_property(PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Pairable(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return bool(self._bluez._discovery_sessions)

    @dbus_property(PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_property(PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return []

    @method()
    def SetDiscoveryFilter(self, properties: DBusDict):  # type: ignore[no-untyped-def]
        self._bluez._set_discovery_filter(properties)

    @method()
    def StartDiscovery(self):  # type: ignore[no-untyped-def]
        self._bluez._start_discovery()

    @method()
    def StopDiscovery(self):  # type: ignore[no-untyped-def]
        self._bluez._stop_discovery()

    @method()
    def RemoveDevice(self, device: DBusObjectPath):  # type: ignore[no-untyped-def]
        self._bluez._remove_device_path(device)

    @method()
    def GetDiscoveryFilters(self) -> DBusStrList:
        return [
            "UUIDs",
            "RSSI",
            "Pathloss",
            "Transport",
            "DuplicateData",
            "Discoverable",
            "Pattern",
        ]


class _Device1(ServiceInterface):
    def __init__(self, peripheral: FakePeripheral) -> None:
        super().__init__("org.bluez.Device1")
        self._p = peripheral

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._p.spec.address

    @dbus_property(PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return self._p.spec.address_type

    @dbus_property(PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._p.spec.name

    @dbus_property(PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self._p.spec.name

    @dbus_property(PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self._p.rssi

    @dbus_property(PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return list(self._p.uuids)

    @dbus_property(PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self._p.connected

    @dbus_property(PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self._p.services_resolved

    @dbus_property(PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Trusted(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @method()
    async def Connect(self):  # type: ignore[no-untyped-def]
        await self._p._connect()

    @method()
    async def Disconnect(self):  # type: ignore[no-untyped-def]
        self._p._link_down("local disconnect")

    @method()
    def Pair(self):  # type: ignore[no-untyped-def]
        raise DBusError(f"{_ERR}.NotSupported", "pairing is not modelled by the BlueZ stand-in")


class _GattService1(ServiceInterface):
    def __init__(self, service: _Service) -> None:
        super().__init__("org.bluez.GattService1")
        self._s = service

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._s.spec.uuid

    @dbus_property(PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._s.peripheral.path

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return self._s.spec.primary

    @dbus_property(PropertyAccess.READ)
    def Handle(self) -> DBusUInt16:
        return self._s.handle


class _GattCharacteristic1(ServiceInterface):
    def __init__(self, char: _Characteristic) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._c = char

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._c.spec.uuid

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._c.service.path

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._c.value

    @dbus_property(PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self._c.notifying

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return list(self._c.spec.flags)

    @dbus_property(PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:
        return self._c.service.peripheral.spec.att_mtu

    @dbus_property(PropertyAccess.READ)
    def Handle(self) -> DBusUInt16:
        return self._c.handle

    @method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return self._c._read()

    @method()
    def WriteValue(self, value: DBusBytes, options: DBusDict):  # type: ignore[no-untyped-def]
        self._c._write(bytes(value))

    @method()
    def StartNotify(self):  # type: ignore[no-untyped-def]
        self._c._start_notify()

    @method()
    def StopNotify(self):  # type: ignore[no-untyped-def]
        self._c._stop_notify()


class _NotifyingCharacteristic1(_GattCharacteristic1):
    """A characteristic with the notify property: BlueZ adds ``NotifyAcquired`` and
    ``AcquireNotify`` (notifications over a SOCK_SEQPACKET socket instead of D-Bus)."""

    @dbus_property(PropertyAccess.READ)
    def NotifyAcquired(self) -> DBusBool:
        return self._c.acquired is not None

    @method()
    def AcquireNotify(self, options: DBusDict) -> DBusFdAndMtu:
        return self._c._acquire_notify()


# ---------------------------------------------------------------------------------------------
# The model


class _Characteristic:
    def __init__(self, service: _Service, spec: CharacteristicSpec, handle: int) -> None:
        self.service = service
        self.spec = spec
        self.handle = handle
        self.path = f"{service.path}/char{handle:04x}"
        self.value = spec.value
        self.notify_clients: set[str] = set()  # D-Bus unique names that called StartNotify
        # (our end, the client's end) of an AcquireNotify socket pair, while acquired
        self.acquired: tuple[socket.socket, socket.socket] | None = None
        self.dropped = 0  # notifications lost to a full AcquireNotify socket
        iface_cls = _NotifyingCharacteristic1 if "notify" in spec.flags else _GattCharacteristic1
        self.iface = iface_cls(self)
        self.writes: list[bytes] = []  # what clients wrote, for assertions

    def _check_connected(self) -> None:
        if not self.service.peripheral.connected:
            raise DBusError(f"{_ERR}.Failed", "Not connected")

    def _read(self) -> bytes:
        self._check_connected()
        if "read" not in self.spec.flags:
            raise DBusError(f"{_ERR}.NotPermitted", "Read not permitted")
        # BlueZ updates its cached Value after every read and signals it; a client that is
        # also subscribed sees the read value as a notification too (bleak documents this).
        self.iface.emit_properties_changed({"Value": self.value})
        return self.value

    def _write(self, value: bytes) -> None:
        self._check_connected()
        if not {"write", "write-without-response"} & set(self.spec.flags):
            raise DBusError(f"{_ERR}.NotPermitted", "Write not permitted")
        self.writes.append(value)
        self.value = value

    def _start_notify(self) -> None:
        self._check_connected()
        if not {"notify", "indicate"} & set(self.spec.flags):
            raise DBusError(f"{_ERR}.NotSupported", "Operation is not supported")
        sender = self.service.peripheral.bluez._current_sender
        if self.acquired is not None:
            raise DBusError(f"{_ERR}.NotPermitted", "Notify acquired")
        if sender in self.notify_clients:
            raise DBusError(f"{_ERR}.InProgress", "Operation already in progress")
        was = bool(self.notify_clients)
        self.notify_clients.add(sender)
        if not was:
            self.iface.emit_properties_changed({"Notifying": True})
        self.service.peripheral.bluez._changed()

    def _stop_notify(self) -> None:
        sender = self.service.peripheral.bluez._current_sender
        if sender not in self.notify_clients:
            raise DBusError(f"{_ERR}.Failed", "No notify session started")
        self.notify_clients.discard(sender)
        if not self.notifying:
            self.iface.emit_properties_changed({"Notifying": False})
        self.service.peripheral.bluez._changed()

    def _acquire_notify(self) -> tuple[int, int]:
        self._check_connected()
        if "notify" not in self.spec.flags:
            raise DBusError(f"{_ERR}.NotSupported", "Operation is not supported")
        if self.acquired is not None:
            raise DBusError(f"{_ERR}.NotPermitted", "Notify acquired")
        if self.notify_clients:
            raise DBusError(f"{_ERR}.InProgress", "Operation already in progress")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self.acquired = (ours, theirs)
        self.iface.emit_properties_changed({"NotifyAcquired": True, "Notifying": True})
        self.service.peripheral.bluez._changed()
        # dbus-fast passes the fd with SCM_RIGHTS; our copy of the client's end stays open
        # until release (closing it before the reply is flushed would send a dead fd), so
        # unlike BlueZ the stand-in does not notice a client closing its end early.
        return theirs.fileno(), self.service.peripheral.spec.att_mtu

    def _release(self) -> None:
        """Drop every notify session (link down): acquired sockets close, as in BlueZ."""
        was = self.notifying
        self.notify_clients.clear()
        if self.acquired is not None:
            for sock in self.acquired:
                sock.close()
            self.acquired = None
            self.iface.emit_properties_changed({"NotifyAcquired": False})
        if was:
            self.iface.emit_properties_changed({"Notifying": False})

    @property
    def notifying(self) -> bool:
        return bool(self.notify_clients) or self.acquired is not None

    def notify(self, value: bytes) -> bool:
        """Queue a notification on the radio; False when nobody is subscribed (not sent)."""
        self.value = bytes(value)
        if not (self.service.peripheral.connected and self.notifying):
            return False
        self.service.peripheral.bluez._radio.submit(self, self.value)
        return True

    def _deliver(self, value: bytes) -> bool | None:
        """Hand one notification to the client: True sent, False lost, None try again later."""
        if not (self.service.peripheral.connected and self.notifying):
            return False  # the link or the subscription went away while it was queued
        if self.acquired is not None:
            try:
                self.acquired[0].send(value)
            except BlockingIOError:
                return None  # the client is behind: flow control, as the link layer does
            except OSError:  # the client closed its end
                return False
            return True
        self.iface.emit_properties_changed({"Value": value})
        return True


class _Service:
    def __init__(self, peripheral: FakePeripheral, spec: ServiceSpec, handle: int) -> None:
        self.peripheral = peripheral
        self.spec = spec
        self.handle = handle
        self.path = f"{peripheral.path}/service{handle:04x}"
        self.iface = _GattService1(self)
        self.characteristics: list[_Characteristic] = []


class FakePeripheral:
    """One BLE peripheral as BlueZ sees it, plus the controls a test drives it with."""

    def __init__(self, bluez: FakeBlueZ, spec: PeripheralSpec) -> None:
        self.bluez = bluez
        self.spec = spec
        self.path = f"{ADAPTER_PATH}/dev_{spec.address.upper().replace(':', '_')}"
        self.iface = _Device1(self)
        self.in_range = True  # advertising and connectable
        self.exported = False  # the Device1 object exists on the bus
        self.connected = False
        self.services_resolved = False
        self.gatt_exported = False
        self.rssi = spec.rssi
        self.uuids: tuple[str, ...] = tuple(spec.advertised_uuids)
        self.connect_count = 0  # successful Connect calls (incl. reconnections)
        self.disconnect_count = 0
        self._rng = random.Random(spec.address)
        # one fragment counter per device, as firmware keeps it (it runs on across packets)
        self._fragmenter = gatt.Fragmenter(spec.att_mtu - 3)
        # Handles as BlueZ numbers them: services from 0x000a, each characteristic takes a
        # declaration and a value handle, plus a CCCD when it can notify or indicate.
        self.services: list[_Service] = []
        handle = 0x000A
        for sspec in spec.services:
            service = _Service(self, sspec, handle)
            handle += 1
            for cspec in sspec.characteristics:
                service.characteristics.append(_Characteristic(service, cspec, handle))
                handle += 2 + int(bool({"notify", "indicate"} & set(cspec.flags)))
            self.services.append(service)

    # -- lookups -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.spec.address

    def characteristic(self, uuid: str) -> _Characteristic:
        uuid = uuid.lower()
        for service in self.services:
            for char in service.characteristics:
                if char.spec.uuid == uuid:
                    return char
        raise KeyError(f"{self.address} has no characteristic {uuid}")

    def is_notifying(self, uuid: str) -> bool:
        return self.characteristic(uuid).notifying

    # -- test controls -------------------------------------------------------------------

    def notify(self, uuid: str, value: bytes) -> bool:
        """Send one notification/indication. Returns False when nobody is subscribed."""
        return self.characteristic(uuid).notify(value)

    def fragments(self, message: ProtocolMessage) -> list[bytes]:
        """The notifications the project's firmware sends for ``message``: packet + CRC cut
        to the ATT payload (advances the device's fragment counter; not sent)."""
        return self._fragmenter.fragment(encode_packet(message))

    def send_message(self, message: ProtocolMessage) -> int:
        """Send ``message`` as the firmware does; how many fragments were delivered."""
        return sum(self.notify(gatt.WEARABLE_PACKET_CHAR_UUID, f) for f in self.fragments(message))

    def set_value(self, uuid: str, value: bytes) -> None:
        """Change what a read returns, without notifying."""
        self.characteristic(uuid).value = bytes(value)

    def drop_connection(self, reason: str = "link loss") -> None:
        """The link drops from the remote side (supervision timeout, wearable reset...)."""
        self._link_down(reason)

    def go_out_of_range(self, *, remove_device: bool = True) -> None:
        """Stop advertising; drop any connection; by default BlueZ forgets the device object.

        BlueZ removes a disconnected, unbonded ("temporary") device after its temporary
        timeout; ``remove_device=False`` models the time before that.
        """
        self.in_range = False
        self._link_down("out of range")
        if remove_device:
            self._unexport_device()

    def come_back(self) -> None:
        """Advertise again; a discovering adapter reports it at its next advertisement."""
        self.in_range = True
        self.bluez._changed()

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        await self.bluez.wait_for(lambda: self.connected and self.services_resolved, timeout_s)

    async def wait_disconnected(self, timeout_s: float = 10.0) -> None:
        await self.bluez.wait_for(lambda: not self.connected, timeout_s)

    async def wait_notifying(self, uuid: str, timeout_s: float = 10.0) -> None:
        await self.bluez.wait_for(lambda: self.connected and self.is_notifying(uuid), timeout_s)

    # -- BlueZ behaviour -----------------------------------------------------------------

    def _export_device(self) -> None:
        if not self.exported:
            self.bluez.bus.export(self.path, self.iface)
            self.exported = True

    def _unexport_device(self) -> None:
        if self.exported:
            self._unexport_gatt()
            self.bluez.bus.unexport(self.path)
            self.exported = False
            self.bluez._changed()

    def _advertise(self) -> None:
        """One received advertisement: BlueZ updates RSSI and signals the change."""
        self.rssi = self.spec.rssi + self._rng.randint(-3, 3)
        if not self.exported:
            self._export_device()  # InterfacesAdded carries the fresh RSSI
        else:
            self.iface.emit_properties_changed({"RSSI": self.rssi})

    async def _connect(self) -> None:
        if self.connected:
            return
        if not self.in_range:
            await asyncio.sleep(CONNECT_FAIL_S)
            raise DBusError(f"{_ERR}.Failed", "Software caused connection abort")
        self.connected = True
        self.connect_count += 1
        self.iface.emit_properties_changed({"Connected": True})
        await asyncio.sleep(SERVICE_RESOLUTION_S)
        if not self.connected:  # dropped while "discovering services"
            raise DBusError(f"{_ERR}.Failed", "Software caused connection abort")
        self._export_gatt()
        # After discovery BlueZ lists every GATT service in UUIDs, not just advertised ones.
        self.uuids = tuple(
            dict.fromkeys([*self.spec.advertised_uuids, *(s.spec.uuid for s in self.services)])
        )
        self.services_resolved = True
        self.iface.emit_properties_changed({"UUIDs": list(self.uuids), "ServicesResolved": True})
        self.bluez._changed()

    def _export_gatt(self) -> None:
        if self.gatt_exported:
            return
        for service in self.services:
            self.bluez.bus.export(service.path, service.iface)
            for char in service.characteristics:
                self.bluez.bus.export(char.path, char.iface)
        self.gatt_exported = True

    def _unexport_gatt(self) -> None:
        if not self.gatt_exported:
            return
        for service in self.services:
            for char in service.characteristics:
                self.bluez.bus.unexport(char.path)
            self.bluez.bus.unexport(service.path)
        self.gatt_exported = False

    def _link_down(self, reason: str) -> None:
        if not self.connected:
            return
        _LOGGER.debug("%s: link down (%s)", self.address, reason)
        for service in self.services:
            for char in service.characteristics:
                char._release()
        self.services_resolved = False
        self.connected = False
        self.disconnect_count += 1
        self.iface.emit_properties_changed({"ServicesResolved": False})
        self._unexport_gatt()
        self.iface.emit_properties_changed({"Connected": False})
        self.bluez._changed()


class _Radio:
    """Delivers queued notifications in order, at the pace the client can take them.

    Two reasons for a queue instead of emitting on the spot. A real link delivers at a
    finite rate, in order. And dbus-fast (5.2) treats EAGAIN on its non-blocking socket as
    fatal (python-dbus-next#153): a burst of PropertiesChanged signals faster than
    dbus-daemon reads them would kill the stand-in's bus. So before each signal the radio
    waits until the bus socket's unread backlog (SIOCOUTQ) is below :data:`_BUS_BACKLOG`.
    """

    def __init__(self, bluez: FakeBlueZ) -> None:
        self._bluez = bluez
        self._queue: deque[tuple[_Characteristic, bytes]] = deque()
        self._ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.lost = 0  # queued but the link or subscription went away first

    def submit(self, char: _Characteristic, value: bytes) -> None:
        self._queue.append((char, value))
        self._ready.set()

    def idle(self) -> bool:
        return not self._queue

    def _bus_backlog(self) -> int:
        # the stand-in's own socket to dbus-daemon; dbus-fast has no public accessor for it
        sock = getattr(self._bluez.bus, "_sock", None)
        if sock is None:
            return 0
        buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        return int(struct.unpack("i", buf)[0])

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            burst = 0
            while self._queue:
                char, value = self._queue[0]
                # the bus socket's backlog has no readiness event we could await: poll it
                busy = char.acquired is None and self._bus_backlog() > _BUS_BACKLOG
                result = None if busy else char._deliver(value)
                if result is None:
                    await asyncio.sleep(_RADIO_POLL_S)
                    continue
                self._queue.popleft()
                if result:
                    self.sent += 1
                else:
                    self.lost += 1
                burst += 1
                if burst % 32 == 0:
                    await asyncio.sleep(0)  # let the client's side of the loop run
            self._bluez._changed()


class FakeBlueZ:
    """``org.bluez`` on a (private) bus: one adapter, ``hci0``, and the peripherals added."""

    def __init__(self, bus_address: str, *, adv_interval_s: float = ADV_INTERVAL_S) -> None:
        self.bus_address = bus_address
        self.adv_interval_s = adv_interval_s
        self.powered = True
        self.peripherals: dict[str, FakePeripheral] = {}
        # (interface, member, path, sender) of every method call, for assertions
        self.calls: list[tuple[str, str, str, str]] = []
        self._bus: MessageBus | None = None
        self._adapter = _Adapter1(self)
        self._discovery_sessions: set[str] = set()  # D-Bus unique names of discovering clients
        self._filters: dict[str, dict[str, Any]] = {}  # per client, as SetDiscoveryFilter gave
        self._advertiser: asyncio.Task[None] | None = None
        self._radio = _Radio(self)
        self._current_sender = ""
        self._change = asyncio.Event()

    @property
    def bus(self) -> MessageBus:
        if self._bus is None:
            raise RuntimeError("FakeBlueZ is not started")
        return self._bus

    async def start(self) -> None:
        # unix-fd passing on: AcquireNotify hands the client a socket
        bus = MessageBus(
            bus_address=self.bus_address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True
        )
        async with asyncio.timeout(DAEMON_START_TIMEOUT_S):
            await bus.connect()
        self._bus = bus
        bus.add_message_handler(self._observe)
        bus.export(ADAPTER_PATH, self._adapter)
        async with asyncio.timeout(DAEMON_START_TIMEOUT_S):
            reply = await bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="RequestName",
                    signature="su",
                    body=[BLUEZ_SERVICE, 4],  # 4 = DO_NOT_QUEUE
                )
            )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN or reply.body[0] != 1:
            raise RuntimeError(f"could not own {BLUEZ_SERVICE}: {reply}")
        # Watch for clients leaving the bus: BlueZ ends their discovery and notify sessions.
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        self._advertiser = asyncio.create_task(self._advertise_loop(), name="fake-bluez-adv")
        self._radio.task = asyncio.create_task(self._radio.run(), name="fake-bluez-radio")

    async def stop(self) -> None:
        for peripheral in self.peripherals.values():
            peripheral._link_down("adapter removed")  # closes AcquireNotify sockets too
        for task in (self._advertiser, self._radio.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._advertiser = self._radio.task = None
        if self._bus is not None:
            bus, self._bus = self._bus, None
            bus.disconnect()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await bus.wait_for_disconnect()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test API ------------------------------------------------------------------------

    def add_peripheral(self, spec: PeripheralSpec) -> FakePeripheral:
        peripheral = FakePeripheral(self, spec)
        self.peripherals[spec.address.upper()] = peripheral
        self._changed()
        return peripheral

    def peripheral(self, address: str) -> FakePeripheral:
        return self.peripherals[address.upper()]

    @property
    def discovering(self) -> bool:
        return bool(self._discovery_sessions)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued notification has been handed to the client."""
        await self.wait_for(self._radio.idle, timeout_s)

    def count_calls(self, member: str, path_prefix: str = "") -> int:
        return sum(1 for _, m, p, _ in self.calls if m == member and p.startswith(path_prefix))

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait, with a deadline, until ``predicate()`` holds (re-checked on every change)."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._change.clear()
                # Also poll: some conditions change outside this model (e.g. a client's state).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._change.wait()

    # -- internals -----------------------------------------------------------------------

    def _changed(self) -> None:
        self._change.set()

    def _observe(self, msg: Message) -> bool:
        if msg.message_type == MessageType.METHOD_CALL:
            self._current_sender = msg.sender or ""
            self.calls.append(
                (msg.interface or "", msg.member or "", msg.path or "", msg.sender or "")
            )
        elif (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body[2] == ""
        ):
            self._client_left(msg.body[0])
        return False  # observe only; dispatch continues

    def _client_left(self, name: str) -> None:
        if name in self._discovery_sessions:
            self._discovery_sessions.discard(name)
            self._filters.pop(name, None)
            if not self._discovery_sessions:
                self._adapter.emit_properties_changed({"Discovering": False})
        for peripheral in self.peripherals.values():
            for service in peripheral.services:
                for char in service.characteristics:
                    if name in char.notify_clients:
                        char.notify_clients.discard(name)
                        if not char.notifying:
                            char.iface.emit_properties_changed({"Notifying": False})
        self._changed()

    def _set_discovery_filter(self, properties: dict[str, Variant]) -> None:
        values = {k: v.value for k, v in properties.items()}
        transport = values.get("Transport", "auto")
        if transport not in ("auto", "le", "bredr"):
            raise DBusError(f"{_ERR}.InvalidArguments", "Invalid arguments in method call")
        self._filters[self._current_sender] = values

    def _start_discovery(self) -> None:
        sender = self._current_sender
        if sender in self._discovery_sessions:
            raise DBusError(f"{_ERR}.InProgress", "Operation already in progress")
        was = self.discovering
        self._discovery_sessions.add(sender)
        if not was:
            self._adapter.emit_properties_changed({"Discovering": True})
        self._changed()

    def _stop_discovery(self) -> None:
        sender = self._current_sender
        if sender not in self._discovery_sessions:
            raise DBusError(f"{_ERR}.Failed", "No discovery started")
        self._discovery_sessions.discard(sender)
        self._filters.pop(sender, None)
        if not self.discovering:
            self._adapter.emit_properties_changed({"Discovering": False})
        self._changed()

    def _remove_device_path(self, path: str) -> None:
        for peripheral in self.peripherals.values():
            if peripheral.path == path and peripheral.exported:
                peripheral._link_down("removed")
                peripheral._unexport_device()
                return
        raise DBusError(f"{_ERR}.DoesNotExist", "Does Not Exist")

    def _wanted_uuids(self) -> set[str] | None:
        """The union of the clients' UUID filters (BlueZ merges them); None = no filter."""
        wanted: set[str] = set()
        for values in self._filters.values():
            uuids = values.get("UUIDs") or []
            if not uuids:
                return None
            wanted.update(u.lower() for u in uuids)
        return wanted or None

    def _visible(self, peripheral: FakePeripheral) -> bool:
        if not peripheral.in_range or peripheral.connected:
            return False  # a connected peripheral normally stops advertising
        wanted = self._wanted_uuids()
        return wanted is None or bool(
            wanted & {u.lower() for u in peripheral.spec.advertised_uuids}
        )

    async def _advertise_loop(self) -> None:
        while True:
            if self.discovering and self.powered:
                for peripheral in list(self.peripherals.values()):
                    if self._visible(peripheral):
                        peripheral._advertise()
                self._changed()
            await asyncio.sleep(self.adv_interval_s)
