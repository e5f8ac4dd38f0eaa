"""Simulated wearables in another process, their frames read from a pipe (``sim.process``).

The in-process simulator (:class:`~edge.sources.sim.SimSource`) runs every wearable as a
task on the hub's own loop and core: its pacing, message building and frame encoding are
counted as the hub's work, and each wearable wakes the loop for each packet. Here a child
process (``python -m edge.sources.sim_process``) plays the same wearables (the same
options, recording, stagger and faults, built by :meth:`SimSource.from_options`) and writes
their frames into a pipe, as a serial port or a radio adapter delivers them; the hub decodes
real frames with one :class:`~firmware_bridge.framing.FrameDecoder` per wearable and pays
only what a hub of real wearables pays. The capacity benchmark runs this way, the child on
another CPU (``sim.process_cpus``).

The pipe carries records, each the frames one wearable sent since the previous record::

    record = device index (u16) + length (u32) + scheduled hub time (f64) + frames

all little-endian. The scheduled time is the virtual hub time (``time.monotonic()`` at
speed 1, a system-wide clock) of the record's earliest frame, which the hub stamps on the
record's messages as their reception, as the in-process simulator does; so the child's own
delay counts against the hub's latency, never for it. The child wakes at most once per
:data:`TICK_S` and sends everything that fell due meanwhile, one write per wake-up: the
hub's loop wakes per batch of wearables, not per packet. Not live, like the in-process
simulator: when the hub falls behind, the pipe fills and the child waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import math
import os
import struct
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from core.errors import ConfigError
from edge.sources.base import DEFAULT_QUEUE_SIZE, QueueBridge, SensorSource, SourceItem
from edge.sources.options import SimOptions

if TYPE_CHECKING:
    from edge.sources.sim import SimSource
    from firmware_bridge.sim import SimulatedWearable

__all__ = ["RECORD", "TICK_S", "SimProcessSource", "child_main", "iter_records", "play"]

log = logging.getLogger(__name__)

RECORD: Final = struct.Struct("<HId")  # device index, frame bytes, scheduled hub time
# The child's shortest sleep between two writes: it bounds the hub's wake-ups to a few
# hundred a second whatever the number of wearables, and adds at most this much to a
# packet's delivery (a BLE connection interval is 7.5-50 ms).
TICK_S: Final = 0.005
# at most this many frames per write: an unpaced (speed inf) or far-behind simulator still
# writes as it goes
MAX_WRITE_FRAMES: Final = 4096
READ_SIZE: Final = 1 << 18  # bytes per read from the pipe: many records, one wake-up
CHILD_STOP_S: Final = 5.0  # the child is killed when it does not end this long after SIGTERM
_REPO_ROOT: Final = str(Path(__file__).resolve().parents[2])  # the child imports this checkout


def play(
    wearables: Sequence[SimulatedWearable],
    start_delays_s: Sequence[float],
    out: BinaryIO,
    *,
    tick_s: float = TICK_S,
    clock: Any = time.monotonic,
    sleep: Any = time.sleep,
) -> int:
    """Pace every wearable's frames into ``out`` as records (module docstring); returns the
    records written when every (finite) recording has ended."""
    speed = wearables[0].speed if wearables else 1.0
    unpaced = math.isinf(speed)
    start = clock()
    streams: list[Iterator[tuple[float, bytes]]] = []
    # (data second of the frame counted from the first wearable's start, wearable,
    # recording second, frame): the heap orders every wearable's frames on one time line
    heap: list[tuple[float, int, float, bytes]] = []
    t0s: list[float] = []
    for i, (w, delay) in enumerate(zip(wearables, start_delays_s, strict=True)):
        w.hub_t0 = start + delay / w.speed  # what emissions() sets when it starts
        t0s.append(w.hub_t0)
        stream = w.frame_timeline()
        streams.append(stream)
        first = next(stream, None)
        if first is not None:
            heap.append((delay + first[0], i, first[0], first[1]))
    heapq.heapify(heap)
    delays = list(start_delays_s)
    pack = RECORD.pack
    written = 0
    last_write = -math.inf
    while heap:
        now = clock()
        horizon = math.inf  # data seconds due
        if not unpaced:
            wake = max(start + heap[0][0] / speed, last_write + tick_s)
            if wake > now:
                sleep(wake - now)
                now = max(clock(), wake)  # the frame waited for is due, whatever the rounding
            horizon = max((now - start) * speed, heap[0][0] if now >= wake else -math.inf)
        batch: dict[int, list[Any]] = {}
        n_frames = 0
        while heap and heap[0][0] <= horizon and n_frames < MAX_WRITE_FRAMES:
            n_frames += 1
            _, i, t, frame = heapq.heappop(heap)
            entry = batch.get(i)
            if entry is None:
                batch[i] = [t0s[i] + t, [frame]]
            else:
                entry[1].append(frame)
            nxt = next(streams[i], None)
            if nxt is not None:
                heapq.heappush(heap, (delays[i] + nxt[0], i, nxt[0], nxt[1]))
        if not batch:
            continue
        parts = []
        for i, (stamp, frames) in batch.items():
            payload = b"".join(frames)
            parts.append(pack(i, len(payload), stamp))
            parts.append(payload)
        out.write(b"".join(parts))
        out.flush()
        written += len(batch)
        last_write = now
    return written


def iter_records(buf: bytes | bytearray, pos: int = 0) -> Iterator[tuple[int, float, int, int]]:
    """``(device index, scheduled time, start, end)`` of every whole record of ``buf`` from
    ``pos``; the frames of a record are ``buf[start:end]``. Stops before a partial record."""
    size = RECORD.size
    unpack_from = RECORD.unpack_from
    n = len(buf)
    while pos + size <= n:
        idx, length, stamp = unpack_from(buf, pos)
        end = pos + size + length
        if end > n:
            return
        yield idx, stamp, pos + size, end
        pos = end


def _spec(options: SimOptions, speed: float, loop_forever: bool, hop_s: float | None,
          bundle_dir: Path | None) -> dict[str, Any]:
    return {"options": asdict(options), "speed": speed, "loop_forever": loop_forever,
            "hop_s": hop_s, "bundle_dir": None if bundle_dir is None else str(bundle_dir)}


def _in_process(spec: dict[str, Any], class_names: Sequence[str] | None = None) -> SimSource:
    """The wearables of ``spec``, built as the in-process simulator builds them."""
    from edge.sources.sim import SimSource

    options = replace(SimOptions(**spec["options"]), process=False)
    bundle_dir = spec.get("bundle_dir")
    return SimSource.from_options(
        options, speed=float(spec["speed"]), loop_forever=bool(spec["loop_forever"]),
        hop_s=spec.get("hop_s"), bundle_dir=None if bundle_dir is None else Path(bundle_dir),
        class_names=class_names,
    )


def child_main(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """The child: one JSON line (the spec) on stdin, records on stdout until the end."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    spec = json.loads(stdin.readline())
    cpus = spec["options"].get("process_cpus") or []
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))
    src = _in_process(spec)
    try:
        play(src.wearables, src.start_delays_s, stdout)
    except (BrokenPipeError, KeyboardInterrupt):  # the hub stopped reading: its stop()
        return 0
    return 0


