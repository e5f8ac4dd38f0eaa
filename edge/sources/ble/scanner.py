"""Nearby BLE wearables: listen for advertisements and say what each offers.

What ``edge-daemon scan`` shows (the CLI prints the table: :func:`edge.ui.format_scan_results`).
Only what advertisements say: a stock strap usually advertises Heart Rate alone, and its
battery service shows up only after connecting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from edge.errors import SourceError
from edge.sources.ble.translate import PROFILE_NAMES, READABLE_SERVICES
from edge.sources.options import normalize_uuid

__all__ = ["DISCONNECT_TIMEOUT_S", "DiscoveredWearable", "scan"]

# A BlueZ "Disconnect" waits up to 10 s for the link to go down; a scanner's start and stop
# get the same deadline, past which the adapter is taken as stuck.
DISCONNECT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class DiscoveredWearable:
    """One advertiser :func:`scan` heard, and what of ours it offers."""

    address: str
    name: str | None
    rssi: int  # dBm of the strongest advertisement seen
    service_uuids: tuple[str, ...]  # as advertised
    profiles: tuple[str, ...]  # what of ours it offers: "wearable-edge", "heart-rate", ...

    @property
    def supported(self) -> bool:
        """Whether ``edge-daemon --device ble`` can read it (judged by its advertisement)."""
        return bool(set(self.service_uuids) & set(READABLE_SERVICES))


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
    uuids = [normalize_uuid(u) for u in service_uuids] or None

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
        advertised = tuple(normalize_uuid(u) for u in adv.service_uuids)
        found = DiscoveredWearable(
            address=address,
            name=adv.local_name or device.name,
            rssi=strongest[address],
            service_uuids=advertised,
            profiles=tuple(PROFILE_NAMES[u] for u in advertised if u in PROFILE_NAMES),
        )
        if found.supported or not supported_only:
            out.append(found)
    out.sort(key=lambda w: (-w.rssi, w.address))
    return out
