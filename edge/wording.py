"""Records in words: one readable line per event, for the log and the terminal.

``sim-0: stress (p 0.61) after 8.9 min of baseline`` instead of a Python dict; a wearer is
named once (its device only when it differs), hub events read ``hub: sink fault: ...``.
"""

from __future__ import annotations

import math
from typing import Any

from edge.decisions import Event

__all__ = ["event_line", "who"]


def who(resident: str, device: str) -> str:
    """The wearer, with the device only when it says something the name does not."""
    return resident if device in ("", resident) else f"{resident} ({device})"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}" if math.isfinite(v) and abs(v) < 100 else f"{v:.0f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _state_change(d: dict[str, Any]) -> str:
    text = str(d.get("to"))
    p = d.get("p")
    if isinstance(p, int | float):
        text += f" (p {p:.2f})"
    held, before = d.get("held_s"), d.get("from")
    if before and isinstance(held, int | float) and math.isfinite(held):
        text += f" after {held / 60:.1f} min of {before}"
    elif before:
        text += f" (was {before})"
    return text


def event_line(e: Event) -> str:
    """``e`` as one line: who, what, and its details as words and numbers."""
    d = dict(e.detail)
    if e.kind == "state_change":
        what = _state_change(d)
    elif e.kind in ("alert", "alert_cleared") and d.get("message"):
        what = ("ALERT: " if e.kind == "alert" else "alert over: ") + str(d["message"])
    elif e.kind in ("model_swapped", "model_rolled_back"):  # edge.updates
        verb = "now runs" if e.kind == "model_swapped" else "rolled back to"
        what = (f"{d.get('model_id')} {verb} {d.get('update')} {d.get('to_version')} "
                f"(was {d.get('from_version')})")
    elif e.kind == "update_refused":
        what = f"update {d.get('path')} refused ({d.get('reason')}); the running model stays"
    else:
        what = e.kind.replace("_", " ")
        if d:
            what += ": " + "; ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in d.items())
    return f"{who(e.resident, e.device)}: {what}"
