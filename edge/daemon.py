"""The hub pipeline's wiring: source -> ingest -> windows -> inference -> decisions -> sinks.

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
event loop and the decision logic. :meth:`Daemon.observe` gives each decision with its
:class:`DecisionTiming` to a callback (benchmarks use it; no private method needs wrapping).

Beside the pipeline, :class:`~edge.carers.CarerOutputs` sees every record and source item
and returns what carers are told: alerts (emitted as records), wearables' battery and heart
rate (to the sinks that take them), the hub's own faults. Also beside it,
:class:`~edge.activity.service.ActivityService` taps each device's raw accelerometer before
the windows (activity counts per epoch, in the database) and, after each wearer's midnight,
hands the day's report and trend events back as events. And beside it,
:class:`~edge.personal.runtime.PersonalRuntime` gives each window the head of its wearer
(personalization), caches the embedding, and takes verified model updates, swapped in
between two windows (the update folder; :meth:`Daemon.reload` on SIGHUP).

What the daemon says about itself (periodic health, the live status and its file for
``edge-daemon status``, the end-of-run summary) is :mod:`edge.health`; a person watching it
sees it through a
:class:`~edge.health.StatusView` (the terminal's is :mod:`edge.ui`). Signals belong to the
process's owner, the CLI, which turns them into :meth:`Daemon.request_stop` and
:meth:`Daemon.hurry`.

Shutdown (``request_stop``: a signal, ``--duration`` or the end of a finite source): stop
the source, cut the remaining windows, wait for every window already accepted by the
worker (``inference.drain_timeout_s``), then close the sinks, which write what they hold
(``sinks.close_timeout_s``). A decision once computed reaches the database unless the
database stays unwritable past that deadline, and then it is counted as lost.

:func:`open_daemon` builds a daemon from a :class:`~edge.config.DaemonConfig` (bundle,
engine, source, sinks); the CLI calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from core.contract import InputContract
from core.errors import ContractError, WearableEdgeError
from core.signal import Calibration
from edge import health
from edge.activity.service import ActivityService
from edge.bundle import Bundle
from edge.calibration_store import CalibrationStore
from edge.carers import CarerOutputs, hub_event
from edge.config import DaemonConfig
from edge.decisions import Decision, DecisionLogic, Event
from edge.device_status import WearableStatus
from edge.health import StatusView, Tally
from edge.inference import Engine, InferenceResult, InferenceWorker, Job, LatencyTracker
from edge.ingest import DeviceIngest, ReadyWindow
from edge.models import Model, choose_model
from edge.sdnotify import SdNotifier, watchdog_interval
from edge.sinks import Sink
from edge.sinks.setup import open_sinks
from edge.source_hints import watch_for_data
from edge.sources.base import ConnectionEvent, SensorSource, SourceItem
from firmware_bridge.protocol import Hello, Samples

if TYPE_CHECKING:
    from edge.sources.replay import RawRecorder

__all__ = ["Daemon", "DecisionTiming", "DevicePipeline", "open_daemon"]

log = logging.getLogger(__name__)

# a non-live source (sim/replay) waits while this fraction of the inference queue is used,
# instead of letting windows be dropped
BACKPRESSURE_FRACTION: Final = 0.5
# after stop(), a source has this long to end its iteration before it is cancelled
SOURCE_STOP_TIMEOUT_S: Final = 5.0
# the time-based alert rules and the source watch look this often: alert thresholds are
# minutes, so a few seconds late is nothing, and the tick costs next to nothing
ALERT_TICK_S: Final = 5.0


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
class DevicePipeline:
    """One device's part of the pipeline: its ingest, its decision logic, its last decision,
    and what the wearable says about itself (link, battery, heart rate)."""

    ingest: DeviceIngest
    logic: DecisionLogic
    last: Decision | None = None
    model: Model | None = None  # the model that fits the device (None: none, or no HELLO yet)
    unfit: str = ""  # why no model fits what the device's last HELLO announced
    unfit_said: str = ""  # ... as last said in the log
    status: WearableStatus = field(default_factory=WearableStatus)


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
        status: StatusView | None = None,
        recorder: RawRecorder | None = None,
        store: CalibrationStore | None = None,
        calibrate_only: bool = False,
        models: Sequence[Model] = (),
    ) -> None:
        self.cfg = cfg
        # one model per kind of wearable (edge.models); ``bundle``/``engine`` are the first,
        # the model a device decides with until its HELLO has picked one
        self.models = list(models) or [Model(bundle, engine, engine_name)]
        self.bundle = bundle
        self.contract = bundle.contract
        # what the summary and the status say decides: every model when there are several
        self.model_id = " + ".join(m.model_id for m in self.models)
        self.engine = engine
        self.engine_name = " + ".join(m.engine_name for m in self.models)
        self.source = source
        self.sinks = sinks
        self.notifier = notifier or SdNotifier()
        self.status = status
        self.recorder = recorder
        self.store = store or CalibrationStore(cfg.calibration_path)
        # `edge-daemon calibrate`: enroll every device afresh, stop once all have a baseline
        self.calibrate_only = calibrate_only
        self.devices: dict[str, DevicePipeline] = {}
        self.counters: Counter[str] = Counter()
        self.tally = Tally()
        self.worker = InferenceWorker(
            engine, self._on_result, queue_size=cfg.inference.queue_size,
            max_batch=cfg.inference.max_batch,
        )
        # window complete -> decision handed to the sinks (ms); see the module docstring
        self.window_latency = LatencyTracker()
        self.started_at = time.monotonic()
        self.ready_s = math.nan  # process start -> READY, once ready
        self._decision_observers: list[DecisionObserver] = []
        self._item_observers: list[ItemObserver] = []
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self.waiting_for = ""  # what a daemon without data waits for (edge.source_hints)
        self._wall_start = time.time()
        self._label_for = getattr(source, "label_for", None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_timeout_s = cfg.inference.drain_timeout_s
        self._close_timeout_s = cfg.sinks.close_timeout_s
        self.carers = CarerOutputs(cfg, source_kind=source.kind, live=source.live)
        # actigraphy beside the pipeline (edge.activity); it keeps its epochs in the database
        self.activity = (ActivityService(cfg.actigraphy, cfg.db_path, emit=self._emit)
                         if cfg.actigraphy.enabled and cfg.sinks.sqlite and not calibrate_only
                         else None)
        if cfg.actigraphy.enabled and not cfg.sinks.sqlite:
            log.info("actigraphy is off: it keeps its epochs in the database, which is off")
        # personal heads, embeddings cache, verified updates (edge.personal.runtime)
        self.personal: Any = None  # the PersonalService, set by PersonalRuntime
        self.last_decision_t = 0.0  # the decisions' clock, for update and label times
        self.runtime = None
        # the hub's part in a care home's federation (edge.fleet.member), set by whoever
        # starts it beside the daemon (`edge-daemon --fleet`); it reports in the summary
        self.fleet: Any = None
        if not calibrate_only:
            from edge.personal.runtime import PersonalRuntime

            self.runtime = PersonalRuntime(self)

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run until the source ends, ``duration`` passes or :meth:`request_stop`; the summary."""
        loop = self._loop = asyncio.get_running_loop()
        for sink in self.sinks:
            sink.start()
        self.carers.attach(self.sinks)
        self.worker.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self.source.start()
            # what start made (bundles, engines, sources, imported modules) lives as long as
            # the daemon: out of the cyclic collector's view, its full passes need not rescan
            # it (each one stalls the loop, longer the more wearables a hub carries)
            gc.freeze()
            self.ready_s = health.process_age_s()
            log.info("ready in %.0f ms (process start to READY), rss %.1f MB; model %s, engine %s",
                     self.ready_s * 1000, health.rss_mb(), self.model_id, self.engine_name)
            self.notifier.ready(f"deciding with {self.model_id} on {self.engine_name}")
            tasks.append(asyncio.create_task(self._consume(), name="consume"))
            tasks.append(asyncio.create_task(
                health.log_health(self, self.cfg.health.interval_s, self.notifier),
                name="health"))
            tasks.append(asyncio.create_task(self._alert_loop(), name="alerts"))
            if self.runtime is not None:
                tasks.append(asyncio.create_task(self.runtime.run(), name="personal"))
            tasks.append(asyncio.create_task(watch_for_data(self, self.notifier),
                                             name="waiting"))
            if self.cfg.health.status_file_interval_s > 0:
                tasks.append(asyncio.create_task(health.keep_status_file(self),
                                                 name="status-file"))
            wd = watchdog_interval()
            if wd is not None:
                tasks.append(asyncio.create_task(self._watchdog_loop(wd), name="watchdog"))
            if self.status is not None:
                self.status.start()
                tasks.append(asyncio.create_task(health.refresh_status(self, self.status),
                                                 name="status"))
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
                with contextlib.suppress(asyncio.CancelledError, WearableEdgeError, OSError):
                    await t
            if self.status is not None:
                self.status.stop()
            health.write_status_file(self, running=False)  # `edge-daemon status`: stopped
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
        """Stop gracefully (see the module docstring); ``reason`` ends up in the summary."""
        if not self._stop.is_set():
            self._stop_reason = reason
            log.info("stopping: %s", reason)
            self._stop.set()

    def reload(self) -> None:
        """SIGHUP: take a bundle replaced by hand and the update folder (verified, swapped
        between windows) and the personal heads fitted since."""
        if self.runtime is not None:
            self.runtime.reload()

    def hurry(self) -> None:
        """Stop waiting for the drain: windows still queued for the engine are counted as
        lost, and the sinks get a short last chance to write (a second SIGTERM)."""
        self._drain_timeout_s = 0.001
        self._close_timeout_s = 0.5

    @property
    def stop_reason(self) -> str:
        """Why the run stopped (empty while it runs)."""
        return self._stop_reason

    async def _shutdown(self, consumer: asyncio.Task[None]) -> None:
        self.notifier.stopping(f"draining ({self._stop_reason})")
        await self.source.stop()  # ends the source's iteration; the consumer then finishes
        try:
            async with asyncio.timeout(SOURCE_STOP_TIMEOUT_S):
                await consumer
        except TimeoutError:
            log.error("the source did not end within %.0f s of stop(); cancelling it",
                      SOURCE_STOP_TIMEOUT_S)
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        for key, dev in self.devices.items():
            out = dev.ingest.flush()
            self._dispatch(key, dev, out.windows, out.events)
        if self.activity is not None:  # its last epochs and days, while the sinks take events
            await self.activity.close(self._drain_timeout_s)
        try:
            async with asyncio.timeout(self._drain_timeout_s):
                await self.worker.drain()
        except TimeoutError:
            self.counters["windows_lost_at_shutdown"] += self.worker.outstanding
            log.error("%d windows were still waiting for the engine after %.1f s",
                      self.worker.outstanding, self._drain_timeout_s)
        self.worker.stop()
        if self.runtime is not None:
            await self.runtime.wait_idle()
            await self.runtime.close(self._close_timeout_s)
        if self.recorder is not None:
            self.recorder.close()
        # the sinks' threads write what they hold; run their (blocking) close off the loop
        for sink in self.sinks:
            lost = await asyncio.to_thread(sink.close, self._close_timeout_s)
            if lost:
                self.counters[f"records_lost_{sink.name}"] += lost

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _alert_loop(self) -> None:
        """What time passing raises (edge.carers): a wearable off the wrist or away sends no
        record, a silent source none either."""
        while True:
            await asyncio.sleep(ALERT_TICK_S)
            for ev in self.carers.tick():
                self._emit(ev)

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
        except (WearableEdgeError, ValueError) as e:
            # a message that passed the wire checks but not ours: count it, keep going
            self.counters["items_rejected"] += 1
            log.warning("%s: message rejected: %s", item.device, e)
            return
        self._dispatch(item.device, dev, out.windows, out.events)
        if dev.unfit and dev.unfit != dev.unfit_said and isinstance(item.message, Samples):
            self._say_unfit(dev)
        for ev in self.carers.on_item(item, dev):
            self._emit(ev)

    def _new_device(self, key: str) -> DevicePipeline:
        cfg = self.cfg
        ingest = DeviceIngest(
            key,
            None,  # the device's HELLO picks the model (and so the contract): _choose
            cfg.decisions,
            resolve_resident=self._resolve_resident,
            load_calibration=lambda r: self._load_calibration(r, self._contract_of(key)),
            save_calibration=lambda r, c: self._save_calibration(r, c, self._contract_of(key)),
            enroll=cfg.calibration.enroll,
            realtime=cfg.realtime,
            wall_at_start=self._wall_start,
            mono_at_start=self.started_at,
            select_contract=lambda hello: self._choose(key, hello),
        )
        logic = DecisionLogic(self.contract.class_names, cfg.decisions, wearer=ingest.wearer,
                              model_id=self.models[0].model_id)
        dev = DevicePipeline(ingest, logic)
        self.devices[key] = dev
        if self.activity is not None:
            ingest.raw_taps.append(self.activity.tap(key, ingest.wearer, ingest.time.to_wall))
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

    def _choose(self, key: str, hello: Hello) -> InputContract | None:
        """The model for what device ``key`` offers (its HELLO); one log line when none fits."""
        dev = self.devices[key]
        model, why = choose_model(self.models, hello.sensors, device=f"{key} ({hello.device_id})")
        if model is None:
            # said when the device sends data nobody can use: a strap announces its RR sensor
            # with its first RR intervals, a second after the HELLO of a fresh connection
            dev.model, dev.unfit = None, why
            return None
        dev.unfit = ""
        if model is not dev.model:
            dev.model = model
            dev.logic = DecisionLogic(model.contract.class_names, self.cfg.decisions,
                                      wearer=dev.ingest.wearer, model_id=model.model_id)
            if len(self.models) > 1:
                log.info("%s: deciding with %s", key, model.model_id)
        return model.contract

    def _say_unfit(self, dev: DevicePipeline) -> None:
        """The one line a technician needs: what the device offers, what each model needs."""
        self.counters["devices_without_model"] += 1
        log.warning("%s", dev.unfit)
        dev.unfit_said = dev.unfit

    def _contract_of(self, key: str) -> InputContract:
        dev = self.devices.get(key)
        return dev.model.contract if dev is not None and dev.model is not None else self.contract

    def _load_calibration(self, resident: str, contract: InputContract | None = None
                          ) -> Calibration | None:
        if self.calibrate_only:
            return None
        return self.store.load(resident, contract or self.contract)

    def _save_calibration(self, resident: str, cal: Calibration,
                          contract: InputContract | None = None) -> None:
        path = self.store.save(resident, cal, contract or self.contract)
        log.info("baseline of %s stored at %s", resident, path)

    def _dispatch(self, key: str, dev: DevicePipeline, windows: list[ReadyWindow],
                  events: list[Event]) -> None:
        for ev in events:
            self._emit(ev)
        for rw in windows:
            self.counters["windows"] += 1
            if not rw.window.valid:
                continue  # counted by reason in the ingest; no decision from it
            model = dev.model or self.models[0]
            try:
                x = model.contract.pack(rw.window.data)  # (L,)
            except ContractError as e:  # a window cut for the model the device had before
                self.counters["windows_unpackable"] += 1
                log.error("%s: window %d cannot be packed: %s", key, rw.window.index, e)
                continue
            self.worker.submit(Job(x, rw, engine=model.engine))

    # -- results back ----------------------------------------------------------------------
    def _on_result(self, r: InferenceResult) -> None:
        rw: ReadyWindow = r.job.meta
        dev = self.devices[rw.device]
        if r.probabilities is None:
            return  # counted by the worker (engine_errors)
        if dev.model is not None and not dev.model.accepts(r.job.engine):
            self.counters["results_of_previous_model"] += 1  # the device changed models
            return
        w = rw.window
        probabilities = r.probabilities
        if self.runtime is not None:  # a wearer's own head, or a verified updated one
            model = dev.model or self.models[0]
            probabilities = self.runtime.probabilities(
                dev.ingest.wearer.resident, model.model_id, rw.t, w.end - w.start,
                probabilities, r.embedding)
        self.last_decision_t = max(self.last_decision_t, rw.t)
        label = None
        if self._label_for is not None:
            label = self._label_for(rw.device, w.start, w.end)
        decision, events = dev.logic.update(
            probabilities, t=rw.t, window_start=w.start, window_end=w.end,
            window_index=w.index, label=label,
            # the full figure, as the sinks store it (only their enqueue is left out)
            latency_ms=(time.monotonic() - rw.completed_at) * 1e3,
            derived=w.derived,  # heart rate and RMSSD of a beats window: derived, may leave
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
                    and all(d.ingest.calibration is not None
                            for d in self.devices.values() if d.model is not None)):
                self.request_stop("every device has a baseline")
            if self.status is not None:
                self.status.on_event(record)
        for sink in self.sinks:
            sink.submit(record)
        for alert in self.carers.on_record(record):
            self._emit(alert)

    def on_sink_fault(self, name: str, error: str | None) -> None:
        """Called from a sink's thread: report the fault through the other sinks."""
        kind = "sink_fault" if error is not None else "sink_recovered"
        ev = hub_event(kind, {"sink": name, "error": error} if error else {"sink": name})
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
        for alert in self.carers.on_record(ev):
            self._emit(alert)

    # -- what it says about itself (edge.health) -------------------------------------------
    def health(self) -> dict[str, Any]:
        """The periodic health figures (:func:`edge.health.health`)."""
        return health.health(self)

    def live_status(self) -> dict[str, Any]:
        """What a live status line shows (:func:`edge.health.live_status`)."""
        return health.live_status(self)

    def summary(self) -> dict[str, Any]:
        """The end-of-run report (:func:`edge.health.summary`)."""
        out = health.summary(self)
        if self.activity is not None:
            out["activity"] = self.activity.health()
        if self.runtime is not None:
            out["personal"] = self.runtime.health()
        if self.fleet is not None:
            out["fleet"] = self.fleet.health()
        return out


