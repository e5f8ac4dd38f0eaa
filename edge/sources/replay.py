"""Replay: a recorded session played through the hub at N x real time.

Its options are :class:`~edge.sources.options.ReplayOptions`, the ``[replay]`` section of
the daemon's configuration (the file); the speed is the run's.

Three kinds of file, told apart by their content:

- a WESAD subject file (``S*.pkl``) or our compact ``.npz`` recording (:mod:`core.recording`):
  played by the wearable simulator (:class:`~edge.sources.sim.SimSource`), so the hub sees
  exactly what a wearable would send; the recording's labels are the ground truth shown
  beside each decision, and the summary prints the agreement;
- a raw recording made by ``edge-daemon --record-raw FILE`` (:class:`RawRecorder`): every
  frame the hub received, with its device and reception time, replayed with the original
  spacing (divided by ``speed``);
- a plain capture of a serial line (``cat /dev/ttyUSB0 > capture.bin``): bridge frames
  only; one device, paced by the device's own sample timestamps.

Raw recording format (binary, owner-only): a sequence of COBS frames, each ended by 0x00 as
on the serial line. The first frame is ``RAW_MAGIC + JSON header``; every further frame is
``<d received_s> <B len> device-utf8 packet`` where ``received_s`` counts from the start of
the recording and ``packet`` is the bridge packet with its CRC. Raw sensor data: it is
written only when the user asks (``--record-raw``) and stays on the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import struct
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

from core.errors import RecordingError
from edge.sources.base import DEFAULT_QUEUE_SIZE, QueueBridge, SensorSource, SourceItem
from edge.sources.options import ReplayOptions, SimOptions
from edge.sources.sim import SimSource, load_sim_recording

__all__ = ["RAW_MAGIC", "FrameFileSource", "RawRecorder", "ReplaySource", "open_replay",
           "read_raw_recording"]

log = logging.getLogger(__name__)

RAW_MAGIC: Final = b"wearable-edge raw v1\n"  # first bytes of a raw recording's first frame
_ENTRY: Final = struct.Struct("<dB")  # received_s, device length
READ_CHUNK: Final = 1 << 16  # bytes per read of a frame file: one disk read, many frames


class RawRecorder:
    """Appends every received message, re-framed, to a raw recording (see the docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from firmware_bridge.framing import cobs_encode, encode_packet

        self._cobs = cobs_encode
        self._packet = encode_packet
        self.path = Path(path)
        if not self.path.parent.exists():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._f: BinaryIO | None = os.fdopen(fd, "wb")
        self._t0: float | None = None
        self.entries = 0
        header = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "format": 1}
        self._f.write(self._cobs(RAW_MAGIC + json.dumps(header).encode()) + b"\x00")

    def write(self, item: SourceItem) -> None:
        if self._f is None:
            return
        if self._t0 is None:
            self._t0 = item.received_at
        dev = item.device.encode("utf-8")[:255]
        body = _ENTRY.pack(item.received_at - self._t0, len(dev)) + dev
        self._f.write(self._cobs(body + self._packet(item.message)) + b"\x00")
        self.entries += 1

    def close(self) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            f.close()


def read_raw_recording(path: str | os.PathLike[str]) -> Iterator[tuple[float | None, str | None, Any]]:
    """``(received_s, device, message)`` of a raw recording, or ``(None, None, message)`` of
    a plain frame capture. Corrupt frames are skipped (counted in the log at the end)."""
    from firmware_bridge.errors import ProtocolError
    from firmware_bridge.framing import FrameDecoder, cobs_decode, decode_packet

    p = Path(path)
    try:
        f = p.open("rb")
    except OSError as e:
        raise RecordingError(f"cannot open: {e.strerror}", path=str(p)) from None
    with f:
        head = f.read(READ_CHUNK)
        first_end = head.find(b"\x00")
        raw_format = False
        if first_end > 0:
            try:
                raw_format = cobs_decode(head[:first_end]).startswith(RAW_MAGIC)
            except ProtocolError:
                raw_format = False
        if not raw_format:
            decoder = FrameDecoder()
            data = head
            while data:
                for msg in decoder.feed(data):
                    yield None, None, msg
                data = f.read(READ_CHUNK)
            rejected = {k: v for k, v in decoder.stats.items() if k not in ("frames", "bytes",
                                                                            "empty")}
            if rejected:
                log.warning("%s: rejected frames %s", p, rejected)
            return
        buf = head[first_end + 1:]
        bad = 0
        while True:
            end = buf.find(b"\x00")
            if end < 0:
                more = f.read(READ_CHUNK)
                if not more:
                    break
                buf += more
                continue
            frame, buf = buf[:end], buf[end + 1:]
            if not frame:
                continue
            try:
                body = cobs_decode(frame)
                t, n = _ENTRY.unpack_from(body)
                dev = body[_ENTRY.size:_ENTRY.size + n].decode("utf-8")
                msg = decode_packet(body[_ENTRY.size + n:])
            except (ProtocolError, struct.error, UnicodeDecodeError):
                bad += 1
                continue
            yield t, dev, msg
        if bad:
            log.warning("%s: %d corrupt entries skipped", p, bad)


