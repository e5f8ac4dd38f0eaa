"""The hub pipeline: source -> ingest -> windows -> inference (off-loop) -> decisions -> sinks.

:class:`Daemon` wires parts that are each built and tested on their own:

    SensorSource ─items─▶ DeviceIngest (per device) ─windows─▶ InferenceWorker (thread)
        ─probabilities─▶ DecisionLogic (per device) ─decisions, events─▶ sinks

Everything on the event loop is short and non-blocking; the engine runs on the worker
thread, SQLite and JSON writes on the sinks' threads. Invalid windows get no decision, only
a counted reason (and an ``invalid_windows`` event when a device's windows turn unusable).

Latency: each window is stamped with the hub time its last packet arrived
(:attr:`~edge.ingest.ReadyWindow.completed_at`); *window -> decision* runs from there to the
moment the decision has been handed to the sinks, so it covers the source queue, the shared
preprocessing that cuts the window, the inference queue and engine, the hand-back to the
event loop and the decision logic. The summary and health report it
(``window_to_decision_p50_ms`` / ``_p99_ms``) beside the engine-only figure
(``engine_p50_ms``) and the inference worker's queue + engine (``latency_p50_ms``).
:meth:`Daemon.observe` gives each decision with its :class:`DecisionTiming` to a callback
(benchmarks use it; no private method needs wrapping).

Shutdown (SIGTERM, SIGINT, ``--duration`` or the end of a finite source): stop the source,
cut the remaining windows, wait for every window already accepted by the worker
(``inference.drain_timeout_s``), then close the sinks, which write what they hold
(``sinks.close_timeout_s``). A decision once computed reaches the database unless the
database stays unwritable past that deadline, and then it is counted as lost.

:func:`open_daemon` builds a daemon from a :class:`~edge.config.DaemonConfig` (bundle,
engine, source, sinks); the CLI calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import numpy as np

from edge.bundle import Bundle, demo_bundle_path, load_bundle
from edge.calibration_store import CalibrationStore
from edge.config import DaemonConfig
from edge.decisions import Decision, DecisionLogic, DeviceEvents, Event
from edge.errors import BundleError, ContractError, EdgeError
from edge.inference import Engine, InferenceResult, InferenceWorker, Job, LatencyTracker
from edge.ingest import DeviceIngest, ReadyWindow
from edge.preprocess import Calibration
from edge.sdnotify import SdNotifier, watchdog_interval
from edge.sinks import JsonLinesSink, LogSink, Sink, SqliteSink
from edge.sources.base import ConnectionEvent, SensorSource, SourceItem
from edge.status import StatusLine, format_health, peak_rss_mb, rss_mb

__all__ = ["Daemon", "DecisionTiming", "open_daemon", "open_fds", "process_age_s"]

log = logging.getLogger(__name__)

STATUS_REFRESH_S: Final = 0.5  # the live line's data is refreshed twice a second
# a non-live source (sim/replay) waits while this fraction of the inference queue is used,
# instead of letting windows be dropped
BACKPRESSURE_FRACTION: Final = 0.5


def open_fds() -> int:
    """File descriptors this process holds (Linux /proc; -1 where unknown)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), for the time-to-ready figure."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); 2 fields precede it after ")"
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return math.nan


@dataclass(frozen=True, slots=True)
class DecisionTiming:
    """Where one window's time went, hub ``time.monotonic()`` seconds (see the module doc)."""

    device: str
    window_index: int
    completed_at: float  # the window's last packet arrived (ReadyWindow.completed_at)
    handled_at: float  # the daemon began handling that packet (ingest, preprocessing)
    submitted_at: float  # the window, cut and packed, was handed to the inference worker
    engine_ms: float  # this window's share of the engine call
    worker_ms: float  # submitted -> result on the worker (inference queue + engine)
    decided_at: float  # the decision had been handed to the sinks

    @property
    def window_to_decision_ms(self) -> float:
        """The full figure: window complete -> decision handed to the sinks."""
        return (self.decided_at - self.completed_at) * 1e3

    @property
    def source_wait_ms(self) -> float:
        """Arrival of the completing packet -> the daemon handling it (source queue, lag)."""
        return (self.handled_at - self.completed_at) * 1e3

    @property
    def preprocess_ms(self) -> float:
        """Handling the completing packet: ingest, shared preprocessing, validity, packing."""
        return (self.submitted_at - self.handled_at) * 1e3

    @property
    def delivery_ms(self) -> float:
        """The rest: worker result -> event loop -> decision logic -> sinks."""
        return (self.decided_at - self.submitted_at) * 1e3 - self.worker_ms


