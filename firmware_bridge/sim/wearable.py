"""The simulated wearable: plays a recording as protocol messages, with switchable faults.

In-process use (the daemon's ``sim`` device)::

    wearable = SimulatedWearable(recording, device_id="sim-0", speed=10.0,
                                 faults=Faults(drop=0.01, seed=1), loop_forever=True)
    async for t_hub, msg in wearable.messages():   # what a hub's decoder would produce
        ...                                        # SourceItem("sim-0", t_hub, msg)
    # or the raw bytes a serial port would carry:
    async for frame in wearable.frames():
        ...

A ``SensorSource`` wraps ``messages()`` in a task that puts
``SourceItem(wearable.device_id, t_hub, msg)`` into its ``QueueBridge``; ``stop()`` cancels
the task. Both iterators pace themselves with ``asyncio.sleep`` (never blocking the loop)
and end when the recording ends unless ``loop_forever``.

**Clocks.** Everything is scheduled in *recording time* (seconds from the start of the
recording). The hub side is a *virtual hub clock*, ``hub_t0 + recording time`` where
``hub_t0`` is ``time.monotonic()`` when iteration starts: at ``speed=1`` it is the real
monotonic clock, at ``speed=N`` it runs N times faster so signal time and hub time keep
one scale (a 60 s window is 60 s on both). ``messages()`` yields that hub time for each
message (delayed by stalls). The device clock is ``t0_device_us`` plus recording time,
scaled by ``Faults.clock_drift_ppm`` and shifted by ``Faults.clock_jump_us`` from
``Faults.clock_jump_at_s`` on. TIME_SYNC carries both clocks of the same instant (the sim
plays both ends of the two-way exchange, see PROTOCOL.md), so ``ClockMapper`` recovers the
configured drift and jump exactly.

**Ground truth.** :meth:`SimulatedWearable.label_at` gives the recording's WESAD label code
at a recording time, :meth:`label_at_hub` at a virtual hub time (what replay agreement
compares decisions with).

**Packets.** One sensor per recording signal (ids from 1, in the recording's order), int16
(uint16 for EDA) with a scale per modality (:data:`MODALITY_SCALES`); one SAMPLES packet per
sensor every ``packet_s`` (at least ``min_samples_per_packet`` samples); HELLO at start,
after every reconnect and every ``hello_period_s`` (a hub that joins mid-stream learns the sensors); TIME_SYNC every
``time_sync_period_s``; a BATTERY event every ``battery_period_s``.

**Beats** (``beats=("rr",)``: a heart-rate strap or watch; with ``modalities=()`` nothing
else; :mod:`firmware_bridge.sim.beats`). Each beat series of the recording
(``Recording.beats``) becomes an ``rr`` sensor (s, 1/1024 s steps as the Heart Rate Service
sends them) and an ``hr`` sensor (bpm): every
``beat_packet_s`` one packet of the intervals that ended in that period, timed as a beat
sensor's packets are (PROTOCOL.md: the first interval's beat), and the heart rate of the last
few beats, as a strap notifies. Beats inside a contact loss are never sent; a beat device
reports contact at start.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from firmware_bridge.errors import SimulatorError
from firmware_bridge.framing import FrameDecoder, encode_frame
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
from firmware_bridge.sim.beats import BeatSensor
from firmware_bridge.sim.days import LazySignal, WireView

__all__ = ["MODALITY_SCALES", "Emission", "Faults", "SimulatedWearable"]

# modality -> (sample format, scale, offset): the wire resolution per modality, chosen so
# the physiological range fits the format with margin and the resolution is far below
# the signal's own noise.
MODALITY_SCALES: Final[dict[str, tuple[SampleFormat, float, float]]] = {
    "bvp": (SampleFormat.INT16, 0.1, 0.0),  # ±3276 a.u.: E4 BVP motion spikes reach ±2000
    "eda": (SampleFormat.UINT16, 0.001, 0.0),  # 0..65.5 uS in 1 nS steps
    "temp": (SampleFormat.INT16, 0.01, 0.0),  # ±327 degC in 0.01 degC steps
    "acc": (SampleFormat.INT16, 1.0 / 4096.0, 0.0),  # ±8 g, an IMU's 16-bit ±8 g range
    "ecg": (SampleFormat.INT16, 0.001, 0.0),  # ±32 mV in 1 uV steps
    "emg": (SampleFormat.INT16, 0.001, 0.0),  # ±32 mV
    "resp": (SampleFormat.INT16, 0.01, 0.0),  # ±327 % (RespiBAN reports ±~30 %)
    "hr": (SampleFormat.UINT16, 0.01, 0.0),  # 0..655 bpm
    "rr": (SampleFormat.UINT16, 0.001, 0.0),  # 0..65 s in ms
    "light": (SampleFormat.UINT16, 1.0, 0.0),  # 0..65535 lux: daylight from ~1000, sun 100k
}
_YIELD_EVERY: Final = 64  # at unlimited speed, hand the loop back this often


@dataclass(frozen=True)
class Faults:
    """Fault switches; all off by default. Random ones draw from ``seed`` (reproducible)."""

    seed: int = 0
    drop: float = 0.0  # probability a packet (not HELLO) is never sent
    duplicate: float = 0.0  # probability a packet is sent twice
    reorder: float = 0.0  # probability a packet is sent after the next one of its stream
    flip: float = 0.0  # probability one byte of a frame is corrupted (the hub must reject it)
    stall_at_s: tuple[float, ...] = ()  # recording times where the link stalls...
    stall_s: float = 2.0  # ...for this long; then the backlog arrives in a burst
    disconnect_at_s: tuple[float, ...] = ()  # recording times where the link drops...
    disconnect_s: float = 3.0  # ...for this long; packets meanwhile are lost; HELLO on return
    clock_drift_ppm: float = 0.0  # device clock rate error (quartz: ±20-100 ppm)
    clock_jump_at_s: float | None = None  # the device clock jumps at this recording time...
    clock_jump_us: int = 0  # ...by this much (e.g. a firmware resync)
    battery_low_at_s: float | None = None  # battery drops to 5 % here (an event is sent)
    contact_lost_at_s: float | None = None  # skin contact lost here...
    contact_lost_s: float = 30.0  # ...for this long (EDA reads 0, BVP flat noise)

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder", "flip"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise SimulatorError(f"Faults.{name}={p} is not a probability")
        object.__setattr__(self, "stall_at_s", tuple(self.stall_at_s))
        object.__setattr__(self, "disconnect_at_s", tuple(self.disconnect_at_s))


@dataclass(frozen=True)
class Emission:
    """One thing the device does at recording time ``t`` (stall delays included).

    ``event`` is ``"message"`` (``message`` set), ``"disconnect"`` or ``"reconnect"``
    (transports close and reopen the link on these).
    """

    t: float
    event: str
    message: Message | None = None


@dataclass
class _Sensor:
    info: SensorInfo
    raw: np.ndarray | WireView  # (N, C) wire values for the whole recording (or made lazily)
    per_packet: int  # samples per packet
    seq: int = 0


@dataclass(order=True)
class _Item:
    t: float  # recording time of emission
    order: int  # tie-break: HELLO < TIME_SYNC < events < samples, then creation order
    payload: Any = field(compare=False)


def _stream_key(msg: Message | None) -> tuple[str, int]:
    """Messages sharing a sequence counter: one per sensor, one for events, one for syncs."""
    if isinstance(msg, Samples):
        return ("samples", msg.sensor_id)
    return (type(msg).__name__, 0)


class SimulatedWearable:
    """Plays ``recording`` (an :class:`core.recording.Recording`) as a wearable would."""

    def __init__(
        self,
        recording: Any,
        *,
        device_id: str = "sim-0",
        speed: float = 1.0,
        faults: Faults | None = None,
        loop_forever: bool = False,
        duration_s: float | None = None,
        modalities: tuple[str, ...] | None = None,
        packet_s: float = 0.25,  # ~0.25 s per packet: low latency, small frames for BLE
        # slow sensors (4 Hz EDA/temp) would send 1-sample packets at 0.25 s: 21 bytes of
        # header and CRC for 2 of data. 4 samples (1 s at 4 Hz) is still far inside a window.
        min_samples_per_packet: int = 4,
        hello_period_s: float = 10.0,  # a hub joining mid-stream waits at most this long
        time_sync_period_s: float = 5.0,  # 12 pairs a minute: drift visible within minutes
        battery_period_s: float = 60.0,  # battery changes slowly; once a minute is plenty
        battery_start_pct: float = 100.0,
        battery_drain_pct_per_h: float = 5.0,  # a wrist wearable lasts about a day
        firmware_version: str = f"sim-{PROTOCOL_VERSION}.0",
        t0_device_us: int = 1_000_000,  # device booted 1 s before the recording starts
        beats: tuple[str, ...] = (),  # beat series of the recording to send (a strap: "rr")
        beat_packet_s: float = 1.0,  # a strap notifies about once a second
        # False: messages() hands the messages over as built, without the frame encoder and
        # decoder (a days-long simulation spends most of its time there); flip needs them
        frames: bool = True,
        # a wearable built from the same recording object and duration: its wire samples
        # are played (shared, read-only) instead of converted again (many wearables, one copy)
        like: SimulatedWearable | None = None,
    ) -> None:
        if not speed > 0:
            raise SimulatorError(f"speed must be positive (math.inf: unpaced), got {speed}")
        if packet_s <= 0:
            raise SimulatorError(f"packet_s must be positive, got {packet_s}")
        self.recording = recording
        self.device_id = device_id
        self.speed = float(speed)
        self.faults = faults or Faults()
        self.loop_forever = loop_forever
        self.packet_s = packet_s
        self.min_samples_per_packet = max(1, int(min_samples_per_packet))
        self.hello_period_s = hello_period_s
        self.time_sync_period_s = time_sync_period_s
        self.battery_period_s = battery_period_s
        self.battery_start_pct = battery_start_pct
        self.battery_drain_pct_per_h = battery_drain_pct_per_h
        self.t0_device_us = int(t0_device_us)
        self.stats: Counter[str] = Counter()
        self.decoder_stats: Counter[str] = Counter()  # messages(): the internal decoder's
        self.hub_t0: float | None = None  # virtual hub clock origin, set when iteration starts
        names = tuple(recording.signals) if modalities is None else tuple(modalities)
        if not names and not beats:
            raise SimulatorError("the recording has no signals to play")
        if not beat_packet_s > 0:
            raise SimulatorError(f"beat_packet_s must be positive, got {beat_packet_s}")
        self.beat_packet_s = float(beat_packet_s)
        if not frames and self.faults.flip:
            raise SimulatorError("Faults.flip corrupts frames: it needs frames=True")
        self.frames_on = frames
        self.duration_s = float(recording.duration_s if duration_s is None else duration_s)
        if not self.duration_s > 0:
            raise SimulatorError(f"nothing to play: duration {self.duration_s} s")
        self._sensors: list[_Sensor] = []
        shared: dict[str, _Sensor] = {}
        if (like is not None and like.recording is recording
                and like.duration_s == self.duration_s):
            shared = {s.info.kind: s for s in like._sensors if isinstance(s.raw, np.ndarray)}
        for i, name in enumerate(names, start=1):
            theirs = shared.get(name)
            if theirs is not None:
                theirs.raw.flags.writeable = False
                info = replace(theirs.info, sensor_id=i)
                per_packet = max(self.min_samples_per_packet, round(self.packet_s * info.rate_hz))
                self._sensors.append(_Sensor(info, theirs.raw, per_packet))
                if like is not None and like.stats.get(f"saturated_{name}"):
                    self.stats[f"saturated_{name}"] = like.stats[f"saturated_{name}"]
                continue
            try:
                sig = recording.signals[name]
            except KeyError:
                raise SimulatorError(
                    f"recording has no signal {name!r} (has {sorted(recording.signals)})"
                ) from None
            self._sensors.append(self._make_sensor(i, name, sig))
        self._beats: list[BeatSensor] = []
        for name in beats:
            series = getattr(recording, "beats", {}).get(name)
            if series is None:
                raise SimulatorError(f"recording has no beat series {name!r}")
            first = len(self._sensors) + 2 * len(self._beats) + 1
            self._beats.append(BeatSensor(name, series, first, self.beat_packet_s,
                                          self.duration_s))
        infos = [s.info for s in self._sensors]
        for b in self._beats:
            infos += [b.hr_info, b.info]
        self.hello = Hello(device_id, firmware_version, PROTOCOL_VERSION, tuple(infos))
        labels = getattr(recording, "labels", None)
        self._labels = None if labels is None else np.asarray(labels.values)[:, 0]
        self._label_rate = None if labels is None else float(labels.rate_hz)

    # -- setup ----------------------------------------------------------------------------
    def _make_sensor(self, sensor_id: int, name: str, sig: Any) -> _Sensor:
        if isinstance(sig, LazySignal):  # days of data: made a block at a time, never whole
            fmt, scale, offset = MODALITY_SCALES[name]
            info = SensorInfo(sensor_id, name, sig.unit, sig.rate_hz, sig.channels, fmt, scale,
                              offset)
            per_packet = max(self.min_samples_per_packet, round(self.packet_s * info.rate_hz))
            return _Sensor(info, WireView(sig, info), per_packet)
        values = np.asarray(sig.values, dtype=np.float64)  # (N, C)
        if values.ndim == 1:
            values = values[:, None]
        n_keep = min(len(values), math.ceil(self.duration_s * sig.rate_hz - 1e-9))
        values = values[:n_keep]
        key = name[2:] if name.startswith("c_") else name  # chest c_eda scales like eda
        if key in MODALITY_SCALES:
            fmt, scale, offset = MODALITY_SCALES[key]
        else:  # unknown modality: centre the data and use 90 % of the int16 range
            lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
            fmt, offset = SampleFormat.INT16, (lo + hi) / 2
            scale = max((hi - lo) / 2, 1e-9) / (0.9 * 32767)
        info = SensorInfo(
            sensor_id, name, str(sig.unit), float(sig.rate_hz), values.shape[1], fmt, scale, offset
        )
        raw = info.to_raw(values)  # (N, C)
        back = info.to_physical(raw)
        saturated = int(np.count_nonzero(np.abs(back - values) > abs(info.scale)))
        if saturated:
            self.stats[f"saturated_{name}"] += saturated
        per_packet = max(self.min_samples_per_packet, round(self.packet_s * info.rate_hz))
        return _Sensor(info, raw, per_packet)

    # -- sharing one recording between wearables -----------------------------------------
    @property
    def wire_samples(self) -> tuple[np.ndarray, ...]:
        """Each sensor's wire values for the whole recording, ``(N, C)``, in HELLO order."""
        return tuple(s.raw for s in self._sensors if isinstance(s.raw, np.ndarray))

    def share_samples_from(self, other: SimulatedWearable) -> int:
        """Play ``other``'s wire samples instead of this wearable's own identical copy.

        Wearables built from one recording hold the same wire values; sharing one copy
        keeps a many-wearable simulation's memory at one recording. The shared arrays
        are made read-only, since a write would change every wearable's data. A sensor
        whose format or values differ keeps its own. Returns the bytes freed.
        """
        if len(self._sensors) != len(other._sensors):
            return 0
        freed = 0
        for mine, theirs in zip(self._sensors, other._sensors, strict=True):
            a, b = theirs.raw, mine.raw
            if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
                continue  # lazy signals hold no copy to share
            if (a is b or mine.info != theirs.info or a.shape != b.shape
                    or a.dtype != b.dtype or not np.array_equal(a, b)):
                continue
            a.flags.writeable = False
            mine.raw = a
            freed += b.nbytes
        return freed

    # -- clocks and ground truth ----------------------------------------------------------
    @property
    def has_labels(self) -> bool:
        """Whether the recording carries ground truth (:meth:`label_at` works)."""
        return self._labels is not None

    def device_time_us(self, t: float) -> int:
        """Device clock (µs) at recording time ``t`` (drift and jump applied)."""
        f = self.faults
        us = self.t0_device_us + round(t * 1e6 * (1.0 + f.clock_drift_ppm * 1e-6))
        if f.clock_jump_at_s is not None and t >= f.clock_jump_at_s:
            us += f.clock_jump_us
        return max(0, us)

    def label_at(self, t: float | np.ndarray) -> int | np.ndarray:
        """WESAD label code(s) at recording time(s) ``t`` (wrapped when looping)."""
        if self._labels is None or self._label_rate is None:
            raise SimulatorError("the recording has no labels")
        n = len(self._labels)
        idx = np.floor(np.asarray(t, dtype=np.float64) * self._label_rate).astype(np.int64)
        idx = np.mod(idx, n) if self.loop_forever else np.clip(idx, 0, n - 1)
        out = self._labels[idx]
        return int(out) if np.ndim(out) == 0 else out

    def label_at_hub(self, t_hub: float | np.ndarray) -> int | np.ndarray:
        """Label code(s) at virtual hub time(s) (valid once iteration has started)."""
        if self.hub_t0 is None:
            raise SimulatorError("label_at_hub needs a started simulation (hub_t0 unset)")
        return self.label_at(np.asarray(t_hub, dtype=np.float64) - self.hub_t0)

    def battery_at(self, t: float) -> int:
        f = self.faults
        pct = self.battery_start_pct - self.battery_drain_pct_per_h * t / 3600.0
        if f.battery_low_at_s is not None and t >= f.battery_low_at_s:
            pct = min(pct, 5.0)
        return int(np.clip(round(pct), 0, 100))

    # -- the schedule (pure: recording time, no sleeping) ---------------------------------
    def _base(self) -> Iterator[_Item]:
        """Messages in emission order, before link faults; endless when looping."""
        # (t, order, item): plain tuples compare faster than the dataclass; order is unique
        heap: list[tuple[float, int, _Item]] = []
        counter = 0

        def push(t: float, prio: int, payload: Any) -> None:
            nonlocal counter
            counter += 1
            order = prio * 10**12 + counter
            heapq.heappush(heap, (t, order, _Item(t, order, payload)))

        f = self.faults
        push(0.0, 0, "hello")
        push(0.0, 1, "time_sync")
        push(0.0, 2, "battery")
        if f.battery_low_at_s is not None:
            push(f.battery_low_at_s, 2, "battery_low")
        if self._beats:  # a strap says whether it has contact with every notification
            push(0.0, 2, ("contact", 1))
        if f.contact_lost_at_s is not None:
            push(f.contact_lost_at_s, 2, ("contact", 0))
            push(f.contact_lost_at_s + f.contact_lost_s, 2, ("contact", 1))
        for s in self._sensors:
            push(min(s.per_packet, len(s.raw)) / s.info.rate_hz, 3, (s, 0))
        for b in self._beats:
            push(min(self.beat_packet_s, self.duration_s), 3, ("beats", b, 0))
        event_seq = 0
        sync_seq = 0
        end = math.inf if self.loop_forever else self.duration_s
        while heap:
            item = heapq.heappop(heap)[2]
            t, p = item.t, item.payload
            if p == "hello":
                yield _Item(t, 0, self.hello)
                if t + self.hello_period_s < end:
                    push(t + self.hello_period_s, 0, "hello")
            elif p == "time_sync":
                yield _Item(t, 0, TimeSync(sync_seq, self.device_time_us(t), self._hub_us(t)))
                sync_seq = (sync_seq + 1) & 0xFFFF
                if t + self.time_sync_period_s < end:
                    push(t + self.time_sync_period_s, 1, "time_sync")
            elif p in ("battery", "battery_low"):
                yield _Item(t, 0, Event(EventKind.BATTERY, event_seq, self.device_time_us(t),
                                        self.battery_at(t)))  # fmt: skip
                event_seq = (event_seq + 1) & 0xFFFF
                if p == "battery" and t + self.battery_period_s < end:
                    push(t + self.battery_period_s, 2, "battery")
            elif isinstance(p, tuple) and p[0] == "contact":
                yield _Item(t, 0, Event(EventKind.CONTACT, event_seq, self.device_time_us(t), p[1]))
                event_seq = (event_seq + 1) & 0xFFFF
            elif isinstance(p, tuple) and p[0] == "beats":
                packets, t_next = p[1].packets(p[2], self.loop_forever, self.faults,
                                               self.device_time_us)
                for pkt in packets:
                    yield _Item(t, 0, pkt)
                if t_next is not None:
                    push(t_next, 3, ("beats", p[1], p[2] + 1))
            else:
                sensor, k = p
                msg, t_next = self._samples_packet(sensor, k)
                if msg is not None:
                    yield _Item(t, 0, msg)
                if t_next is not None:
                    push(t_next, 3, (sensor, k + 1))

    def _samples_packet(self, s: _Sensor, k: int) -> tuple[Samples | None, float | None]:
        """Packet ``k`` of sensor ``s`` (counting across loops) and the next emission time."""
        n_rec = len(s.raw)
        rate = s.info.rate_hz
        per_lap = math.ceil(n_rec / s.per_packet)
        lap, j = divmod(k, per_lap)
        if lap > 0 and not self.loop_forever:
            return None, None
        i0 = j * s.per_packet
        i1 = min(n_rec, i0 + s.per_packet)
        lap_t = lap * (n_rec / rate)
        t_first = lap_t + i0 / rate
        raw = self._apply_contact(s, s.raw[i0:i1], t_first)
        # trusted: (n, C) wire values of the sensor's format, u8 id, u16 seq, u64 time
        msg = Samples._from_wire(s.info.sensor_id, s.seq, self.device_time_us(t_first), raw)
        s.seq = (s.seq + 1) & 0xFFFF
        j_next, lap_next = (j + 1, lap) if j + 1 < per_lap else (0, lap + 1)
        if lap_next > 0 and not self.loop_forever:
            return msg, None
        n_next = min(n_rec, (j_next + 1) * s.per_packet)
        return msg, lap_next * (n_rec / rate) + n_next / rate

    def _apply_contact(self, s: _Sensor, raw: np.ndarray, t_first: float) -> np.ndarray:
        f = self.faults
        if f.contact_lost_at_s is None or s.info.kind not in ("eda", "c_eda", "bvp"):
            return raw
        t = t_first + np.arange(len(raw)) / s.info.rate_hz
        off = (t >= f.contact_lost_at_s) & (t < f.contact_lost_at_s + f.contact_lost_s)
        if not off.any():
            return raw
        raw = raw.copy()
        if s.info.kind == "bvp":  # no pulse without skin: sensor noise around zero
            noise = np.random.default_rng(int(t_first * 1000)).normal(0, 0.5, raw[off].shape)
            raw[off] = s.info.to_raw(noise)
        else:  # open electrodes: no conductance
            raw[off] = s.info.to_raw(np.zeros(raw[off].shape))
        return raw

    def _hub_us(self, t: float) -> int:
        return round(((self.hub_t0 or 0.0) + t) * 1e6)

    def timeline(self) -> Iterator[Emission]:
        """Every emission in order, link faults applied (recording time; no sleeping)."""
        f = self.faults
        rng = np.random.default_rng(f.seed)
        held: tuple[Emission, int] | None = None  # a packet sent late, with its copies
        stalls = sorted(f.stall_at_s)
        disconnects = sorted(f.disconnect_at_s)
        down_until = -math.inf
        for item in self._base():
            t, msg = item.t, item.payload
            # link down?
            while disconnects and disconnects[0] <= t:
                d = disconnects.pop(0)
                if held is not None:  # the held-back packet dies with the link
                    kind = type(held[0].message).__name__.lower()
                    self.stats["lost_disconnected"] += held[1]
                    self.stats[f"lost_disconnected_{kind}"] += held[1]
                    held = None
                self.stats["disconnects"] += 1
                yield Emission(d, "disconnect")
                down_until = d + f.disconnect_s
            if t < down_until:
                self.stats["lost_disconnected"] += 1
                self.stats[f"lost_disconnected_{type(msg).__name__.lower()}"] += 1
                continue
            if down_until > -math.inf:
                yield Emission(down_until, "reconnect")
                yield Emission(down_until, "message", self.hello)
                self.stats["sent"] += 1
                down_until = -math.inf
            # stalled link: the message waits for the stall to end
            for s0 in stalls:
                if s0 <= t < s0 + f.stall_s:
                    t = s0 + f.stall_s
                    self.stats["stalled"] += 1
                    break
            copies = 1
            if not isinstance(msg, Hello):
                kind = type(msg).__name__.lower()
                if f.drop and rng.random() < f.drop:
                    self.stats["dropped"] += 1
                    self.stats[f"dropped_{kind}"] += 1
                    continue
                if f.duplicate and rng.random() < f.duplicate:
                    copies = 2
                    self.stats["duplicated"] += 1
                    self.stats[f"duplicated_{kind}"] += 1
                if f.reorder and held is None and rng.random() < f.reorder:
                    held = (Emission(t, "message", msg), copies)
                    self.stats["reordered"] += 1
                    continue
            for _ in range(copies):
                self.stats["sent"] += 1
                yield Emission(t, "message", msg)
            # a held packet goes out right after the next one of its own stream, so the hub
            # sees that stream's sequence numbers out of order
            if held is not None and _stream_key(held[0].message) == _stream_key(msg):
                for _ in range(held[1]):
                    self.stats["sent"] += 1
                    yield Emission(t, "message", held[0].message)
                held = None
        if held is not None:
            for _ in range(held[1]):
                self.stats["sent"] += 1
                yield held[0]

    # -- paced async iteration ------------------------------------------------------------
    async def emissions(self) -> AsyncIterator[Emission]:
        """:meth:`timeline` paced to ``speed`` on the running loop (transports use this)."""
        loop = asyncio.get_running_loop()
        real0 = loop.time()
        self.hub_t0 = time.monotonic()
        unpaced = math.isinf(self.speed)
        for i, em in enumerate(self.timeline()):
            if unpaced:
                if i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            else:
                delay = real0 + em.t / self.speed - loop.time()
                await asyncio.sleep(max(0.0, delay))
            yield em

    async def frames(self) -> AsyncIterator[bytes]:
        """Serial frames as the device sends them (``Faults.flip`` corrupts some bytes)."""
        async for _, frame in self._timed_frames():
            yield frame

    async def _timed_frames(self) -> AsyncIterator[tuple[float, bytes]]:
        flipper = self._flipper()
        async for em in self.emissions():
            if em.message is not None:
                yield em.t, flipper(encode_frame(em.message))

    def frame_timeline(self) -> Iterator[tuple[float, bytes]]:
        """``(recording time, frame)`` of every message, link faults and ``Faults.flip``
        applied, unpaced (:meth:`frames` paces the same frames). A caller that paces them
        itself (another process playing many wearables) sets :attr:`hub_t0` first, as
        :meth:`emissions` does: TIME_SYNC carries it."""
        flipper = self._flipper()
        for em in self.timeline():
            if em.message is not None:
                yield em.t, flipper(encode_frame(em.message))

    def _flipper(self) -> Callable[[bytes], bytes]:
        """``Faults.flip``: a function corrupting one byte of some frames (seeded)."""
        rng = np.random.default_rng(self.faults.seed + 1)
        flip = self.faults.flip

        def apply(frame: bytes) -> bytes:
            if not flip or rng.random() >= flip:
                return frame
            b = bytearray(frame)
            i = int(rng.integers(0, len(b) - 1))  # never the delimiter
            b[i] ^= int(rng.integers(1, 256))
            self.stats["flipped"] += 1
            return bytes(b)

        return apply

    async def messages(self) -> AsyncIterator[tuple[float, Message]]:
        """``(virtual hub time, message)`` as a hub decoding :meth:`frames` receives them.

        Frames go through a real :class:`FrameDecoder`, so flipped bytes are rejected by
        the CRC exactly as on a serial port; its counters are :attr:`decoder_stats`. With
        ``frames=False`` the messages are handed over as built (no frame round trip).
        """
        if not self.frames_on:
            async for em in self.emissions():
                if em.message is not None:
                    yield (self.hub_t0 or 0.0) + em.t, em.message
            return
        decoder = FrameDecoder()
        self.decoder_stats = decoder.stats
        async for t, frame in self._timed_frames():
            t_hub = (self.hub_t0 or 0.0) + t
            for msg in decoder.feed(frame):
                yield t_hub, msg
