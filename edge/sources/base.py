"""The sensor-source contract every backend (ble, serial, sim, replay) implements.

A source is an async context manager and an async iterator of :class:`SourceItem`. Each
item carries one protocol message (``firmware_bridge.protocol``: ``Hello``, ``Samples``,
``Event``, ``TimeSync``) from one device, stamped with the hub's monotonic clock at
reception. Standard-profile wearables (a stock heart-rate strap) are translated by their
backend into the same messages, so everything downstream sees one vocabulary.

Callbacks from radio or serial stacks are turned into iteration through a bounded
``asyncio.Queue`` (see :class:`QueueBridge`): when the consumer falls behind, the oldest
item is dropped and counted, never silently lost and never unbounded memory.
"""

from __future__ import annotations

import abc
import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from edge.sources.options import DEFAULT_QUEUE_SIZE

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "ConnectionEvent",
    "QueueBridge",
    "SensorSource",
    "SourceItem",
    "SourceStats",
]



@dataclass(frozen=True, slots=True)
class SourceItem:
    device: str  # stable device key: BLE address, serial port path, "sim-0", ...
    received_at: float  # hub time.monotonic() at reception (seconds)
    message: Any  # a firmware_bridge.protocol message (Hello, Samples, Event, TimeSync)


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A device's link came up or went down: a :attr:`SourceItem.message` of its own kind.

    Sources that hold links (ble: a BLE connection; serial: an open port) emit one with
    ``connected=True`` every time the link comes up (the first time and after every
    reconnection) and ``connected=False`` every time it goes down, including on ``stop()``
    (reason ``"stopped"``). The daemon turns these into ``disconnected`` / ``reconnected``
    events (``DeviceEvents.on_link``). After a ``connected=True`` the device sends (or the
    source synthesises) a fresh ``Hello``. Not a wire message: it never leaves the hub.
    """

    connected: bool
    reason: str = ""  # why the link went down ("link lost", "stopped", an error) or ""
    connects: int = 0  # times this device's link has come up so far (1 = the first time)


@dataclass
class SourceStats:
    """Counters a source keeps; every lost or rejected item is counted by reason."""

    counters: Counter[str] = field(default_factory=Counter)

    def inc(self, key: str, n: int = 1) -> None:
        self.counters[key] += n

    def snapshot(self) -> dict[str, int]:
        return dict(self.counters)


class QueueBridge:
    """Callback -> async iterator, bounded, dropping the oldest item when full (counted)."""

    def __init__(self, stats: SourceStats, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue: asyncio.Queue[SourceItem | None] = asyncio.Queue(maxsize)
        self._stats = stats
        self._room: asyncio.Event | None = None  # set by the consumer; see wait_below

    def put(self, item: SourceItem | None) -> None:
        """Non-blocking put from a callback on the event loop thread. ``None`` ends iteration."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                try:
                    self._queue.get_nowait()
                    self._stats.inc("dropped_queue_full")
                except asyncio.QueueEmpty:  # pragma: no cover - raced by the consumer
                    pass

    def put_many(self, items: list[SourceItem]) -> None:
        """:meth:`put` of every item, in order: what a source that reads many items at once
        (a pipe, a file) hands over, so the consumer wakes once for the batch."""
        queue = self._queue
        room = queue.maxsize - queue.qsize() if queue.maxsize > 0 else len(items)
        if len(items) <= room:
            for item in items:
                queue.put_nowait(item)
            return
        for item in items:
            self.put(item)

    def qsize(self) -> int:
        return self._queue.qsize()

    async def wait_below(self, n: int) -> None:
        """Wait until fewer than ``n`` items are queued: how a non-live producer (a file,
        the simulator) paces itself to its consumer instead of having items dropped."""
        while self._queue.qsize() >= n:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()

    async def iterate(self) -> AsyncIterator[SourceItem]:
        while True:
            item = await self._queue.get()
            if self._room is not None:
                self._room.set()
            if item is None:
                return
            yield item


class SensorSource(abc.ABC):
    """One or more wearables delivering protocol messages to the hub."""

    kind: str = "abstract"  # "ble", "serial", "sim", "replay"
    # A live source (a real wearable) cannot be paused: when the hub falls behind, windows are
    # dropped and counted. A non-live one (sim, replay: data from a file) is simply read more
    # slowly, so a sped-up replay loses nothing to a slow engine.
    live: bool = True

    def __init__(self) -> None:
        self.stats = SourceStats()

    @abc.abstractmethod
    async def start(self) -> None:
        """Open ports/connections and begin producing items. Must not block the loop."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop producing, close everything, end iteration. Idempotent."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[SourceItem]:
        """Items until the source ends (finite sim/replay) or :meth:`stop` is called."""

    def health(self) -> dict[str, Any]:
        """Counters and per-device state for the daemon's periodic health log."""
        return {"kind": self.kind, **self.stats.snapshot()}

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
