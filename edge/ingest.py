"""Per-device ingest: protocol messages in, model-ready windows and device events out.

For every device (a :class:`~edge.sources.base.SourceItem` ``device`` key) a
:class:`DeviceIngest` keeps:

- who wears it: the device's :class:`~edge.decisions.Wearer`, whose resident it names once
  the HELLO says which device it is; the device's events and decisions read that one object;
- what the device said in its HELLO, the one record of its sensors (transports decode
  without it): each sensor mapped to the model's modalities **by the contract** (a sensor
  whose ``kind`` is a modality name with the right channel count and unit feeds it;
  anything else is ignored and counted), and every SAMPLES packet checked against its
  sensor's announced format and channels. With ``select_contract`` the HELLO also picks the
  contract (the daemon's choice of model for what the device offers; none: the device's
  data is not used, counted);
- for a beats modality (``rr``), each RR sensor's :class:`~edge.beat_clock.BeatClock`, which
  times the intervals of its packets; and the device's CONTACT events as the assembler's
  contact step signal (beats windows without contact are invalid);
- its raw taps (:attr:`DeviceIngest.raw_taps`), which see every accepted SAMPLES packet
  before the windows, whether or not the model uses the sensor (activity counts);
- a :class:`~firmware_bridge.timesync.SequenceTracker` (lost, duplicated, reordered packets:
  duplicates are dropped, losses become ``data_gap`` events);
- a :class:`~firmware_bridge.timesync.ClockMapper` fed by TIME_SYNC, which maps the device
  clock to hub time for the ``t`` of each decision;
- the shared :class:`~core.signal.WindowAssembler` (the bounded raw buffer) which cuts,
  validates and normalizes windows exactly as training did; the model's packets reach it
  (and the raw taps) through a :class:`~edge.packet_hold.PacketHold`, one chunk per sensor
  when they can complete a window rather than one call per packet (the same windows);
- the enrollment of a new resident: the first ``calibration_s`` of data set the baseline
  (:class:`~core.signal.CalibrationAccumulator`); the raw samples of that period are held
  (bounded) and windowed once the baseline exists, so the first minutes get decisions too,
  and the offline evaluation of the same stream gives the same windows.

Windows are cut on the **device's own clock** (seconds since its epoch): samples of one
device share it, so multi-rate alignment needs no estimate and is exactly reproducible from
a raw recording. A clock that jumps backwards (a reboot) starts a new session. Hub time
enters only as the timestamp of what is decided.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from core.contract import InputContract, Modality
from core.errors import CalibrationError, ContractError
from core.signal import Calibration, CalibrationAccumulator, Window, WindowAssembler
from edge.beat_clock import BeatClock
from edge.config import DecisionConfig
from edge.decisions import DeviceEvents, Event, Wearer
from edge.packet_hold import MAX_HELD_PACKETS, PacketHold
from edge.sensors import sensor_mismatch
from edge.sources.base import ConnectionEvent, SourceItem
from edge.time_base import TimeBase
from firmware_bridge.errors import BridgeError
from firmware_bridge.protocol import Event as DeviceEvent
from firmware_bridge.protocol import EventKind, Hello, Samples, SensorInfo, TimeSync
from firmware_bridge.timesync import SeqStatus, SequenceTracker

__all__ = ["DeviceIngest", "IngestOutput", "ReadyWindow"]

log = logging.getLogger(__name__)

# A device clock that goes back by more than this is a new session (reboot, re-based clock),
# not a late packet: BLE and serial never deliver a packet this late.
CLOCK_REGRESSION_S: Final = 10.0
# At most one data_gap event per device per this much data time: a lossy link must not
# turn the event table into a packet log (every lost packet is still counted).
GAP_EVENT_INTERVAL_S: Final = 60.0
# Enrollment keeps the raw samples of the calibration period plus one window and this slack;
# older ones are dropped (counted) while the baseline is not ready, so memory stays bounded.
ENROLL_SLACK_S: Final = 60.0
# A baseline not ready after this many calibration periods is restarted from fresh data
# (the first minutes had too little contact); counted.
ENROLL_RESTART_PERIODS: Final = 2.0

# Contact reports held before the windows start (enrollment): a report per change, so a
# device flapping for the whole enrollment stays far below this; beyond it the oldest go.
MAX_PENDING_CONTACT: Final = 1000

@dataclass(frozen=True, slots=True)
class ReadyWindow:
    """A window cut from one device's stream, with everything the decision needs."""

    device: str
    resident: str
    window: Window
    t: float  # hub wall-clock epoch seconds of the window end (virtual when sped up)
    # hub time.monotonic() when the window was complete: the arrival of the packet that let
    # it be cut (``SourceItem.received_at``); sped-up sim/replay packets carry virtual times,
    # so there it is when the daemon read that packet. Latency is measured from here.
    completed_at: float = math.nan
    handled_at: float = math.nan  # time.monotonic() when the ingest began handling that packet


