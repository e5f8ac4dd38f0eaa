"""The live status file: a running daemon writes it, ``edge-daemon status`` reads it back in words.

The daemon replaces ``STATE_DIR/status.json`` every ``health.status_file_interval_s`` (a
temporary file renamed over the old one, so a reader never sees half a file) with a small
JSON object (:func:`edge.health.status_snapshot`: its wearers, their last decision, link,
battery and active alerts, and the hub's health), and a last time at shutdown with
``"running": false``. A file is a simpler contract than a socket: it needs no server in the
daemon, survives the daemon (the last word of a crashed one is still there, marked stale),
and is read with the same permissions as the database beside it.

:func:`read_status` says whether the file is fresh: a daemon that stopped updating it (hung,
killed) is *stale* after :data:`STALE_INTERVALS` intervals; a process id that is no longer
alive is reported as such. :func:`status_lines` puts it in words.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.errors import EdgeError

__all__ = ["STATUS_FILE", "StatusError", "StatusReport", "read_status", "status_lines",
           "write_status"]

STATUS_FILE: Final = "status.json"
FORMAT_VERSION: Final = 1
# a file older than this many update intervals belongs to a daemon that stopped updating it;
# 3 leaves room for one slow write on a busy SD card without crying wolf
STALE_INTERVALS: Final = 3.0
MIN_STALE_S: Final = 15.0  # ... and never sooner than this, whatever the interval


class StatusError(EdgeError):
    """The status file cannot be read (no daemon has run here, or it is not a status file)."""


def write_status(path: str | os.PathLike[str], status: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically with ``status`` as JSON, owner-only (0600)."""
    p = Path(path)
    p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp creates it 0600
            json.dump({"version": FORMAT_VERSION, **status}, f, separators=(",", ":"),
                      default=str, allow_nan=False)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class StatusReport:
    """A status file as read at ``now``, with the verdict on its freshness."""

    path: Path
    data: dict[str, Any]
    now: float
    age_s: float  # since the daemon last wrote it
    stale: bool  # older than STALE_INTERVALS intervals while it says it runs
    alive: bool | None  # the writer's process exists (None: cannot tell)

    @property
    def running(self) -> bool:
        """The daemon runs and keeps its status current."""
        return bool(self.data.get("running")) and not self.stale and self.alive is not False

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "age_s": round(self.age_s, 1), "stale": self.stale,
                "process_alive": self.alive, "verdict": _verdict(self)}