DecisionObserver = Callable[[Decision, DecisionTiming], None]
ItemObserver = Callable[[SourceItem, float], None]


@dataclass
class _Device:
    ingest: DeviceIngest
    logic: DecisionLogic
    events: DeviceEvents
    last: Decision | None = None
    label_for: Callable[[str, float, float], str | None] | None = None


@dataclass
class _Tally:
    """Counters that end up in the summary."""

    decisions_per_state: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    labelled: int = 0
    agree: int = 0
    raw_agree: int = 0
    decisions: int = 0


class Daemon:
    """One run of the hub pipeline; see the module docstring."""

    def __init__(
        self,
        cfg: DaemonConfig,
        *,
        bundle: Bundle,
        engine: Engine,
        source: SensorSource,
        sinks: list[Sink],
        engine_name: str = "?",
        notifier: SdNotifier | None = None,
        status: StatusLine | None = None,
        recorder: Any = None,
        store: CalibrationStore | None = None,
        calibrate_only: bool = False,
    ) -> None:
        self.cfg = cfg
        self.bundle = bundle
        self.contract = bundle.contract
        self.model_id = bundle.model_id
        self.engine = engine
        self.engine_name = engine_name
        self.source = source
        self.sinks = sinks
        self.notifier = notifier or SdNotifier()
        self.status = status
        self.recorder = recorder
        self.store = store or CalibrationStore(cfg.calibration_path)
        # `edge-daemon calibrate`: enroll every device afresh, stop once all have a baseline
        self.calibrate_only = calibrate_only
        self.devices: dict[str, _Device] = {}
        self.counters: Counter[str] = Counter()
        self.tally = _Tally()
        self.worker = InferenceWorker(
            engine, self._on_result, queue_size=cfg.inference.queue_size,
            max_batch=cfg.inference.max_batch,
        )
        # window complete -> decision handed to the sinks (ms); see the module docstring
        self.window_latency = LatencyTracker()
        self._decision_observers: list[DecisionObserver] = []
        self._item_observers: list[ItemObserver] = []
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._signals = 0
        self._t_start = time.monotonic()
        self._wall_start = time.time()
        self.ready_s = math.nan
        self._label_for = getattr(source, "label_for", None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_timeout_s = cfg.inference.drain_timeout_s
        self._close_timeout_s = cfg.sinks.close_timeout_s

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run until the source ends, ``duration`` passes or a signal arrives; the summary."""
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        for sink in self.sinks:
            sink.start()
        self.worker.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self.source.start()
            self.ready_s = process_age_s()
            rss = rss_mb()
            log.info("ready in %.0f ms (process start to READY), rss %.1f MB; model %s, engine %s",
                     self.ready_s * 1000, rss, self.model_id, self.engine_name)
            self.notifier.ready(f"deciding with {self.model_id} on {self.engine_name}")
            tasks.append(asyncio.create_task(self._consume(), name="consume"))
            tasks.append(asyncio.create_task(self._health_loop(), name="health"))
            wd = watchdog_interval()
            if wd is not None:
                tasks.append(asyncio.create_task(self._watchdog_loop(wd), name="watchdog"))
            if self.status is not None and self.status.enabled:
                self.status.start()
                tasks.append(asyncio.create_task(self._status_loop(), name="status"))
            if self.cfg.duration > 0:
                loop.call_later(self.cfg.duration, self.request_stop, "duration reached")
            stop_wait = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait({tasks[0], stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done and tasks[0].exception() is not None:
                raise tasks[0].exception()  # type: ignore[misc]
            stop_wait.cancel()
            if not self._stop.is_set():
                self._stop_reason = "source ended"
            await self._shutdown(tasks[0])
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, EdgeError, OSError):
                    await t
            if self.status is not None:
                self.status.stop()
            self._remove_signals(loop)
            self.notifier.close()
        summary = self.summary()
        log.info("stopped (%s)", self._stop_reason)
        return summary

    def observe(self, callback: DecisionObserver) -> Callable[[], None]:
        """Call ``callback(decision, timing)`` for every decision, once it has been handed
        to the sinks, on the event loop (keep it short). Returns the function that removes it.
        """
        self._decision_observers.append(callback)
        return lambda: self._decision_observers.remove(callback)

    def observe_items(self, callback: ItemObserver) -> Callable[[], None]:
        """Call ``callback(item, read_at)`` for every source item as the daemon reads it
        (``read_at``: hub ``time.monotonic()``), before it is handled; on the event loop.
        Returns the function that removes it.
        """
        self._item_observers.append(callback)
        return lambda: self._item_observers.remove(callback)

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            log.info("stopping: %s", reason)
            self._stop.set()

    async def _shutdown(self, consumer: asyncio.Task[None]) -> None:
        self.notifier.stopping(f"draining ({self._stop_reason})")
        await self.source.stop()  # ends the source's iteration; the consumer then finishes
        try:
            async with asyncio.timeout(5.0):
                await consumer
        except TimeoutError:
            log.error("the source did not end within 5 s of stop(); cancelling it")
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        for key, dev in self.devices.items():
            out = dev.ingest.flush()
            self._dispatch(key, dev, out.windows, out.events)
        try:
            async with asyncio.timeout(self._drain_timeout_s):
                await self.worker.drain()
        except TimeoutError:
            self.counters["windows_lost_at_shutdown"] += self.worker.outstanding
            log.error("%d windows were still waiting for the engine after %.1f s",
                      self.worker.outstanding, self._drain_timeout_s)
        self.worker.stop()
        if self.recorder is not None:
            self.recorder.close()
        # the sinks' threads write what they hold; run their (blocking) close off the loop
        for sink in self.sinks:
            lost = await asyncio.to_thread(sink.close, self._close_timeout_s)
            if lost:
                self.counters[f"records_lost_{sink.name}"] += lost

    # -- items in --------------------------------------------------------------------------
    async def _consume(self) -> None:
        high_water = max(1, int(self.cfg.inference.queue_size * BACKPRESSURE_FRACTION))
        async for item in self.source:
            self._on_item(item)
            if not self.source.live:
                await self.worker.wait_for_room(high_water)
        log.debug("source iteration ended")

    def _on_item(self, item: SourceItem) -> None:
        self.counters["items"] += 1
        if self._item_observers:
            read_at = time.monotonic()
            for obs in self._item_observers:
                obs(item, read_at)
        if self.recorder is not None and not isinstance(item.message, ConnectionEvent):
            self.recorder.write(item)
        dev = self.devices.get(item.device)
        if dev is None:
            dev = self._new_device(item.device)
        try:
            out = dev.ingest.handle(item)
        except (EdgeError, ValueError) as e:
            # a message that passed the wire checks but not ours: count it, keep going
            self.counters["items_rejected"] += 1
            log.warning("%s: message rejected: %s", item.device, e)
            return
        self._dispatch(item.device, dev, out.windows, out.events)

    def _new_device(self, key: str) -> _Device:
        cfg = self.cfg
        events = DeviceEvents(cfg.decisions, resident=key, device=key)
        ingest = DeviceIngest(
            key,
            self.contract,
            events,
            resolve_resident=self._resolve_resident,
            load_calibration=self._load_calibration,
            save_calibration=self._save_calibration,
            enroll=cfg.calibration.enroll,
            realtime=cfg.realtime,
            wall_at_start=self._wall_start,
            mono_at_start=self._t_start,
        )
        logic = DecisionLogic(self.contract.class_names, cfg.decisions, resident=ingest.resident,
                              device=key, model_id=self.model_id)
        dev = _Device(ingest, logic, events)
        self.devices[key] = dev
        log.info("new device %s", key)
        return dev

    def _resolve_resident(self, key: str, device_id: str | None) -> str:
        r = self.cfg.residents
        if key in r:
            return r[key]
        if device_id is not None and device_id in r:
            return r[device_id]
        if self.cfg.resident and len(self.devices) <= 1:
            return self.cfg.resident
        return device_id or key

    def _load_calibration(self, resident: str) -> Calibration | None:
        if self.calibrate_only:
            return None
        return self.store.load(resident, self.contract)

    def _save_calibration(self, resident: str, cal: Calibration) -> None:
        path = self.store.save(resident, cal, self.contract)
        log.info("baseline of %s stored at %s", resident, path)

    def _dispatch(self, key: str, dev: _Device, windows: list[ReadyWindow],
                  events: list[Event]) -> None:
        dev.logic.resident = dev.ingest.resident
        for ev in events:
            self._emit(ev)
        for rw in windows:
            self.counters["windows"] += 1
            if not rw.window.valid:
                continue  # counted by reason in the ingest; no decision from it
            try:
                x = self.contract.pack(rw.window.data)  # (L,)
            except ContractError as e:  # pragma: no cover - the assembler follows the contract
                self.counters["windows_unpackable"] += 1
                log.error("%s: window %d cannot be packed: %s", key, rw.window.index, e)
                continue
            self.worker.submit(Job(x, rw))

    # -- results back ----------------------------------------------------------------------
    def _on_result(self, r: InferenceResult) -> None:
        rw: ReadyWindow = r.job.meta
        dev = self.devices[rw.device]
        if r.probabilities is None:
            return  # counted by the worker (engine_errors)
        w = rw.window
        label = None
        if self._label_for is not None:
            label = self._label_for(rw.device, w.start, w.end)
        decision, events = dev.logic.update(
            r.probabilities, t=rw.t, window_start=w.start, window_end=w.end,
            window_index=w.index, label=label,
            # the full figure, as the sinks store it (only their enqueue is left out)
            latency_ms=(time.monotonic() - rw.completed_at) * 1e3,
        )
        dev.last = decision
        self.tally.decisions += 1
        self.tally.decisions_per_state[decision.state] += 1
        if label is not None:
            self.tally.labelled += 1
            self.tally.agree += decision.state == label
            self.tally.raw_agree += max(decision.raw, key=decision.raw.__getitem__) == label
        self._emit(decision)
        decided_at = time.monotonic()
        if math.isfinite(rw.completed_at):
            self.window_latency.add((decided_at - rw.completed_at) * 1e3)
        if self._decision_observers:
            timing = DecisionTiming(rw.device, w.index, rw.completed_at, rw.handled_at,
                                    r.job.enqueued, r.engine_ms, r.latency_ms, decided_at)
            for obs in list(self._decision_observers):
                obs(decision, timing)
        for ev in events:
            self._emit(ev)

    def _emit(self, record: Decision | Event) -> None:
        if isinstance(record, Event):
            self.tally.events[record.kind] += 1
            if (self.calibrate_only and record.kind == "calibrated"
                    and all(d.ingest.calibration is not None for d in self.devices.values())):
                self.request_stop("every device has a baseline")
            if record.kind == "state_change" and self.status is not None and self.status.enabled:
                d = record.detail
                self.status.print(f"{time.strftime('%H:%M:%S', time.localtime(record.t))} "
                                  f"{record.resident}: {d.get('from') or '…'} → {d.get('to')}")
        for sink in self.sinks:
            sink.submit(record)

    def on_sink_fault(self, name: str, error: str | None) -> None:
        """Called from a sink's thread: report the fault through the other sinks."""
        kind = "sink_fault" if error is not None else "sink_recovered"
        ev = Event("hub", "hub", time.time(), kind, {"sink": name, "error": error} if error
                   else {"sink": name})
        with contextlib.suppress(RuntimeError):  # loop closed at shutdown
            self._loop_call(lambda: self._emit_except(ev, name))

    def _loop_call(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(fn)

    def _emit_except(self, ev: Event, failing: str) -> None:
        self.tally.events[ev.kind] += 1
        for sink in self.sinks:
            if sink.name != failing:
                sink.submit(ev)

    # -- periodic ----------------------------------------------------------------------------
    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.health.interval_s)
            h = self.health()
            log.info("%s w2d_p50=%.1fms w2d_p99=%.1fms", format_health(h),
                     h["window_to_decision_p50_ms"], h["window_to_decision_p99_ms"])
            self.notifier.status(
                f"{h['devices']} devices, {self.tally.decisions} decisions, "
                f"queue {h['inference'].get('queue', 0)}, rss {h['rss_mb']:.0f} MB"
            )

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _status_loop(self) -> None:
        assert self.status is not None
        while True:
            self.status.update(self.live_status())
            await asyncio.sleep(STATUS_REFRESH_S)

    # -- reporting ---------------------------------------------------------------------------
    def _windows(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for dev in self.devices.values():
            for k, v in dev.ingest.counters.items():
                if k == "windows_valid":
                    c["valid"] += v
                elif k.startswith("windows_invalid_"):
                    c[k.removeprefix("windows_")] += v
        return c

    def _drops(self) -> dict[str, int]:
        d: Counter[str] = Counter()
        src = self.source.stats.snapshot()
        d["source_queue_full"] = src.get("dropped_queue_full", 0)
        d["inference_queue_full"] = self.worker.counters.get("dropped_queue_full", 0)
        d["engine_errors"] = self.worker.counters.get("engine_errors", 0)
        for dev in self.devices.values():
            seq = dev.ingest.seq.totals()
            d["lost_packets"] += seq.get("lost", 0)
            d["duplicate_packets"] += dev.ingest.counters.get("duplicate_packets", 0)
            d["samples_before_hello"] += dev.ingest.counters.get("samples_before_hello", 0)
            if dev.ingest.assembler is not None:
                st = dev.ingest.assembler.stats
                d["samples_out_of_order"] += sum(st.dropped_out_of_order.values())
                d["samples_stalled"] += sum(st.discarded_stalled.values())
        for sink in self.sinks:
            s = sink.stats.snapshot()
            d[f"sink_{sink.name}_buffer_full"] = s.get("dropped_buffer_full", 0)
            d[f"sink_{sink.name}_lost_at_close"] = s.get("lost_at_close", 0)
        d["windows_lost_at_shutdown"] = self.counters.get("windows_lost_at_shutdown", 0)
        return dict(d)

    def _data_s(self) -> float:
        return max((d.ingest.data_span_s for d in self.devices.values()), default=0.0)

    def health(self) -> dict[str, Any]:
        src = self.source.health()
        src.setdefault("items", self.counters["items"])
        src.setdefault("queue", 0)
        w50, w99 = self.window_latency.percentiles(50, 99)
        return {
            "devices": len(self.devices),
            "source": src,
            "samples": sum(d.ingest.counters.get("samples", 0) for d in self.devices.values()),
            "windows": dict(self._windows()),
            "decisions": self.tally.decisions,
            "drops": self._drops(),
            "inference": self.worker.health(),
            # window complete -> decision handed to the sinks (the engine alone: inference)
            "window_to_decision_p50_ms": w50,
            "window_to_decision_p99_ms": w99,
            "sinks": {s.name: s.health() for s in self.sinks},
            "per_device": {k: d.ingest.health() for k, d in self.devices.items()},
            "rss_mb": rss_mb(),
            # a leak shows as a count that keeps growing over days of health lines
            "tasks": len(asyncio.all_tasks()),
            "fds": open_fds(),
        }

    def live_status(self) -> dict[str, Any]:
        devs = []
        for dev in self.devices.values():
            last = dev.last
            note = dev.ingest.state_note
            if note == "enrolling":
                note = f"enrolling {dev.ingest.enrollment_progress():.0%}"
            devs.append({
                "resident": dev.ingest.resident,
                "state": None if last is None else last.state,
                "p": None if last is None else last.probabilities[last.state],
                "note": note,
            })
        w = self._windows()
        p50, _ = self.worker.latency.percentiles(50, 99)
        return {
            "devices": devs,
            "windows": sum(w.values()),
            "valid": w.get("valid", 0),
            "queue": self.worker.qsize(),
            "latency_p50_ms": p50,
            "rss_mb": rss_mb(),
            "data_s": self._data_s(),
        }

    def summary(self) -> dict[str, Any]:
        p50, p99 = self.worker.latency.percentiles(50, 99)
        e50, e99 = self.worker.engine_latency.percentiles(50, 99)
        w50, w99 = self.window_latency.percentiles(50, 99)
        t = self.tally
        agreement = None
        if t.labelled:
            agreement = {"labelled": t.labelled, "agree": t.agree, "rate": t.agree / t.labelled,
                         "raw_agree": t.raw_agree, "raw_rate": t.raw_agree / t.labelled}
        return {
            "elapsed_s": time.monotonic() - self._t_start,
            "data_s": self._data_s(),
            "stop_reason": self._stop_reason,
            "model_id": self.model_id,
            "engine": self.engine_name,
            "devices": sorted(d.ingest.resident for d in self.devices.values()),
            "decisions": t.decisions,
            "decisions_per_state": dict(t.decisions_per_state),
            "windows": dict(self._windows()),
            "drops": self._drops(),
            # the source's own counters (frames rejected by reason, reconnections, queue
            # drops): with the ingest's, they account for every packet the devices sent
            "source": self.source.health(),
            "per_device": {k: d.ingest.health() for k, d in self.devices.items()},
            "events": dict(t.events),
            # window complete -> decision handed to the sinks: everything the hub does
            "window_to_decision_p50_ms": w50,
            "window_to_decision_p99_ms": w99,
            "latency_p50_ms": p50,  # the inference worker alone: its queue + the engine
            "latency_p99_ms": p99,
            "engine_p50_ms": e50,  # the engine alone, per window
            "engine_p99_ms": e99,
            "ready_s": self.ready_s,
            "rss_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
            "agreement": agreement,
            "sinks": {s.name: s.stats.snapshot() for s in self.sinks},
        }

    # -- signals -------------------------------------------------------------------------------
    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second %s: not waiting for the drain any longer", sig.name)
            self._drain_timeout_s = 0.001
            self._close_timeout_s = 0.5
            return
        self.request_stop(f"{sig.name} received")


def open_daemon(
    cfg: DaemonConfig,
    *,
    stdout: TextIO | None = None,
    status: StatusLine | None = None,
    calibrate: bool = False,
) -> Daemon:
    """Verify the bundle, choose the engine, open the sinks and the source: a ready Daemon.

    ``calibrate``: the ``edge-daemon calibrate`` run (fresh enrollment, log sink only).

    Raises :class:`~edge.errors.EdgeError` subclasses (BundleError, EngineError, ConfigError,
    RecordingError, SourceError) with messages that say what to fix.
    """
    from edge.engines import open_engine

    bundle_path = cfg.bundle or str(demo_bundle_path())
    if not cfg.bundle and not (demo_bundle_path() / "manifest.json").is_file():
        raise BundleError("the demo bundle is not installed; pass --bundle DIR (or build the "
                          "demo bundle with `make demo-bundle`)", path=bundle_path,
                          reason="not_found")
    bundle = load_bundle(bundle_path, trusted_keys=cfg.trusted_keys,
                         require_signature=bool(cfg.trusted_keys))
    precision = None if cfg.precision == "auto" else cfg.precision
    engine = open_engine(bundle, cfg.backend, precision, cfg.threads)
    x = np.zeros((1, bundle.contract.input_length), np.float32)
    for _ in range(cfg.inference.warmup_runs):
        engine.run(x)  # allocations and kernel packing happen before READY
    engine_name = f"{engine.name}:{getattr(engine, 'key', '?')}"
    sel = getattr(engine, "selection", None)
    if sel is not None:
        log.info("engine: %s", sel.summary())

    from edge.sources import open_source

    source = open_source(cfg.device, cfg, class_names=bundle.class_names)
    if cfg.device == "sim" and cfg.sim.stagger:
        from edge.sources.sim import SimSource

        if isinstance(source, SimSource):  # windows complete spread over the model's hop
            source.stagger(bundle.contract.hop_s)
    recorder = None
    if cfg.record_raw:
        from edge.sources.replay import RawRecorder

        recorder = RawRecorder(cfg.record_raw)
        log.warning("recording raw frames to %s (local only; contains raw sensor data)",
                    cfg.record_raw)

    sinks: list[Sink] = []
    daemon_ref: list[Daemon] = []

    def on_fault(name: str, error: str | None) -> None:
        if daemon_ref:
            daemon_ref[0].on_sink_fault(name, error)

    s = cfg.sinks
    if calibrate:
        sinks.append(LogSink())
    elif s.sqlite:
        sinks.append(SqliteSink(cfg.db_path, retention_days=s.retention_days, max_mb=s.max_db_mb,
                                buffer_max=s.buffer_max, batch_size=s.batch_size,
                                commit_interval_s=s.commit_interval_s, retry_max_s=s.retry_max_s,
                                on_fault=on_fault))
    if cfg.json and not calibrate:
        sinks.append(JsonLinesSink(stream=stdout or sys.stdout, buffer_max=s.buffer_max,
                                   retry_max_s=s.retry_max_s, on_fault=on_fault))
    if s.jsonl_path and not calibrate:
        sinks.append(JsonLinesSink(s.jsonl_path, buffer_max=s.buffer_max,
                                   retry_max_s=s.retry_max_s, on_fault=on_fault))
    if s.log_decisions and not calibrate:
        sinks.append(LogSink())
    daemon = Daemon(cfg, bundle=bundle, engine=engine, source=source, sinks=sinks,
                    engine_name=engine_name, status=status, recorder=recorder,
                    calibrate_only=calibrate)
    daemon_ref.append(daemon)
    return daemon

