"""Simulated wearables in-process: the embedded default source, no hardware needed.

Wraps :class:`firmware_bridge.sim.SimulatedWearable`: each plays a recording as protocol
messages (through a real frame encoder and decoder, so the simulator's corrupted-byte fault
is rejected by the CRC as on a serial line) at ``speed`` x real time, with the simulator's
fault switches. Its options are :class:`~edge.sources.options.SimOptions`, the ``[sim]``
section of the daemon's configuration. The recording is, in order of preference:
``sim.recording``, the demo recording shipped beside the demo bundle
(``demo_recording.npz``), or the simulator's own small synthetic recording.

Ground truth: the recording's WESAD labels are exposed as :meth:`SimSource.label_for` (the
class name a window should get, when the label maps to one of the model's classes), which
the daemon prints beside the decisions and summarizes as agreement. ``replay`` is this
source on a user's file.

Kinds (``sim.kind``): ``wrist`` plays the recording's wrist signals through the project's
service; ``hr`` plays a stock heart-rate strap (the recording's ``rr`` beats, or beats
simulated from its labels: :func:`firmware_bridge.sim.rr.with_beats`; heart rate, contact,
nothing else); ``mixed`` alternates them, so one hub serves wearers of both kinds at once.

Days (``sim.days = N``): instead of the recording, each wearable plays N days and nights of
a simulated resident (:func:`resident_days`; a wrist accelerometer and a light sensor, made
as they are played, so memory stays small), for the hub's actigraphy; no model fits such a
wearable, so it gets no windows, only activity counts and daily reports.

Several wearables (``sim.devices``): each its own device, resident and fault seed. With
``sim.stagger`` (the default) wearable ``i`` of ``N`` starts ``hop * i / N`` seconds of data
time after the first (:meth:`SimSource.stagger`), as real wearables switched on at random
times do, so their windows complete spread over a hop rather than all in one instant. They
play one shared, read-only copy of the recording's wire samples instead of one each
(:meth:`~firmware_bridge.sim.SimulatedWearable.share_samples_from`).

Not live: when the engine falls behind, the daemon reads the simulator more slowly instead
of dropping windows, so a sped-up run loses nothing.

In another process (``sim.process``): the same wearables, built here the same way, played by
a child process whose frames the hub reads from a pipe
(:class:`~edge.sources.sim_process.SimProcessSource`): the hub then pays for decoding real
frames and nothing of the simulation (the capacity benchmark's setting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from core.errors import ConfigError
from edge.sources.base import DEFAULT_QUEUE_SIZE, QueueBridge, SensorSource, SourceItem
from edge.sources.options import SimOptions

if TYPE_CHECKING:
    from core.recording import Recording
    from firmware_bridge.sim import SimulatedWearable

__all__ = ["DEMO_RECORDING", "SimSource", "label_name", "load_sim_recording", "resident_days"]

log = logging.getLogger(__name__)

DEMO_RECORDING: Final = "demo_recording.npz"  # shipped next to the demo bundle's manifest
SYNTHETIC_S: Final = 1800.0  # the fallback recording: half an hour, the length of `make demo`
LABEL_STEP_S: Final = 1.0  # ground truth of a window: majority of its labels sampled at 1 Hz
# each simulated device starts its device clock this far after the previous one, so several
# devices do not share identical timestamps
DEVICE_CLOCK_STAGGER_US: Final = 7_000_000
# a simulated resident's days (sim.days): see resident_days()
DAYS_PACKET_S: Final = 60.0  # in-process, with no frame to fit
DAYS_FRAMED_PACKET_S: Final = 10.0  # 300 acceleration samples: the most a frame holds at 30 Hz
DAYS_LIGHT_PER_PACKET: Final = 6  # a minute of 0.1 Hz light per packet
DAYS_STATUS_S: Final = 600.0
DAYS_BATTERY_PCT_PER_H: Final = 0.2  # an actigraph runs for weeks


def label_name(code: int, class_names: Sequence[str]) -> str | None:
    """A WESAD label code -> one of the model's class names, or None (not comparable).

    1 baseline, 2 stress, 3 amusement map to classes of those names; for a binary model
    with a ``stress`` class, baseline and amusement map to its other class.
    """
    from core.recording import LABEL_NAMES

    name = LABEL_NAMES.get(int(code))
    if name is None:
        return None
    if name in class_names:
        return name
    if code in (1, 3) and len(class_names) == 2 and "stress" in class_names:
        return next(c for c in class_names if c != "stress")
    return None


def load_sim_recording(path: str, bundle_dir: Path | None) -> Recording:
    """The recording ``sim`` plays (see the module docstring); wrist signals only."""
    from core.recording import load_recording

    if path:
        return load_recording(path).wrist_only()
    if bundle_dir is not None and (bundle_dir / DEMO_RECORDING).is_file():
        return load_recording(bundle_dir / DEMO_RECORDING).wrist_only()
    from firmware_bridge.sim.synthetic import synthetic_recording

    log.info("no demo recording found; the simulator plays its own synthetic session")
    return synthetic_recording(SYNTHETIC_S)


def resident_days(options: SimOptions, *, speed: float = 1.0,
                  loop_forever: bool = False) -> list[SimulatedWearable]:
    """``sim.days`` of a simulated resident per wearable (:mod:`firmware_bridge.sim.days`).

    Days of data are millions of packets at the usual quarter second, so these wearables
    hand their messages over without the frame round trip (the framing has its own tests;
    here it would be most of the cost) and send a minute of acceleration and of light per
    packet: in-process there is no frame to fit, and the hub's ingest and activity counts
    take a packet of any length alike. With ``faults.flip`` (corrupted frames need frames)
    they send frames, 10 s of acceleration each, the most one holds at 30 Hz. They state
    their HELLO, clock pairs and battery every 10 min and drain their battery over weeks.
    The recordings start now, in the hub's local time, as the daemon's clock for a sped-up
    run does.
    """
    from firmware_bridge.sim import SimulatedWearable
    from firmware_bridge.sim.days import DaysRecording

    faults = options.make_faults()
    start = time.time()
    fragment = options.fragment_sleep_from_day
    wearables = []
    for i in range(options.devices):
        recording = DaysRecording(options.days, start=start, seed=options.seed + i,
                                  fragment_from_day=None if fragment < 0 else fragment,
                                  subject=f"days-{i}")
        wearables.append(SimulatedWearable(
            recording, device_id=f"{SimSource.kind}-{i}", speed=speed,
            faults=replace(faults, seed=options.seed + i), loop_forever=loop_forever,
            t0_device_us=1_000_000 + i * DEVICE_CLOCK_STAGGER_US,
            packet_s=DAYS_FRAMED_PACKET_S if faults.flip else DAYS_PACKET_S,
            min_samples_per_packet=DAYS_LIGHT_PER_PACKET,
            hello_period_s=DAYS_STATUS_S, time_sync_period_s=DAYS_STATUS_S,
            battery_period_s=DAYS_STATUS_S, battery_drain_pct_per_h=DAYS_BATTERY_PCT_PER_H,
            frames=bool(faults.flip),
        ))
    return wearables


class SimSource(SensorSource):
    """One or more :class:`SimulatedWearable` s in-process."""

    kind = "sim"
    live = False

    def __init__(
        self,
        wearables: Sequence[SimulatedWearable],
        *,
        class_names: Sequence[str] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        super().__init__()
        if not wearables:
            raise ConfigError("needs at least one simulated wearable", key="sim.devices")
        self.wearables = list(wearables)
        self.class_names = tuple(class_names) if class_names is not None else None
        self._bridge = QueueBridge(self.stats, queue_size)
        self._bridge_high_water = max(1, queue_size // 2)
        self._tasks: list[asyncio.Task[None]] = []
        self._by_device = {w.device_id: w for w in self.wearables}
        self._running = 0
        self._stopped = False
        # data seconds each wearable waits before it starts (see stagger())
        self.start_delays_s: list[float] = [0.0] * len(self.wearables)

    @classmethod
    def from_options(
        cls,
        options: SimOptions,
        *,
        speed: float = 1.0,
        loop_forever: bool = False,
        hop_s: float | None = None,
        bundle_dir: Path | None = None,
        recording: Recording | None = None,
        class_names: Sequence[str] | None = None,
    ) -> SimSource:
        """``options.devices`` wearables playing one recording at ``speed`` x real time.

        ``loop_forever``: play the recording again and again (a timed run) instead of once.
        ``hop_s`` (the model's hop): with ``options.stagger``, the span the wearables'
        starts are spread over. ``bundle_dir``: where the demo recording is looked for when
        ``options.recording`` is empty; ``recording`` replaces both.
        """
        from firmware_bridge.sim import SimulatedWearable

        if options.days and recording is None:
            return cls(resident_days(options, speed=speed, loop_forever=loop_forever),
                       class_names=class_names)
        if recording is None:
            recording = load_sim_recording(options.recording, bundle_dir)
        if options.kind != "wrist":
            from firmware_bridge.sim.rr import with_beats

            recording = with_beats(recording, seed=options.seed)
        faults = options.make_faults()
        wearables: list[SimulatedWearable] = []
        for i in range(options.devices):
            strap = options.kind == "hr" or (options.kind == "mixed" and i % 2 == 1)
            plays: dict[str, Any] = ({"modalities": (), "beats": ("rr",)} if strap
                                     else {"modalities": tuple(recording.signals)})
            w = SimulatedWearable(
                recording,
                device_id=f"{cls.kind}-{i}",
                speed=speed,
                faults=replace(faults, seed=options.seed + i),
                loop_forever=loop_forever,
                t0_device_us=1_000_000 + i * DEVICE_CLOCK_STAGGER_US,
                like=wearables[i % 2] if len(wearables) > 1 else None,  # the same kind
                **plays,
            )
            if wearables:
                w.share_samples_from(wearables[0])
            wearables.append(w)
        src = cls(wearables, class_names=class_names)
        if options.stagger and hop_s is not None:
            src.stagger(hop_s)
        return src

    def stagger(self, span_s: float) -> None:
        """Start wearable ``i`` of ``N`` after ``span_s * i / N`` seconds of data time (the
        model's hop: windows then complete evenly spread over it); call before :meth:`start`.
        """
        if not span_s >= 0 or not math.isfinite(span_s):
            raise ConfigError(f"stagger span must be a finite number >= 0, got {span_s}",
                              key="sim.stagger")
        n = len(self.wearables)
        self.start_delays_s = [span_s * i / n for i in range(n)]

    async def start(self) -> None:
        if self._tasks:
            return
        for w, delay in zip(self.wearables, self.start_delays_s, strict=True):
            self._tasks.append(asyncio.create_task(self._play(w, delay),
                                                   name=f"sim:{w.device_id}"))
        self._running = len(self._tasks)

    async def _play(self, w: SimulatedWearable, delay_s: float = 0.0) -> None:
        try:
            if delay_s > 0:
                # data seconds -> wall seconds; the wearable's clocks start when it iterates
                await asyncio.sleep(delay_s / w.speed)
            async for t_hub, msg in w.messages():
                self.stats.inc("items")
                self._bridge.put(SourceItem(w.device_id, t_hub, msg))
                # not live: wait for the consumer rather than let a full queue drop items
                await self._bridge.wait_below(self._bridge_high_water)
        finally:
            self._running -= 1
            if self._running == 0:
                self._bridge.put(None)  # every wearable finished its recording

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._bridge.put(None)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._bridge.iterate()

    def health(self) -> dict[str, Any]:
        sim: Counter[str] = Counter()
        for w in self.wearables:
            sim.update(w.stats)
            sim.update({f"decoder_{k}": v for k, v in w.decoder_stats.items()})
        return {"kind": self.kind, "queue": self._bridge.qsize(), **self.stats.snapshot(),
                **{f"sim_{k}": v for k, v in sim.items()}}

    # -- ground truth ----------------------------------------------------------------------
    def label_for(self, device: str, start: float, end: float) -> str | None:
        """The class a window ``[start, end)`` (device seconds) should get, or None."""
        w = self._by_device.get(device)
        if w is None or self.class_names is None or not w.has_labels:
            return None
        drift = 1.0 + w.faults.clock_drift_ppm * 1e-6
        t0 = w.t0_device_us * 1e-6
        grid = np.arange(start, end, LABEL_STEP_S)  # (n,) device seconds
        rec_t = (grid - t0) / drift  # recording seconds (ignores a configured clock jump)
        rec_t = rec_t[rec_t >= 0]
        if not len(rec_t) or (not w.loop_forever and rec_t[-1] > w.duration_s):
            return None
        codes = np.asarray(w.label_at(rec_t)).reshape(-1)
        values, counts = np.unique(codes, return_counts=True)
        code = int(values[int(np.argmax(counts))])
        if counts.max() < 0.5 * len(codes) or math.isnan(code):
            return None
        return label_name(code, self.class_names)