def _pid_alive(pid: Any) -> bool | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (the service's dynamic user): it exists
        return True
    except OSError:
        return None
    return True


def read_status(path: str | os.PathLike[str], *, now: float | None = None) -> StatusReport:
    """The status file at ``path`` and whether it is fresh (see the module docstring)."""
    p = Path(path)
    now = time.time() if now is None else now
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StatusError(f"no status file at {p}: no daemon has run with this state "
                          "directory (pass --state-dir DIR, or --config FILE, to look "
                          "elsewhere)") from None
    except OSError as e:
        raise StatusError(f"cannot read {p}: {e.strerror} (the service's state directory "
                          "is readable by root only: try sudo)") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise StatusError(f"{p} is not a status file (not JSON)") from None
    if not isinstance(data, dict) or not isinstance(data.get("updated"), int | float):
        raise StatusError(f"{p} is not a status file (no update time)")
    interval = data.get("interval_s")
    interval = float(interval) if isinstance(interval, int | float) and interval > 0 else 5.0
    age = max(0.0, now - float(data["updated"]))
    running = bool(data.get("running"))
    alive = _pid_alive(data.get("pid")) if running else None
    stale = running and age > max(MIN_STALE_S, STALE_INTERVALS * interval)
    return StatusReport(p, data, now, age, stale, alive)


# -- in words ------------------------------------------------------------------------------------
def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _when(t: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")


def _verdict(r: StatusReport) -> str:
    d = r.data
    if not d.get("running"):
        return "stopped"
    if r.alive is False:
        return "dead"
    return "stale" if r.stale else "running"


def status_lines(r: StatusReport, *, tz: dt.tzinfo | None = None) -> list[str]:
    """The status in words, one line each (the CLI prints them)."""
    d = r.data
    verdict = _verdict(r)
    what = f"model {d.get('model', '?')} on {d.get('engine', '?')}, source {d.get('source', '?')}"
    if verdict == "stopped":
        head = (f"edge-daemon is not running: it stopped at {_when(float(d['updated']), tz)} "
                f"({d.get('stop_reason') or 'reason unknown'})")
    elif verdict == "dead":
        head = (f"edge-daemon is not running: process {d.get('pid')} is gone without saying "
                f"so (killed or crashed); its last status is from {_ago(r.age_s)}")
    elif verdict == "stale":
        head = (f"edge-daemon is NOT RESPONDING: process {d.get('pid')} last wrote its status "
                f"{_ago(r.age_s)} (it should every {d.get('interval_s', '?')} s); "
                "see its log (journalctl -u edge-daemon)")
    else:
        up = r.now - float(d.get("started", r.now))
        head = f"edge-daemon is running (pid {d.get('pid')}, up {_span(up)}; {what})"
    lines = [head]
    if verdict != "running":
        lines.append(f"  last known state ({what}):")
    realtime = bool(d.get("realtime", True))
    wearers = d.get("wearers") or []
    lines.append(f"Wearers ({len(wearers)}):" if wearers else "Wearers: none seen yet")
    for w in wearers:
        lines.append("  " + _wearer_line(w, float(d["updated"]), realtime))
        for rule in w.get("alerts") or []:
            lines.append(f"    ALERT active: {rule.replace('_', ' ')}")
    hub = d.get("hub") or {}
    problems = hub.get("problems") or []
    lines.append("Hub: " + ("healthy" if not problems else "PROBLEM: " + "; ".join(problems)))
    outs = []
    for name, s in (hub.get("sinks") or {}).items():
        state = "FAILING" if s.get("fault") else "ok"
        if "connected" in s and verdict == "running":  # a stopped daemon is connected to none
            state = "connected" if s.get("connected") else "NOT CONNECTED"
        waiting = s.get("outbox", s.get("pending", 0)) or 0
        outs.append(f"{name} {state}" + (f" ({waiting} waiting)" if waiting else ""))
    if outs:
        lines.append("  outputs: " + ", ".join(outs))
    lines.append(f"  decisions this run: {d.get('decisions', 0)}")
    drops = {k: v for k, v in (hub.get("drops") or {}).items() if v}
    if drops:
        lines.append("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    return lines


def _wearer_line(w: Mapping[str, Any], updated: float, realtime: bool) -> str:
    parts = [f"{w.get('resident', '?')} (wearable {w.get('device', '?')}):"]
    last = w.get("last_decision")
    if isinstance(last, Mapping):
        p = last.get("p")
        text = f"{last.get('state')}" + (f" (p {p:.2f})" if isinstance(p, int | float) else "")
        t = last.get("t")
        if isinstance(t, int | float):
            # a sped-up run's decisions carry virtual times: no "ago" for those
            text += f", decided {_ago(max(0.0, updated - t))}" if realtime else ""
        parts.append(text)
    else:
        parts.append("no decision yet")
    if w.get("note"):
        parts.append(f"({w['note']})")
    extra = []
    if w.get("connected") is not None:
        extra.append("connected" if w["connected"] else "DISCONNECTED")
    if isinstance(w.get("battery_pct"), int | float):
        extra.append(f"battery {w['battery_pct']:.0f} %")
    if isinstance(w.get("heart_rate_bpm"), int | float):
        extra.append(f"heart rate {w['heart_rate_bpm']:.0f} bpm")
    return " ".join(parts) + ("; " + ", ".join(extra) if extra else "")