class FrameFileSource(SensorSource):
    """A raw recording or a plain frame capture, paced at ``speed`` x its original timing."""

    kind = "replay"
    live = False

    def __init__(self, path: str | os.PathLike[str], *, speed: float = 1.0,
                 queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        super().__init__()
        self.path = Path(path)
        self.speed = speed
        self._bridge = QueueBridge(self.stats, queue_size)
        self._high_water = max(1, queue_size // 2)
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.device = f"replay:{self.path.name}"

    async def start(self) -> None:
        if not self.path.is_file():
            raise RecordingError("no such file", path=str(self.path))
        if self._task is None:
            self._task = asyncio.create_task(self._play(), name=f"replay:{self.path.name}")

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        real0 = loop.time()
        hub0 = time.monotonic()
        t_first: float | None = None
        try:
            for i, (t, dev, msg) in enumerate(read_raw_recording(self.path)):
                if t is None:  # plain capture: pace by the device's sample clock
                    t_dev = getattr(msg, "t_device_us", None)
                    if t_dev is not None:
                        if t_first is None:
                            t_first = t_dev * 1e-6
                        t = max(0.0, t_dev * 1e-6 - t_first)
                    else:
                        t = 0.0 if t_first is None else None
                if t is not None and math.isfinite(self.speed):
                    delay = real0 + t / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % 64 == 0:
                    await asyncio.sleep(0)
                received = hub0 + (t or 0.0) / self.speed
                self.stats.inc("items")
                self._bridge.put(SourceItem(dev or self.device, received, msg))
                await self._bridge.wait_below(self._high_water)
        finally:
            self._bridge.put(None)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._bridge.put(None)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._bridge.iterate()

    def health(self) -> dict[str, Any]:
        return {"kind": self.kind, "queue": self._bridge.qsize(), **self.stats.snapshot()}


class ReplaySource(SimSource):
    """A WESAD ``.pkl`` or our ``.npz`` recording played by the simulator, with its labels."""

    kind = "replay"


def open_replay(
    options: ReplayOptions,
    *,
    speed: float = 1.0,
    sim: SimOptions | None = None,
    class_names: Sequence[str] | None = None,
) -> SensorSource:
    """The replay source for ``options.file`` (recording or frame file, by content).

    A recording is played once by the simulator, as ``sim`` (its devices, seed and faults)
    configures it.
    """
    path = Path(options.file)
    if not path.is_file():
        raise RecordingError("no such file (replay.file / --file)", path=str(path))
    if path.suffix.lower() in (".pkl", ".npz"):
        recording = load_sim_recording(str(path), None)
        log.info("replaying %s (subject %s, %.0f s) at %gx", path, recording.subject,
                 recording.duration_s, speed)
        return ReplaySource.from_options(sim or SimOptions(), speed=speed, loop_forever=False,
                                         recording=recording, class_names=class_names)
    if not _looks_like_frames(path):
        raise RecordingError(
            "not a recording: --file takes a WESAD S*.pkl, a .npz recording, or a frame file "
            "made with --record-raw (or a capture of a wearable's serial line)", path=str(path))
    return FrameFileSource(path, speed=speed)


def _looks_like_frames(path: Path) -> bool:
    """Whether the file's first block holds at least one valid bridge frame: a README or a
    photo is refused at start with one line, not played as a stream of rejected frames."""
    from firmware_bridge.errors import ProtocolError
    from firmware_bridge.framing import FrameDecoder, cobs_decode

    try:
        with path.open("rb") as f:
            head = f.read(READ_CHUNK)
    except OSError as e:
        raise RecordingError(f"cannot open: {e.strerror}", path=str(path)) from None
    first_end = head.find(b"\x00")
    if first_end > 0:
        with contextlib.suppress(ProtocolError):
            if cobs_decode(head[:first_end]).startswith(RAW_MAGIC):
                return True
    return any(True for _ in FrameDecoder().feed(head))
