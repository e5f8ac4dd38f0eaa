"""What the daemon says about itself: a live status line, periodic health, the final summary.

- :class:`StatusLine`: one line redrawn in place (rich) when stdout is a terminal: per
  device its resident, current state and smoothed probability; windows, queue depth,
  inference latency and memory. Off when stdout is not a TTY (a service, a pipe, ``--json``).
- :func:`format_health`: the periodic health log line (packets, drops, windows valid and
  invalid, inference latency p50/p99, queue depths, sink backlog, RSS) from the health dict
  the daemon gathers.
- :func:`format_summary`: the end-of-run report (decisions per state, windows by validity
  reason, drops, latency, memory and time to ready, replay agreement).

Footprint figures (RSS, peak RSS, time to READY) are printed here for the benchmarks to
read; they are measured, never asserted by a unit test.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO

__all__ = ["StatusLine", "format_health", "format_summary", "peak_rss_mb", "rss_mb"]

_PAGE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
REFRESH_PER_S: Final = 4  # a status line redrawn 4x/s looks live and costs nothing


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


def _ms(v: Any) -> str:
    return "-" if not isinstance(v, int | float) or not math.isfinite(v) else f"{v:.1f}"


def format_health(h: Mapping[str, Any]) -> str:
    """One log line from the daemon's health dict (see ``Daemon.health``)."""
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
    )


def format_summary(s: Mapping[str, Any]) -> str:
    """The end-of-run report, several lines, for a terminal or the log."""
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
    drops = {k: v for k, v in s.get("drops", {}).items() if v}
    lines.append("  drops: " + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"))
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
            f"{agreement['raw_rate'] * 100:.1f}%)"
        )
    for sink, h in s.get("sinks", {}).items():
        if h.get("lost_at_close") or h.get("dropped_buffer_full") or h.get("write_failures"):
            lines.append(f"  sink {sink}: {dict(h)}")
    return "\n".join(lines)


class StatusLine:
    """A one-line live status drawn with rich when ``stream`` is a terminal."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._live: Any = None
        self.console: Any = None
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
        for dev in status.get("devices", []):
            state = dev.get("state") or "…"
            colour = {"stress": "bold red", "amusement": "green", "baseline": "cyan"}.get(
                state, "yellow"
            )
            t.append(f"{dev['resident']} ", style="bold")
            t.append(state, style=colour)
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

    def print(self, text: str) -> None:
        """A line above the live status (state changes, the summary)."""
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False)

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
