"""Decisions and events as the pipeline hands them to sinks."""

from __future__ import annotations

import time

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