@dataclass(slots=True)
class IngestOutput:
    windows: list[ReadyWindow]
    events: list[Event]


class DeviceIngest:
    """One device's stream; see the module docstring. Not thread-safe (the loop owns it)."""

    def __init__(
        self,
        key: str,
        contract: InputContract | None,
        decisions: DecisionConfig,
        *,
        resolve_resident: Callable[[str, str | None], str],
        load_calibration: Callable[[str], Calibration | None],
        save_calibration: Callable[[str, Calibration], None],
        enroll: bool = True,
        realtime: bool = True,
        wall_at_start: float | None = None,
        mono_at_start: float | None = None,
        select_contract: Callable[[Hello], InputContract | None] | None = None,
    ) -> None:
        self.key = key
        # None until a HELLO picks it (select_contract) or when no model fits the device
        self.contract: InputContract | None = contract
        self._select_contract = select_contract
        self._resolve_resident = resolve_resident
        self._load_calibration = load_calibration
        self._save_calibration = save_calibration
        self.enroll = enroll
        self.wearer = Wearer(key, resolve_resident(key, None))
        self.events = DeviceEvents(decisions, wearer=self.wearer)
        self.device_id: str | None = None
        self.counters: Counter[str] = Counter()
        self.time = TimeBase(
            realtime=realtime,
            wall_at_start=time.time() if wall_at_start is None else wall_at_start,
            mono_at_start=time.monotonic() if mono_at_start is None else mono_at_start,
        )
        self.seq = SequenceTracker()
        self._sensors: dict[int, SensorInfo] = {}
        self._route: dict[int, Modality] = {}  # sensor id -> the modality it feeds
        self._clocks: dict[int, BeatClock] = {}  # RR sensor id -> its beat times
        # called with (sensor, device seconds (N,), wire values (N, C)) for every accepted
        # SAMPLES packet, model or not, before the windows (the activity counts' tap)
        self.raw_taps: list[Callable[[SensorInfo, np.ndarray, np.ndarray], None]] = []
        self._pending_contact: list[tuple[float, bool]] = []  # contact reports in enrollment
        self.calibration: Calibration | None = None
        self.assembler: WindowAssembler | None = None
        self.origin: float | None = None  # device second of window 0 in this session
        self._enroll: CalibrationAccumulator | None = None
        self._pending: list[tuple[str, np.ndarray, np.ndarray]] = []  # enrollment raw chunks
        self._enroll_t0: float | None = None
        self._max_t = -math.inf  # latest device second seen this session
        self._relink = True  # the next HELLO (re)states the sensors
        # Sequence numbers across a reconnection: packets the device numbered while the link
        # was down are lost and must be counted, so the tracker keeps its state; the first
        # packet of each sensor after the link returns decides whether the numbering
        # continued (a gap: counted lost) or restarted (a reboot: counted as a restart).
        self._last_seq: dict[int, int] = {}  # sensor id -> its most advanced sequence number
        self._relinked: set[int] = set()  # sensors whose next packet follows a reconnection
        self._gap_event_t: float | None = None
        self._lost_reported = 0  # packets lost up to the last data_gap event
        self.state_note = "waiting for HELLO"
        # the packet being handled: stamps the windows it completes (ReadyWindow.completed_at)
        self._completed_at = math.nan
        self._handled_at = math.nan
        # model packets held until they can complete a window (edge.packet_hold)
        self._hold = PacketHold(MAX_HELD_PACKETS)

    # -- dispatch -------------------------------------------------------------------------
    def handle(self, item: SourceItem) -> IngestOutput:
        out = IngestOutput([], [])
        msg = item.message
        self.counters["items"] += 1
        now = time.monotonic()
        self._handled_at = now
        # a realtime source stamps reception on the hub's monotonic clock; never after now
        self._completed_at = min(item.received_at, now) if self.time.realtime else now
        if isinstance(msg, Samples):
            self._on_samples(msg, item.received_at, out)
        elif isinstance(msg, Hello):
            self._on_hello(msg, out)
        elif isinstance(msg, DeviceEvent):
            self._on_event(msg, out)
        elif isinstance(msg, TimeSync):
            try:
                self.time.observe_sync(msg, item.received_at)
            except BridgeError as e:
                self.counters["time_sync_rejected"] += 1
                log.debug("%s: TIME_SYNC rejected: %s", self.key, e)
        elif isinstance(msg, ConnectionEvent):
            self._on_link(msg, out)
        else:
            self.counters["unknown_messages"] += 1
        return out

    def flush(self) -> IngestOutput:
        """End of stream: the remaining windows (complete or invalid)."""
        self._handled_at = self._completed_at = time.monotonic()
        return self._flush()

    def _flush(self) -> IngestOutput:
        out = IngestOutput([], [])
        self._release(out, cut=False)
        if self.assembler is not None:
            self._emit(self.assembler.flush(), out)
        elif self._pending:
            self.counters["enrollment_incomplete_samples"] += sum(len(t) for _, t, _ in
                                                                  self._pending)
            log.warning("%s: stream ended during enrollment (%.0f%%); no baseline stored",
                        self.resident, 100 * self.enrollment_progress())
            self._pending.clear()
        return out

    # -- messages -------------------------------------------------------------------------
    def _on_hello(self, msg: Hello, out: IngestOutput) -> None:
        self.counters["hellos"] += 1
        changed = msg.sensor_map() != self._sensors or msg.device_id != self.device_id
        if not changed and not self._relink:
            return
        first = self.device_id is None
        self.device_id = msg.device_id
        self._sensors = msg.sensor_map()
        self._relink = False
        if changed:  # another device or other sensors: earlier numbering says nothing
            self.seq.reset()
            self._last_seq.clear()
            self._relinked.clear()
        if first:
            self.wearer.resident = self._resolve_resident(self.key, msg.device_id)
        if self._select_contract is not None and (changed or self.contract is None):
            chosen = self._select_contract(msg)  # the daemon says why when nothing fits
            if chosen is not self.contract:
                if self.assembler is not None or self._enroll is not None:
                    self._end_session(out)
                    self.assembler, self._enroll = None, None
                self.contract, self.calibration = chosen, None
                self._clocks.clear()
        if self.contract is None:
            self._route = {}
            self.counters["hello_no_model_fits"] += 1
            self.state_note = "no model fits this device"
            return
        self._route = {}
        for s in msg.sensors:
            m = self._modality_for(s)
            if m is not None:
                self._route[s.sensor_id] = m
        fed = {m.name for m in self._route.values()}
        missing = [n for n in self.contract.modality_names if n not in fed]
        if missing:
            self.counters["hello_missing_modalities"] += 1
            log.warning("%s (%s): the model needs %s but the device offers %s; its windows "
                        "will be invalid (missing_modality)", self.key, msg.device_id, missing,
                        [f"{s.kind}[{s.unit}]" for s in msg.sensors])
        log.info("%s: device %s firmware %s, resident %s, sensors %s", self.key, msg.device_id,
                 msg.firmware_version, self.resident,
                 ", ".join(f"{s.kind}@{s.rate_hz:g}Hz" for s in msg.sensors))
        if self.assembler is None and self._enroll is None:
            self._start_session()

    def _modality_for(self, s: SensorInfo) -> Modality | None:
        assert self.contract is not None  # a HELLO routes sensors only once it has a contract
        try:
            m = self.contract.modality(s.kind)
        except ContractError:
            return None  # a sensor the model does not use (hr, rr, ...)
        why = sensor_mismatch(s, m)
        if why is not None:
            log.warning("%s: sensor %d (%s) ignored: %s", self.key, s.sensor_id, s.kind, why)
            wrong = "channel" if s.channels != m.n_channels else "unit"
            self.counters[f"sensor_{wrong}_mismatch"] += 1
            return None
        return m

    def _on_samples(self, msg: Samples, received_at: float, out: IngestOutput) -> None:
        info = self._sensors.get(msg.sensor_id)
        n = msg.count
        if info is None:
            self.counters["samples_before_hello"] += n
            return
        got, want = msg.raw.dtype, info.sample_format.dtype
        same_format = got.kind == want.kind and got.itemsize == want.itemsize
        if msg.raw.shape[1] != info.channels or not same_format:
            # not what the HELLO announced for this sensor: its values cannot be read
            self.counters["samples_format_mismatch"] += n
            return
        t0 = msg.t_device_us * 1e-6
        # the packet's end, not its start: a slow sensor's packet (a minute of 0.1 Hz light)
        # starts long before the fast sensors' latest sample, and is not late
        if n and t0 + n / info.rate_hz < self._max_t - CLOCK_REGRESSION_S:
            # before the sequence check: a rebooted device numbers its packets from the
            # start again, and those numbers must not pass for duplicates of its old life
            self.counters["clock_regressions"] += 1
            log.warning("%s: device clock went back %.1f s (reboot?); starting a new session",
                        self.key, self._max_t - t0)
            self.seq.reset()
            self._last_seq.clear()
            self._relinked.clear()
            self._end_session(out)
            self._start_session()
        sid = msg.sensor_id
        if sid in self._relinked:
            self._relinked.discard(sid)
            last = self._last_seq.get(sid)
            ahead = None if last is None else (msg.seq - last) % self.seq.modulo
            if ahead is not None and ahead > self.seq.max_gap:  # numbering restarted
                self.seq.reset(sid)
                self.counters["sequence_restarts"] += 1
        status = self.seq.observe(sid, msg.seq)
        if status in (SeqStatus.FIRST, SeqStatus.IN_ORDER, SeqStatus.GAP, SeqStatus.RESTART):
            self._last_seq[sid] = msg.seq
        if status is SeqStatus.DUPLICATE:
            self.counters["duplicate_packets"] += 1
            return
        if status is not SeqStatus.IN_ORDER and len(self._hold):
            self._release(out)  # a held chunk never spans a loss or a restart
        if status is SeqStatus.GAP:
            lost_now = self.seq.counts(msg.sensor_id).lost
            self._note_gap(info, lost_now, out)
        if n == 0:
            return
        m = self._route.get(msg.sensor_id)
        if m is not None and m.beats:
            self._on_beats(msg, info, m, t0, received_at, status is SeqStatus.GAP, out)
            return
        # the last sample's second, as t0 + np.arange(n) / rate computes it
        t_last = t0 + (n - 1) / info.rate_hz
        if t_last > self._max_t:
            self._max_t = t_last
        self.time.observe_samples(t_last, received_at)
        asm = self.assembler
        if m is not None and asm is not None and self._enroll is None:
            self.counters["samples"] += n
            self._hold.add(info, m, t0, t_last, msg.raw)
            if self._hold.due(asm, self.contract):  # type: ignore[arg-type]  # set with asm
                self._release(out)
            return
        t = self._hold.times(t0, n, info.rate_hz)  # (N,) device seconds
        for tap in self.raw_taps:
            tap(info, t, msg.raw)
        if m is None:
            self.counters["samples_unused"] += n
            return
        self.counters["samples"] += n
        x = self._physical(msg.raw, info, msg.sensor_id)
        if x is not None:
            self._push(m.name, t, x, out)

    def _release(self, out: IngestOutput, *, cut: bool = True) -> None:
        """Hand the held packets to the raw taps and the assembler, one chunk per sensor;
        then (``cut``) the windows they complete."""
        if not len(self._hold):
            return
        asm = self.assembler
        assert asm is not None
        for info, m, t, raw in self._hold.take():
            for tap in self.raw_taps:
                tap(info, t, raw)
            x = self._physical(raw, info, info.sensor_id)
            if x is not None:
                self._asm_push(asm, m.name, t, x)
        if cut:
            self._emit(asm.pop_ready(), out)

    def _physical(self, raw: np.ndarray, info: SensorInfo, sensor_id: int) -> np.ndarray | None:
        try:
            return info.to_physical(raw)  # (N, C) float32 in the sensor's unit
        except (ValueError, TypeError) as e:  # a raw array that does not match its sensor
            self.counters["samples_malformed"] += len(raw)
            log.debug("%s: sensor %d samples malformed: %s", self.key, sensor_id, e)
            return None

    def _on_beats(self, msg: Samples, info: SensorInfo, m: Modality, t0: float,
                  received_at: float, lost_before: bool, out: IngestOutput) -> None:
        """An RR packet: intervals timed by the sensor's beat clock (lost packets: a gap)."""
        self.counters["samples"] += msg.count
        x = self._physical(msg.raw, info, msg.sensor_id)
        if x is None:
            return
        clock = self._clocks.setdefault(msg.sensor_id, BeatClock())
        t, rr = clock.place(t0, x[:, 0].astype(np.float64), gap=lost_before)
        if not t.size:
            return
        self._max_t = max(self._max_t, float(t[-1]))
        self.time.observe_samples(float(t[-1]), received_at)
        self._push(m.name, t, rr[:, None], out)

    def _on_event(self, msg: DeviceEvent, out: IngestOutput) -> None:
        t = self.time.to_wall(msg.t_device_us * 1e-6)
        self.counters[f"device_event_{msg.kind.name.lower()}"] += 1
        if msg.kind is EventKind.BATTERY:
            out.events.extend(self.events.on_battery(t, float(msg.value)))
        elif msg.kind is EventKind.CONTACT:
            out.events.extend(self.events.on_contact(t, bool(msg.value)))
            self._contact(msg.t_device_us * 1e-6, bool(msg.value))
        elif msg.kind is EventKind.FAULT:
            log.warning("%s: device reports fault code %d", self.key, msg.value)

    def _on_link(self, msg: ConnectionEvent, out: IngestOutput) -> None:
        now = self.time.to_wall(self._max_t) if math.isfinite(self._max_t) else time.time()
        out.events.extend(self.events.on_link(now, msg.connected, msg.reason))
        self.counters["connects" if msg.connected else "disconnects"] += 1
        if msg.connected:
            # the device may have rebooted: its HELLO is taken as news, and each sensor's
            # next packet tells a continued numbering (losses) from a restarted one
            self._relink = True
            self._relinked = set(self._last_seq)
        for clock in self._clocks.values():  # beats sent while the link was down are lost
            clock.reset()

    def _contact(self, t: float, contact: bool) -> None:
        """A contact report: the assembler's step signal (held until the assembler exists)."""
        if self.assembler is not None:
            self.assembler.push_contact(t, contact)
            return
        if len(self._pending_contact) >= MAX_PENDING_CONTACT:
            self._pending_contact.pop(0)
            self.counters["contact_reports_dropped"] += 1
        self._pending_contact.append((t, contact))

    # -- sessions, enrollment, windows ----------------------------------------------------
    @property
    def _needs_calibration(self) -> bool:
        return self.contract is not None and self.contract.normalization.needs_calibration

    def _start_session(self) -> None:
        assert self.contract is not None  # sessions run under a contract
        self.counters["sessions"] += 1
        self._max_t = -math.inf
        self.time.reset()
        self.assembler = None
        self._enroll = None
        self._pending = []
        self._pending_contact = []
        self._enroll_t0 = None
        for clock in self._clocks.values():
            clock.reset()
        if self._needs_calibration and self.calibration is None:
            self.calibration = self._load_calibration(self.resident)
            if self.calibration is not None:
                log.info("%s: using the stored baseline of resident %s", self.key, self.resident)
        if self._needs_calibration and self.calibration is None and self.enroll:
            self._enroll = CalibrationAccumulator(
                self.contract, source=f"enrollment of {self.resident} on {self.key} "
                                      f"{time.strftime('%Y-%m-%d %H:%M')}"
            )
            self.state_note = "enrolling"
            log.info("%s: no baseline for resident %s; enrolling from the first %.0f s",
                     self.key, self.resident, self.contract.normalization.calibration_s)
        else:
            self.state_note = ""

    def _end_session(self, out: IngestOutput) -> None:
        out2 = self._flush()  # within handle(): the windows keep that packet's stamps
        out.windows.extend(out2.windows)
        out.events.extend(out2.events)

    def _ensure_assembler(self, origin: float) -> WindowAssembler:
        if self.assembler is None:
            assert self.contract is not None
            # a beats sensor's rate is nominal; the assembler times beats by their own times
            rates = {self._route[sid].name: info.rate_hz for sid, info in self._sensors.items()
                     if sid in self._route and not self._route[sid].beats}
            self.assembler = WindowAssembler(
                self.contract, origin=origin, calibration=self.calibration, source_rates=rates
            )
            self.origin = origin
            self._hold.new_assembler()
            for t, contact in self._pending_contact:
                self.assembler.push_contact(t, contact)
            self._pending_contact = []
        return self.assembler

    def _push(self, name: str, t: np.ndarray, x: np.ndarray, out: IngestOutput) -> None:
        if self._enroll is not None:
            self._enroll_push(name, t, x, out)
            return
        asm = self.assembler if self.assembler is not None else self._ensure_assembler(float(t[0]))
        self._asm_push(asm, name, t, x)
        self._emit(asm.pop_ready(), out)

    def _asm_push(self, asm: WindowAssembler, name: str, t: np.ndarray, x: np.ndarray) -> None:
        """``asm.push``, noted by the hold (what it compares with the next window's end)."""
        self._hold.pushed(name, t)
        asm.push(name, t, x)

    def _enroll_push(self, name: str, t: np.ndarray, x: np.ndarray, out: IngestOutput) -> None:
        acc = self._enroll
        assert acc is not None and self.contract is not None
        if self._enroll_t0 is None:
            self._enroll_t0 = float(t[0])
        acc.push(name, t, x)
        self._pending.append((name, t, x))
        period = self.contract.normalization.calibration_s
        if acc.ready:
            try:
                cal = acc.result()
            except CalibrationError as e:  # pragma: no cover - ready said it would work
                log.warning("%s: enrollment failed: %s", self.key, e)
                return
            self._finish_enrollment(cal, out)
            return
        # bound the held raw samples; restart a period that cannot produce a baseline
        keep_from = self._max_t - (period + self.contract.window_s + ENROLL_SLACK_S)
        while self._pending and self._pending[0][1][-1] < keep_from:
            _, old_t, _ = self._pending.pop(0)
            self.counters["enrollment_dropped_samples"] += len(old_t)
        if self._max_t - self._enroll_t0 > ENROLL_RESTART_PERIODS * period:
            self.counters["enrollment_restarts"] += 1
            log.warning("%s: %.0f s of data gave no usable baseline (contact?); restarting "
                        "enrollment", self.key, self._max_t - self._enroll_t0)
            self._enroll = CalibrationAccumulator(self.contract, source=acc.source)
            self._enroll_t0 = None
            dropped = self._pending
            self._pending = []
            self.counters["enrollment_dropped_samples"] += sum(len(p[1]) for p in dropped)

    def _finish_enrollment(self, cal: Calibration, out: IngestOutput) -> None:
        self.calibration = cal
        self._enroll = None
        self.state_note = ""
        try:
            self._save_calibration(self.resident, cal)
        except OSError as e:  # decide anyway; the next start enrolls again
            self.counters["calibration_save_failed"] += 1
            log.error("%s: cannot store the baseline of %s: %s", self.key, self.resident, e)
        out.events.append(Event(self.resident, self.key, self.time.to_wall(self._max_t),
                                "calibrated", {"source": "enrollment"}))
        log.info("%s: baseline of resident %s set from enrollment", self.key, self.resident)
        pending, self._pending = self._pending, []
        origin = min(float(p[1][0]) for p in pending) if pending else self._max_t
        asm = self._ensure_assembler(origin)
        for name, t, x in pending:
            self._asm_push(asm, name, t, x)
            self._emit(asm.pop_ready(), out)

    def _emit(self, windows: list[Window], out: IngestOutput) -> None:
        for w in windows:
            t = self.time.to_wall(w.end)
            if w.valid:
                self.counters["windows_valid"] += 1
            else:
                reason = w.reason.value if w.reason is not None else "unknown"
                self.counters[f"windows_invalid_{reason}"] += 1
            out.events.extend(self.events.on_window(t, w.valid,
                                                    None if w.reason is None else w.reason.value))
            out.windows.append(ReadyWindow(self.key, self.resident, w, t, self._completed_at,
                                           self._handled_at))

    def _note_gap(self, info: SensorInfo, lost_total: int, out: IngestOutput) -> None:
        now = self._max_t if math.isfinite(self._max_t) else 0.0
        if self._gap_event_t is not None and now - self._gap_event_t < GAP_EVENT_INTERVAL_S:
            return
        self._gap_event_t = now
        lost = int(self.seq.totals().get("lost", lost_total))
        out.events.extend(self.events.on_gap(self.time.to_wall(now), info.kind,
                                             lost - self._lost_reported))
        self._lost_reported = lost

    # -- reporting ------------------------------------------------------------------------
    @property
    def resident(self) -> str:
        """The resident this device's records are about (its :attr:`wearer`'s)."""
        return self.wearer.resident

    @property
    def data_span_s(self) -> float:
        """Seconds of data (device clock) from this session's window origin to the latest sample."""
        if self.origin is None or not math.isfinite(self._max_t):
            return 0.0
        return self._max_t - self.origin

    def enrollment_progress(self) -> float:
        return 1.0 if self._enroll is None else self._enroll.progress()

    def health(self) -> dict[str, Any]:
        h: dict[str, Any] = dict(self.counters)
        h.update({f"seq_{k}": v for k, v in self.seq.totals().items()})
        h["clock_jumps"] = self.time.mapper.stats.get("jumps", 0)
        h["drift_ppm"] = round(self.time.mapper.drift_ppm, 1)
        if self.assembler is not None:
            st = self.assembler.stats
            h["assembler_buffered"] = (sum(self.assembler.buffered_samples().values())
                                       + self._hold.samples)
            for name, d in (("dropped_out_of_order", st.dropped_out_of_order),
                            ("dropped_before_origin", st.dropped_before_origin),
                            ("dropped_non_finite_time", st.dropped_non_finite_time),
                            ("discarded_stalled", st.discarded_stalled)):
                if d:
                    h[name] = sum(d.values())
            if st.windows_skipped_empty:
                h["windows_skipped_empty"] = st.windows_skipped_empty
        if self._enroll is not None:
            h["enrollment_progress"] = round(self._enroll.progress(), 3)
        return h
