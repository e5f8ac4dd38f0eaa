"""Turning what a person confirms into label spans: times they type, states the model knows, alerts they answer.

``edge-daemon label --wearer W --from T1 --to T2 --state STATE`` labels a span by hand;
``edge-daemon label --alert ID --yes|--no`` answers a ``sustained_stress`` alert (its
``ID`` is the alert's row in the database's ``events`` table, as ``edge-daemon history``
shows it). The span of an alert is the stretch of stress the rule saw: from ``minutes``
before the alert to when it cleared (``alert_cleared`` of the same wearer and rule), or to
the alert itself when it has not cleared. ``--yes`` labels that span with the stress class;
``--no`` says the wearer was not stressed, and since a head learns classes, not negations,
the span is labelled with the class the person names (``--state``), by default the model's
first class (its baseline, the state at rest). Only ``sustained_stress`` alerts are about a
state; answering another rule's alert is refused.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from edge.errors import EdgeError

__all__ = ["LabelError", "LabelSpan", "alert_span", "check_state", "parse_time"]

MAX_SPAN_S: Final = 7 * 86400.0  # a longer span is a typo, not a week of one state
FUTURE_SLACK_S: Final = 60.0  # clocks differ a little; a label of the future is a mistake
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class LabelError(EdgeError):
    """A label that cannot be recorded (bad time, unknown state, unknown alert): one line."""


@dataclass(frozen=True)
class LabelSpan:
    resident: str
    t_from: float
    t_to: float
    state: str
    source: str


def parse_time(text: str, *, now: float | None = None, flag: str = "--from") -> float:
    """Epoch seconds of ``now``, a relative time (``-2h``, ``-30m``, ``-90s``, ``-1d``), a
    local ISO time (``2026-12-07T14:30``, ``2026-12-07 14:30``; with an offset, that zone) or
    a time of today (``14:30``, local)."""
    now = time.time() if now is None else now
    t = (text or "").strip()
    if t.lower() == "now":
        return now
    m = re.fullmatch(r"-\s*(\d+(?:\.\d+)?)\s*([smhd])", t)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", t):
        hh, rest = t.split(":", 1)
        t = f"{datetime.fromtimestamp(now).astimezone().date().isoformat()}T{hh.zfill(2)}:{rest}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise LabelError(
            f"{flag} {text!r}: give a local time such as 2026-12-07T14:30, or a "
            "time ago such as -2h, -30m or now"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a naive time is the hub's local time
    return dt.timestamp()


def check_span(t_from: float, t_to: float, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    if not t_from < t_to:
        raise LabelError("--from must be before --to")
    if t_to > now + FUTURE_SLACK_S:
        raise LabelError("--to is in the future: label what has happened")
    if t_to - t_from > MAX_SPAN_S:
        raise LabelError(
            f"the span is {(t_to - t_from) / 86400:.1f} days; label at most "
            f"{MAX_SPAN_S / 86400:.0f} days at a time"
        )


def check_state(state: str, class_names: tuple[str, ...]) -> str:
    if state not in class_names:
        raise LabelError(
            f"--state {state!r} is not a state the model knows; "
            f"choose one of {', '.join(class_names)}"
        )
    return state


def alert_span(
    db: Path,
    alert_id: int,
    *,
    yes: bool,
    state: str | None,
    class_names: tuple[str, ...],
    stress_class: str = "stress",
) -> LabelSpan:
    """The label an answer to alert ``alert_id`` gives (see the module docstring)."""
    if not db.is_file():
        raise LabelError(f"no database at {db} (--db PATH)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT resident, t, kind, detail FROM events WHERE id = ?", (alert_id,)
        ).fetchone()
        if row is None or row[2] != "alert":
            raise LabelError(
                f"--alert {alert_id}: no such alert in {db} (`edge-daemon history` lists them)"
            )
        resident, t, _, detail_json = row
        detail = json.loads(detail_json)
        if detail.get("rule") != "sustained_stress":
            raise LabelError(
                f"--alert {alert_id} is a {detail.get('rule')} alert, not about "
                "the wearer's state; only sustained_stress alerts can be answered"
            )
        start = float(t) - 60.0 * float(detail.get("minutes", 0.0))
        cleared = conn.execute(
            "SELECT t FROM events WHERE resident = ? AND kind = 'alert_cleared' AND t >= ?"
            " AND json_extract(detail, '$.rule') = 'sustained_stress' ORDER BY t LIMIT 1",
            (resident, t),
        ).fetchone()
    except sqlite3.Error as e:
        raise LabelError(f"cannot read {db}: {e}") from e
    finally:
        conn.close()
    end = float(cleared[0]) if cleared else float(t)
    if end <= start:
        end = start + 1.0
    if yes:
        if state is not None and state != stress_class:
            raise LabelError("--yes confirms the alert's stress; give --state only with --no")
        label = check_state(stress_class, class_names)
    else:
        label = check_state(state or class_names[0], class_names)
        if label == stress_class:
            raise LabelError("--no says the wearer was not stressed; --state must be another state")
    return LabelSpan(resident, start, end, label, f"alert:{alert_id}:{'yes' if yes else 'no'}")
