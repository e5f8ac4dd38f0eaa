"""The run's verdict: did it lose anything, did its source ever send data; the exit status.

A run that exits 0 tells a script (and systemd) that all went well. So a run that lost a
decision or an event, at any point, ends non-zero, whatever stopped it; and a finite run
(``--duration``, or a source that ends, as a replay does) whose source never sent data ends
non-zero too, with the one line :func:`edge.source_hints.why_no_data` gives. A service (no
``--duration``, a live source) is stopped by its owner; data that never came is not a
failure of that stop, so only losses count there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["LOSS_KEYS", "lost_records", "run_failure"]

# the drops (edge.health) that lose a decision or an event the hub had, or a window it would
# have decided: the hub's own doing. Packets lost on the air and frames the wire checks
# rejected are the wearable's link, counted and reported, but they are not lost decisions.
LOSS_KEYS: Final = ("inference_queue_full", "engine_errors", "windows_lost_at_shutdown")
_SINK_LOSS_SUFFIXES: Final = ("_lost_at_close", "_buffer_full")


def lost_records(summary: Mapping[str, Any]) -> dict[str, int]:
    """Every non-zero count of lost decisions, events or windows in ``summary``, by reason."""
    drops = summary.get("drops", {})
    lost = {k: int(v) for k, v in drops.items() if v and (
        k in LOSS_KEYS or (k.startswith("sink_") and k.endswith(_SINK_LOSS_SUFFIXES)))}
    for sink, h in summary.get("sinks", {}).items():
        if h.get("backlog_dropped"):  # MQTT's outbox: its own bound
            lost[f"sink_{sink}_backlog_dropped"] = int(h["backlog_dropped"])
    return lost


def run_failure(summary: Mapping[str, Any], *, finite: bool, waiting_for: str = "") -> str | None:
    """One line saying why the run failed, or None when it may exit 0.

    ``finite``: the run was meant to end (``--duration``, or a source that ends);
    ``waiting_for``: why the source sent nothing (:func:`edge.source_hints.why_no_data`).
    """
    lost = lost_records(summary)
    if lost:
        total = sum(lost.values())
        where = ", ".join(f"{k} {v}" for k, v in sorted(lost.items()))
        return f"{total} records were lost ({where}); see the summary above"
    spilled = {sink: h for sink, h in summary.get("sinks", {}).items() if h.get("spilled")}
    if spilled:  # kept, but not where the user asked for them: a script must hear of it
        where = ", ".join(f"{sink} {h['spilled']} in {h.get('spill_path')}"
                          for sink, h in sorted(spilled.items()))
        return f"records a sink could not write were kept in its spill file ({where})"
    if (finite and not summary.get("samples") and not summary.get("decisions")
            and not summary.get("devices_without_model")):
        # data that no model fits did arrive: the log's one line per device says what each
        # model needs; that is the wearable's configuration, not a dead source
        return f"no data from the source: {waiting_for or 'it sent nothing'}"
    return None
