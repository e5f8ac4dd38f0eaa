"""Decisions and events as the pipeline hands them to sinks, and JSON lines read back."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from edge.decisions import Decision, Event


def decision(i: int, t: float | None = None, resident: str = "r1") -> Decision:
    """The ``i``-th decision of a device (odd: stress), at ``t`` (default: now)."""
    return Decision(
        resident=resident,
        device="dev-1",
        t=time.time() if t is None else t,
        state="stress" if i % 2 else "baseline",
        probabilities={"baseline": 0.3, "stress": 0.7},
        raw={"baseline": 0.25, "stress": 0.75},
        model_id="model-x",
        window_start=float(i * 5),
        window_end=float(i * 5 + 60),
        window_index=i,
        latency_ms=1.25,
    )


def event(kind: str = "battery_low", t: float | None = None) -> Event:
    """A device event of ``kind`` at ``t`` (default: now)."""
    return Event("r1", "dev-1", time.time() if t is None else t, kind, {"percent": 12.0})


def json_lines(text: str) -> list[dict[str, Any]]:
    """The records of a JSON-lines file that a process may have been killed while writing.

    Every complete line must parse; only a final line without its newline (cut by the kill,
    or still being written) may be dropped. Dropping every unparsable line would hide a sink
    that writes garbage.
    """
    *complete, tail = text.split("\n")  # tail is "" when the text ends with a newline
    out = [json.loads(line) for line in complete]
    if tail:
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(tail))
    return out
