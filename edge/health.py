"""What a running daemon says about itself: periodic health, live status, the run's summary.

Everything here reads the :class:`~edge.daemon.Daemon`'s parts (the source, each device's
ingest and decision logic, the inference worker, the sinks) and changes none of them:

- :func:`health`: the figures a hub is watched by (packets, samples, windows valid and
  invalid, drops by cause, latency, queue depths, sink backlog, memory, tasks, fds);
  :func:`log_health` logs them every ``health.interval_s`` (:func:`format_health`) and
  tells systemd a one-line status.
- :func:`live_status`: what a person watching the run sees, handed every
  :data:`STATUS_REFRESH_S` to a :class:`StatusView` by :func:`refresh_status` (the
  terminal's live line, :class:`edge.ui.StatusLine`, is one).
- :func:`summary`: the end-of-run report as a dict (the CLI prints it with
  :func:`edge.ui.format_summary`; :func:`summary_json` is its strict-JSON form).
- :func:`status_snapshot`: what ``edge-daemon status`` shows (wearers, last decisions,
  active alerts, the hub's health), written to the live status file by
  :func:`keep_status_file` (:mod:`edge.status_file`).
- :class:`SourceWatch`: notices a live source gone silent while a wearable's link is up (a
  dead radio adapter, a hung port), which the daemon reports as the hub's ``source_lost``.

Latency figures: *window -> decision* (``window_to_decision_p50_ms`` / ``_p99_ms``) runs from
the arrival of the packet that completed a window to the moment its decision was handed to
the sinks; ``latency_p50_ms`` is the inference worker alone (its queue and the engine) and
``engine_p50_ms`` the engine alone. Footprint figures (RSS, peak RSS, time to READY) are
reported for the benchmarks to read; they are measured, never asserted by a unit test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from edge.daemon import Daemon
    from edge.decisions import Event
    from edge.sdnotify import SdNotifier
    from edge.sinks.base import Sink

__all__ = [
    "SOURCE_SILENT_S",
    "STATUS_REFRESH_S",
    "SourceWatch",
    "StatusView",
    "Tally",
    "format_health",
    "health",
    "keep_status_file",
    "live_status",
    "log_health",
    "open_fds",
    "peak_rss_mb",
    "process_age_s",
    "refresh_status",
    "rss_mb",
    "status_file_path",
    "status_snapshot",
    "summary",
    "summary_json",
    "write_status_file",
]

log = logging.getLogger(__name__)

_PAGE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
STATUS_REFRESH_S: Final = 0.5  # the live line's data is refreshed twice a second
# a live source that delivered nothing for this long while a wearable's link is up has stopped
# working: a wearable sends several packets a second, and BLE/serial report a lost link at once
SOURCE_SILENT_S: Final = 60.0


class StatusView(Protocol):
    """Where a person watches a run: started and stopped with it, fed its live status and
    every event (the terminal's live line, :class:`edge.ui.StatusLine`, is one)."""

    def start(self) -> None: ...

    def update(self, status: Mapping[str, Any]) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Tally:
    """The decision counters that end up in the summary."""

    decisions_per_state: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    labelled: int = 0  # decisions whose window has a ground-truth label (sim, replay)
    agree: int = 0  # ... and whose decided state is that label
    raw_agree: int = 0  # ... and whose window's own most probable class is that label
    decisions: int = 0


# -- the process --------------------------------------------------------------------------------
def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is KiB on Linux)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


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


# -- the pipeline's figures ---------------------------------------------------------------------
def _windows(daemon: Daemon) -> Counter[str]:
    c: Counter[str] = Counter()
    for dev in daemon.devices.values():
        for k, v in dev.ingest.counters.items():
            if k == "windows_valid":
                c["valid"] += v
            elif k.startswith("windows_invalid_"):
                c[k.removeprefix("windows_")] += v
    return c


def _drops(daemon: Daemon) -> dict[str, int]:
    d: Counter[str] = Counter()
    src = daemon.source.stats.snapshot()
    d["source_queue_full"] = src.get("dropped_queue_full", 0)
    d["inference_queue_full"] = daemon.worker.counters.get("dropped_queue_full", 0)
    d["engine_errors"] = daemon.worker.counters.get("engine_errors", 0)
    for dev in daemon.devices.values():
        seq = dev.ingest.seq.totals()
        d["lost_packets"] += seq.get("lost", 0)
        d["duplicate_packets"] += dev.ingest.counters.get("duplicate_packets", 0)
        d["samples_before_hello"] += dev.ingest.counters.get("samples_before_hello", 0)
        if dev.ingest.assembler is not None:
            st = dev.ingest.assembler.stats
            d["samples_out_of_order"] += sum(st.dropped_out_of_order.values())
            d["samples_stalled"] += sum(st.discarded_stalled.values())
    for sink in daemon.sinks:
        s = sink.stats.snapshot()
        d[f"sink_{sink.name}_buffer_full"] = s.get("dropped_buffer_full", 0)
        d[f"sink_{sink.name}_lost_at_close"] = s.get("lost_at_close", 0)
    d["windows_lost_at_shutdown"] = daemon.counters.get("windows_lost_at_shutdown", 0)
    return dict(d)


