"""The hub's terminal: the live status line, the log's look, and the text the CLI prints.

- :class:`StatusLine`: one line redrawn in place (rich) when stdout is a terminal: per
  device its resident, current state and smoothed probability; windows, queue depth,
  inference latency and memory; state changes printed above it as they happen. Off when
  stdout is not a TTY (a service, a pipe, ``--json``). It is the daemon's
  :class:`~edge.health.StatusView`.
- :func:`setup_logging`: the log to stderr, or through the live line's console.
- :func:`format_summary`: the end-of-run report (decisions per state, windows by validity
  reason, drops, latency, memory and time to ready, replay agreement).
- :func:`format_scan_results`: the table ``edge-daemon scan`` prints.

Only this module and the CLI write to the terminal; the rest of ``edge`` logs.
rich is imported only when a terminal is drawn.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

from edge.exit_status import lost_records

if TYPE_CHECKING:
    from edge.decisions import Event
    from edge.sources.ble import DiscoveredWearable

__all__ = ["StatusLine", "event_time", "format_scan_results", "format_summary", "setup_logging"]

REFRESH_PER_S: Final = 4  # a status line redrawn 4x/s looks live and costs nothing
STATE_STYLES: Final = {"stress": "bold red", "amusement": "green", "baseline": "cyan"}


def _ms(v: Any) -> str:
    return "-" if not isinstance(v, int | float) or not math.isfinite(v) else f"{v:.1f}"


def setup_logging(level: str, console: Any = None) -> None:
    """Log at ``level`` to stderr, or through ``console`` (the live line's rich console,
    so log lines scroll above the line instead of breaking it)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if console is not None:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())