def open_daemon(
    cfg: DaemonConfig,
    *,
    stdout: TextIO | None = None,
    status: StatusView | None = None,
    calibrate: bool = False,
    make_source: Callable[[Bundle], SensorSource] | None = None,
) -> Daemon:
    """Verify the bundle, choose the engine, open the sinks and the source: a ready Daemon.

    ``calibrate``: the ``edge-daemon calibrate`` run (fresh enrollment, log sink only).
    ``make_source``: builds the source from the verified bundle instead of the one
    ``cfg.device`` names (a benchmark's own simulated wearables, say).

    Raises :class:`~core.errors.WearableEdgeError` subclasses (BundleError, EngineError,
    ConfigError, RecordingError, SourceError) with messages that say what to fix.
    """
    from edge.models import open_models

    models = open_models(cfg)  # every bundle verified, each engine chosen and warmed up
    bundle, engine, engine_name = models[0].bundle, models[0].engine, models[0].engine_name
    if len(models) > 1:
        log.info("models: %s", ", ".join(f"{m.model_id} ({', '.join(m.contract.modality_names)}"
                                         f"; {m.engine_name})" for m in models))

    if make_source is not None:
        source = make_source(bundle)
    else:
        from edge.sources import open_source

        source = open_source(cfg, class_names=bundle.class_names, hop_s=bundle.contract.hop_s)
    recorder = None
    if cfg.record_raw:
        from edge.sources.replay import RawRecorder

        recorder = RawRecorder(cfg.record_raw)
        log.warning("recording raw frames to %s (local only; contains raw sensor data)",
                    cfg.record_raw)

    daemon_ref: list[Daemon] = []

    def on_fault(name: str, error: str | None) -> None:
        if daemon_ref:
            daemon_ref[0].on_sink_fault(name, error)

    sinks = open_sinks(cfg, stdout=stdout or sys.stdout, calibrate=calibrate, on_fault=on_fault,
                        class_names=bundle.class_names)
    daemon = Daemon(cfg, bundle=bundle, engine=engine, source=source, sinks=sinks,
                    engine_name=engine_name, status=status, recorder=recorder,
                    calibrate_only=calibrate, models=models)
    daemon_ref.append(daemon)
    return daemon