def _data_s(daemon: Daemon) -> float:
    return max((d.ingest.data_span_s for d in daemon.devices.values()), default=0.0)


def health(daemon: Daemon) -> dict[str, Any]:
    """The daemon's health now (see the module docstring)."""
    src = daemon.source.health()
    src.setdefault("items", daemon.counters["items"])
    src.setdefault("queue", 0)
    w50, w99 = daemon.window_latency.percentiles(50, 99)
    return {
        "devices": len(daemon.devices),
        "source": src,
        "samples": sum(d.ingest.counters.get("samples", 0) for d in daemon.devices.values()),
        "windows": dict(_windows(daemon)),
        "decisions": daemon.tally.decisions,
        "drops": _drops(daemon),
        "inference": daemon.worker.health(),
        # window complete -> decision handed to the sinks (the engine alone: inference)
        "window_to_decision_p50_ms": w50,
        "window_to_decision_p99_ms": w99,
        "sinks": {s.name: s.health() for s in daemon.sinks},
        "per_device": {k: d.ingest.health() for k, d in daemon.devices.items()},
        "rss_mb": rss_mb(),
        "waiting_for": daemon.waiting_for,  # why no data has come yet (edge.source_hints)
        # a leak shows as a count that keeps growing over days of health lines
        "tasks": len(asyncio.all_tasks()),
        "fds": open_fds(),
    }


def live_status(daemon: Daemon) -> dict[str, Any]:
    """Per device its resident, state, smoothed probability and note; windows, queue,
    inference latency, memory and data time: what a live status line shows."""
    devs = []
    for dev in daemon.devices.values():
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
    w = _windows(daemon)
    p50, _ = daemon.worker.latency.percentiles(50, 99)
    return {
        "devices": devs,
        "windows": sum(w.values()),
        "valid": w.get("valid", 0),
        "queue": daemon.worker.qsize(),
        "latency_p50_ms": p50,
        "rss_mb": rss_mb(),
        "data_s": _data_s(daemon),
        "waiting_for": daemon.waiting_for,
    }


def summary(daemon: Daemon) -> dict[str, Any]:
    """The end-of-run report (see the module docstring)."""
    p50, p99 = daemon.worker.latency.percentiles(50, 99)
    e50, e99 = daemon.worker.engine_latency.percentiles(50, 99)
    w50, w99 = daemon.window_latency.percentiles(50, 99)
    t = daemon.tally
    agreement = None
    if t.labelled:
        agreement = {"labelled": t.labelled, "agree": t.agree, "rate": t.agree / t.labelled,
                     "raw_agree": t.raw_agree, "raw_rate": t.raw_agree / t.labelled}
    return {
        "elapsed_s": time.monotonic() - daemon.started_at,
        "data_s": _data_s(daemon),
        "stop_reason": daemon.stop_reason,
        "model_id": daemon.model_id,
        "engine": daemon.engine_name,
        "devices": sorted(d.ingest.resident for d in daemon.devices.values()),
        "decisions": t.decisions,
        "decisions_per_state": dict(t.decisions_per_state),
        "samples": sum(d.ingest.counters.get("samples", 0) for d in daemon.devices.values()),
        # devices that sent data no model can read (said in the log, one line each)
        "devices_without_model": daemon.counters.get("devices_without_model", 0),
        "source_kind": daemon.source.kind,
        # where the decisions went, in words (a file path, stdout, the log, mqtt)
        "outputs": {s.name: s.where for s in daemon.sinks},
        "windows": dict(_windows(daemon)),
        "drops": _drops(daemon),
        # the source's own counters (frames rejected by reason, reconnections, queue
        # drops): with the ingest's, they account for every packet the devices sent
        "source": daemon.source.health(),
        "per_device": {k: d.ingest.health() for k, d in daemon.devices.items()},
        "events": dict(t.events),
        # window complete -> decision handed to the sinks: everything the hub does
        "window_to_decision_p50_ms": w50,
        "window_to_decision_p99_ms": w99,
        "latency_p50_ms": p50,  # the inference worker alone: its queue + the engine
        "latency_p99_ms": p99,
        "engine_p50_ms": e50,  # the engine alone, per window
        "engine_p99_ms": e99,
        "ready_s": daemon.ready_s,
        "rss_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
        "agreement": agreement,
        "sinks": {s.name: _sink_summary(s) for s in daemon.sinks},
    }