def format_summary(s: Mapping[str, Any]) -> str:
    """The end-of-run report (:func:`edge.health.summary`), several lines."""
    lines = [f"edge-daemon summary ({s.get('elapsed_s', 0):.1f} s wall, "
             f"{s.get('data_s', 0):.0f} s of data, model {s.get('model_id', '?')}, "
             f"engine {s.get('engine', '?')})"]
    per_state = s.get("decisions_per_state", {})
    total = sum(per_state.values())
    lines.append(
        f"  decisions: {total}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(per_state.items())) + ")" if total else "")
    )
    win = s.get("windows", {})
    invalid = {k.removeprefix("invalid_"): v for k, v in win.items() if k.startswith("invalid_")}
    lines.append(
        f"  windows: {win.get('valid', 0)} valid, {sum(invalid.values())} invalid"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(invalid.items())) + ")" if invalid else "")
    )
    lost = lost_records(s)
    drops = {**{k: v for k, v in s.get("drops", {}).items() if v}, **lost}  # never "none" if lost
    lines.append("  drops: " + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"))
    if lost:  # said on its own line: "drops" also counts the radio's, these are the hub's
        lines.append(f"  LOST: {sum(lost.values())} records ("
                     + ", ".join(f"{k} {v}" for k, v in sorted(lost.items())) + ")")
    outputs = s.get("outputs") or {}
    if outputs:
        lines.append("  decisions went to: " + ", ".join(
            f"{where}" if name in ("log", "mqtt") or where == "stdout" else f"{where} ({name})"
            for name, where in outputs.items()))
    if s.get("decisions", 0) == 0 and not s.get("samples", 1):
        lines.append("  no data arrived from the source")
    events = s.get("events", {})
    if events:
        lines.append("  events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())))
    lines.append(
        f"  inference latency: p50 {_ms(s.get('latency_p50_ms'))} ms, "
        f"p99 {_ms(s.get('latency_p99_ms'))} ms (engine p50 {_ms(s.get('engine_p50_ms'))} ms)"
    )
    lines.append(
        f"  window complete -> decision stored: p50 {_ms(s.get('window_to_decision_p50_ms'))} ms, "
        f"p99 {_ms(s.get('window_to_decision_p99_ms'))} ms"
    )
    lines.append(
        f"  footprint: ready in {_ms(s.get('ready_s', math.nan) * 1000)} ms, "
        f"rss {s.get('rss_mb', 0):.1f} MB, peak rss {s.get('peak_rss_mb', 0):.1f} MB"
    )
    agreement = s.get("agreement")
    if agreement:
        lines.append(
            f"  replay agreement with ground truth: {agreement['agree']}/{agreement['labelled']}"
            f" = {agreement['rate'] * 100:.1f}% (raw window argmax "
            f"{agreement['raw_rate'] * 100:.1f}%); {agreement['labelled']} of {total} "
            "decisions fall in a labelled stretch of the recording, the rest are not scored"
        )
    for sink, h in s.get("sinks", {}).items():
        if (h.get("lost_at_close") or h.get("dropped_buffer_full") or h.get("write_failures")
                or h.get("backlog_dropped")):
            lines.append(f"  sink {sink}: {dict(h)}")
        if h.get("spilled"):
            lines.append(f"  sink {sink}: {h['spilled']} records it could not write were kept "
                         f"in {h.get('spill_path')} (JSON lines), not lost")
    mqtt = s.get("sinks", {}).get("mqtt")
    if mqtt is not None:
        failed = mqtt.get("connect_failures", 0)
        lines.append(f"  mqtt: {mqtt.get('published', 0)} messages published"
                     + (f", {failed} failed connection attempts" if failed else "")
                     + (f", {mqtt['backlog_dropped']} dropped from a full outbox"
                        if mqtt.get("backlog_dropped") else ""))
    return "\n".join(lines)


def format_scan_results(results: Sequence[DiscoveredWearable]) -> str:
    """A plain-text table of what :func:`edge.sources.ble.scan` found."""
    if not results:
        return "no BLE devices found (is the wearable awake and in range?)"
    rows = [("ADDRESS", "RSSI", "NAME", "OFFERS", "USABLE")]
    for w in results:
        rows.append(
            (
                w.address,
                f"{w.rssi} dBm",
                w.name or "-",
                ", ".join(w.profiles) or "-",
                "yes" if w.supported else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def event_time(t: float, *, started: float, now: float | None = None) -> str:
    """The clock time of an event; or, when its time is ahead of the clock (a sim or replay
    sped up: records carry data time), how far into the data it happened, so no line shows a
    time that has not come yet."""
    now = time.time() if now is None else now
    if t <= now + 1.0:
        return time.strftime("%H:%M:%S", time.localtime(t))
    s = max(0, round(t - started))
    return f"data +{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class StatusLine:
    """A one-line live status drawn with rich when ``stream`` is a terminal."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._live: Any = None
        self.console: Any = None
        self._started = time.time()  # sped-up runs stamp events from here in data time
        if not enabled:
            return
        from rich.console import Console  # imported only for a terminal

        self.console = Console(file=stream or sys.stdout)

    @staticmethod
    def wanted(mode: str, *, json_on_stdout: bool, stream: TextIO | None = None) -> bool:
        """``mode`` auto/on/off -> whether to draw: never over JSON lines on stdout."""
        if mode == "off" or json_on_stdout:
            return False
        if mode == "on":
            return True
        s = stream or sys.stdout
        return bool(getattr(s, "isatty", lambda: False)())

    def start(self) -> None:
        if not self.enabled or self._live is not None:
            return
        from rich.live import Live
        from rich.text import Text

        self._live = Live(
            Text("starting…"), console=self.console, refresh_per_second=REFRESH_PER_S,
            transient=True, redirect_stdout=False, redirect_stderr=False,
        )
        self._live.start()

    def update(self, status: Mapping[str, Any]) -> None:
        if self._live is None:
            return
        from rich.text import Text

        t = Text()
        if status.get("waiting_for"):  # what to check, not an empty line that looks busy
            t.append(f"waiting: {status['waiting_for']}  ", style="yellow")
        for dev in status.get("devices", []):
            state = dev.get("state") or "…"
            t.append(f"{dev['resident']} ", style="bold")
            t.append(state, style=STATE_STYLES.get(state, "yellow"))
            p = dev.get("p")
            if p is not None:
                t.append(f" {p:.2f}")
            if dev.get("note"):
                t.append(f" ({dev['note']})", style="dim")
            t.append("  ")
        t.append(
            f"| windows {status.get('valid', 0)}/{status.get('windows', 0)}"
            f" | q {status.get('queue', 0)}"
            f" | {_ms(status.get('latency_p50_ms'))} ms"
            f" | {status.get('rss_mb', 0):.0f} MB"
            f" | data {status.get('data_s', 0) / 60:.1f} min",
            style="dim",
        )
        self._live.update(t)

    def on_event(self, event: Event) -> None:
        """A state change or an alert gets a line above the live status, when it happens."""
        d = event.detail
        when = event_time(event.t, started=self._started)
        if event.kind == "state_change":
            self.print(f"{when} {event.resident}: {d.get('from') or '…'} → {d.get('to')}")
        elif event.kind in ("alert", "alert_cleared"):
            word = "ALERT" if event.kind == "alert" else "alert over"
            self.print(f"{when} {word}: {d.get('message') or d.get('rule')}")

    def print(self, text: str) -> None:
        """A line above the live status (state changes, the summary)."""
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False)

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