class SimProcessSource(SensorSource):
    """Simulated wearables played by a child process; see the module docstring."""

    kind = "sim"
    live = False

    def __init__(
        self,
        spec: dict[str, Any],
        *,
        class_names: Sequence[str] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        super().__init__()
        self._spec = spec
        # the same wearables, never played here: their device ids, ground truth and clocks
        self._local = _in_process(spec, class_names)
        self.wearables = self._local.wearables
        self.class_names = self._local.class_names
        from firmware_bridge.framing import FrameDecoder

        self._decoders = [FrameDecoder() for _ in self.wearables]
        self._devices = [w.device_id for w in self.wearables]
        self._bridge = QueueBridge(self.stats, queue_size)
        self._high_water = max(1, queue_size // 2)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopped = False

    @classmethod
    def from_options(
        cls,
        options: SimOptions,
        *,
        speed: float = 1.0,
        loop_forever: bool = False,
        hop_s: float | None = None,
        bundle_dir: Path | None = None,
        class_names: Sequence[str] | None = None,
    ) -> SimProcessSource:
        """As :meth:`SimSource.from_options` (a recording given as an object cannot cross
        to the child: ``options.recording`` or the bundle's demo recording is played)."""
        if options.days:
            raise ConfigError("a simulated resident's days play in-process", key="sim.process")
        return cls(_spec(options, speed, loop_forever, hop_s, bundle_dir),
                   class_names=class_names)

    @property
    def start_delays_s(self) -> list[float]:
        return self._local.start_delays_s

    async def start(self) -> None:
        if self._proc is not None:
            return
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge.sources.sim_process",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self._spec).encode() + b"\n")
        await self._proc.stdin.drain()
        self._proc.stdin.close()
        self._reader = asyncio.create_task(self._read(), name="sim-process")

    async def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        buf = b""
        decoders, devices = self._decoders, self._devices
        bridge = self._bridge
        try:
            while True:
                data = await proc.stdout.read(READ_SIZE)
                if not data:
                    break
                buf = buf + data if buf else data
                items: list[SourceItem] = []
                pos = 0
                for idx, stamp, s, e in iter_records(buf):
                    device = devices[idx]
                    for msg in decoders[idx].feed(memoryview(buf)[s:e]):
                        items.append(SourceItem(device, stamp, msg))
                    pos = e
                buf = buf[pos:]
                self.stats.inc("items", len(items))
                bridge.put_many(items)
                # not live: wait for the consumer; the pipe then fills and the child waits
                await bridge.wait_below(self._high_water)
        finally:
            bridge.put(None)  # the recordings ended, or stop()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), CHILD_STOP_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._bridge.put(None)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._bridge.iterate()

    def health(self) -> dict[str, Any]:
        dec: Counter[str] = Counter()
        for d in self._decoders:
            dec.update(d.stats)
        return {"kind": self.kind, "process": True, "queue": self._bridge.qsize(),
                **self.stats.snapshot(), **{f"decoder_{k}": v for k, v in dec.items()}}

    def label_for(self, device: str, start: float, end: float) -> str | None:
        """As :meth:`SimSource.label_for`: the same wearables, played by the child."""
        return self._local.label_for(device, start, end)


if __name__ == "__main__":
    raise SystemExit(child_main())