def _sink_summary(sink: Sink) -> dict[str, Any]:
    """A sink's counters, and where it kept what it could not write (when it did)."""
    out: dict[str, Any] = dict(sink.stats.snapshot())
    spill = getattr(sink, "spill_path", None)
    if out.get("spilled") and spill is not None:
        out["spill_path"] = str(spill)
    return out


def summary_json(s: Mapping[str, Any]) -> str:
    """The summary as strict JSON: a non-finite figure (no data yet) becomes ``null``."""
    return json.dumps(_finite_or_none(s), indent=1, default=str)


def _finite_or_none(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, Mapping):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite_or_none(v) for v in o]
    return o


# -- reporting while running ----------------------------------------------------------------------
def _ms(v: Any) -> str:
    return "-" if not isinstance(v, int | float) or not math.isfinite(v) else f"{v:.1f}"


def format_health(h: Mapping[str, Any]) -> str:
    """One log line from a :func:`health` dict."""
    src = h.get("source", {})
    inf = h.get("inference", {})
    win = h.get("windows", {})
    invalid = sum(v for k, v in win.items() if k.startswith("invalid"))
    sinks = h.get("sinks", {})
    backlog = ",".join(f"{k}={v.get('pending', 0)}" for k, v in sinks.items()) or "-"
    drops = h.get("drops", {})
    drop_text = ",".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "0"
    return (
        f"health: devices={h.get('devices', 0)} packets={src.get('items', 0)}"
        f" samples={h.get('samples', 0)} windows={win.get('valid', 0)}+{invalid}invalid"
        f" decisions={h.get('decisions', 0)} drops={drop_text}"
        f" queue={inf.get('queue', 0)}/src={src.get('queue', 0)}"
        f" infer_p50={_ms(inf.get('latency_p50_ms'))}ms infer_p99={_ms(inf.get('latency_p99_ms'))}ms"
        f" sinks={backlog} rss={h.get('rss_mb', 0):.1f}MB"
        f" tasks={h.get('tasks', '-')} fds={h.get('fds', '-')}"
        + (f" waiting for: {h['waiting_for']}" if h.get("waiting_for") else "")
    )


async def log_health(daemon: Daemon, interval_s: float, notifier: SdNotifier) -> None:
    """Every ``interval_s``: the health line in the log, a one-line status for systemd."""
    while True:
        await asyncio.sleep(interval_s)
        h = health(daemon)
        log.info("%s w2d_p50=%.1fms w2d_p99=%.1fms", format_health(h),
                 h["window_to_decision_p50_ms"], h["window_to_decision_p99_ms"])
        notifier.status(
            f"{h['devices']} devices, {daemon.tally.decisions} decisions, "
            f"queue {h['inference'].get('queue', 0)}, rss {h['rss_mb']:.0f} MB"
        )


async def refresh_status(daemon: Daemon, view: StatusView,
                         interval_s: float = STATUS_REFRESH_S) -> None:
    """Hand ``view`` the daemon's :func:`live_status` every ``interval_s``."""
    while True:
        view.update(live_status(daemon))
        await asyncio.sleep(interval_s)


# -- the source's own health ----------------------------------------------------------------------
class SourceWatch:
    """A live source that went silent although a wearable's link is up (see the module doc).

    A wearable out of range is not the hub's problem (the source reports its link down and
    the wearer's ``disconnected`` rule takes it); silence with every link believed up is.
    Times are hub ``time.monotonic()`` seconds.
    """

    def __init__(self, *, silent_s: float = SOURCE_SILENT_S) -> None:
        self.silent_s = silent_s
        self.lost = False
        self._last_item: float | None = None
        self._links: dict[str, bool] = {}  # device -> link up (devices without links: True)

    def on_item(self, device: str, message: Any, now: float) -> bool:
        """Note an item; True when it ends a silence (the source is back)."""
        from edge.sources.base import ConnectionEvent

        self._last_item = now
        if isinstance(message, ConnectionEvent):
            self._links[device] = message.connected
        else:
            self._links.setdefault(device, True)
        if self.lost:
            self.lost = False
            return True
        return False

    def check(self, now: float) -> bool:
        """True when the source has just gone silent (reported once per silence)."""
        if self.lost or self._last_item is None or not any(self._links.values()):
            return False
        if now - self._last_item >= self.silent_s:
            self.lost = True
            return True
        return False

    def silent_for(self, now: float) -> float:
        return 0.0 if self._last_item is None else max(0.0, now - self._last_item)


# -- the live status file (edge-daemon status) -----------------------------------------------------
def status_snapshot(daemon: Daemon, *, running: bool = True) -> dict[str, Any]:
    """What ``edge-daemon status`` shows, as plain data (see :mod:`edge.status_file`)."""
    from edge.alerts.rules import HUB

    now = time.time()
    mono = time.monotonic()
    active = daemon.carers.alerts.active()
    wearers = []
    for key, dev in daemon.devices.items():
        last = dev.last
        note = dev.ingest.state_note
        if note == "enrolling":
            note = f"enrolling {dev.ingest.enrollment_progress():.0%}"
        st = dev.status
        hr = st.heart_rate_bpm
        wearers.append({
            "resident": dev.ingest.resident,
            "device": key,
            "last_decision": None if last is None else {
                "t": round(last.t, 3), "state": last.state,
                "p": round(last.probabilities[last.state], 4)},
            "note": note,
            "connected": st.connected,
            "battery_pct": st.battery_pct,
            "heart_rate_bpm": None if hr is None else round(hr),
            "alerts": active.get(dev.ingest.resident, []),
        })
    sinks: dict[str, dict[str, Any]] = {}
    for sink in daemon.sinks:
        h = sink.health()
        entry: dict[str, Any] = {"pending": int(h.get("pending", 0))}
        fault = h.get("fault") or getattr(sink, "fault", None)
        entry["fault"] = None if fault is None else str(fault)
        for k in ("connected", "outbox"):
            if k in h:
                entry[k] = h[k]
        sinks[sink.name] = entry
    carers = daemon.carers
    problems = [f"output {name} failing ({err})" for name, err in sorted(carers.hub_faults.items())]
    if daemon.waiting_for:  # what `edge-daemon status` tells a technician to check
        problems.append(f"waiting for data: {daemon.waiting_for}")
    if carers.source_watch.lost:
        problems.append(f"the {daemon.source.kind} source has delivered nothing for "
                        f"{carers.source_watch.silent_for(mono):.0f} s")
    return {
        "pid": os.getpid(),
        "running": running,
        "updated": round(now, 3),
        "started": round(now - (mono - daemon.started_at), 3),
        "interval_s": daemon.cfg.health.status_file_interval_s,
        "realtime": daemon.cfg.realtime,
        "source": daemon.source.kind,
        "model": daemon.model_id,
        "engine": daemon.engine_name,
        "decisions": daemon.tally.decisions,
        "stop_reason": daemon.stop_reason,
        "wearers": wearers,
        "hub": {"problems": problems, "alerts": active.get(HUB, []), "sinks": sinks,
                "drops": {k: v for k, v in _drops(daemon).items() if v}},
    }


def status_file_path(daemon: Daemon) -> Path:
    """Where the live status file goes: STATE_DIR/status.json."""
    from edge.status_file import STATUS_FILE

    return daemon.cfg.state_path / STATUS_FILE


def write_status_file(daemon: Daemon, *, running: bool = True) -> bool:
    """Write :func:`status_snapshot` now (unless the status file is off); False (logged
    once) when it cannot be written."""
    if daemon.cfg.health.status_file_interval_s <= 0:
        return False
    path = status_file_path(daemon)
    return _written(daemon, path, _write_snapshot(path, status_snapshot(daemon, running=running)))


async def keep_status_file(daemon: Daemon) -> None:
    """Rewrite the status file every ``health.status_file_interval_s`` (the write off the
    loop: it is file I/O)."""
    path = status_file_path(daemon)
    while True:
        snapshot = status_snapshot(daemon)  # on the loop: it reads the loop's objects
        # a bare executor future, not a Task: a write in flight must not look like a task leak
        # to whoever counts the loop's tasks (the soak's verdict does)
        write = asyncio.get_running_loop().run_in_executor(None, _write_snapshot, path, snapshot)
        try:
            error = await asyncio.shield(write)
        except asyncio.CancelledError:
            # a write still running must not replace the final (stopped) status after it
            await asyncio.wait({write})
            raise
        _written(daemon, path, error)
        await asyncio.sleep(daemon.cfg.health.status_file_interval_s)


def _write_snapshot(path: Path, snapshot: dict[str, Any]) -> Exception | None:
    from edge.status_file import write_status

    try:
        write_status(path, snapshot)
    except (OSError, TypeError, ValueError) as e:
        return e
    return None


def _written(daemon: Daemon, path: Path, error: Exception | None) -> bool:
    if error is None:
        return True
    daemon.counters["status_file_failures"] += 1
    if daemon.counters["status_file_failures"] == 1:
        log.warning("cannot write the status file %s (%s); `edge-daemon status` will not see "
                    "this run", path, error)
    return False
