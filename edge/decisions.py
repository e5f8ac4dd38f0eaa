"""From per-window class probabilities to a calm state and a few meaningful events.

A model's window-by-window output flickers; a carer's screen must not. Per device:

- **EMA smoothing** of the class probabilities (``ema_alpha`` weighs the newest window);
  the average restarts after a data gap longer than ``reset_after_s`` so that stale
  probabilities from before the gap do not linger.
- **Hysteresis**: a challenger class replaces the current state only when its smoothed
  probability reaches ``enter_threshold`` *and* beats the current state's by
  ``switch_margin``.
- **Minimum dwell**: a state holds at least ``min_dwell_s`` of data time.

Events: ``state_change``; ``no_contact`` / ``contact_restored``;
``battery_low`` (once, re-armed when the level recovers); ``disconnected`` / ``reconnected``;
``data_gap`` (packets lost); ``invalid_windows`` / ``valid_windows`` (a device's windows turn
unusable, with the reason, and back). How long a state has held, and so sustained stress, is
the alert rules' to judge (:mod:`edge.alerts.rules`: per wearer, with a cooldown), from these
decisions: one source, so one episode gives one alert.

All times in this module are *data time* (seconds on the device's clock, which sped-up
sim/replay runs compress) for the logic, plus a ``t`` (hub wall-clock epoch seconds; virtual
for sped-up runs) carried into each record. Pure logic: no I/O, no clock reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from edge.config import DecisionConfig

__all__ = [
    "EVENT_KINDS",
    "Decision",
    "DecisionLogic",
    "DeviceEvents",
    "Event",
    "Wearer",
    "softmax",
]

# every kind of event the hub emits, wherever in edge/ it is made (a test reads the source)
EVENT_KINDS: Final = (
    "state_change",
    "no_contact",
    "contact_restored",
    "battery_low",
    "disconnected",
    "reconnected",
    "data_gap",
    "invalid_windows",
    "valid_windows",
    "sink_fault",
    "sink_recovered",
    "source_lost",  # the hub's (edge.health.SourceWatch)
    "source_restored",
    "calibrated",
    "alert",  # edge.alerts.rules
    "alert_cleared",
    "activity_day",  # edge.activity.daily: a wearer's day, after its midnight
    "activity_trend",
    "personal_head",  # edge.personal.runtime: a wearer's head refitted (chosen or not)
    "model_swapped",  # edge.updates: a verified head or bundle now decides
    "update_refused",  # edge.updates: an update failed its signature, hashes or fit
    "model_rolled_back",  # edge.updates: an update did worse on confirmed labels
    "model_restored",  # edge.update_restore: what serves again after a restart
)
# a battery warning is re-armed only this many points above the threshold, so a reading that
# wobbles around the threshold does not produce an event every few seconds
BATTERY_REARM_PCT: Final = 5.0
# the EMA restarts after this much data time without a valid window: by then the old average
# says more about the past than about the person now (4x the default 30 s dwell)
RESET_AFTER_S: Final = 120.0


@dataclass(slots=True)
class Wearer:
    """Who one device's records are about: its device key and the resident wearing it.

    One object per device, shared by reference: the device's ingest names the resident (once
    the device's HELLO says who it is) and its event tracker and decision logic read it, so
    every record carries the same resident without copies to keep in sync.
    """

    device: str
    resident: str


@dataclass(frozen=True, slots=True)
class Decision:
    """One valid window's outcome. Derived data only: never a raw sample."""

    resident: str
    device: str
    t: float  # hub wall-clock epoch seconds of the window end (virtual when sped up)
    state: str  # the decided state after smoothing, hysteresis and dwell
    probabilities: dict[str, float]  # smoothed class probabilities (EMA)
    raw: dict[str, float]  # this window's own class probabilities
    model_id: str
    window_start: float  # data time (device clock seconds) of the window
    window_end: float
    window_index: int
    label: str | None = None  # ground truth, replay only
    # window complete -> handed to the sinks (queue, preprocessing, engine, delivery)
    latency_ms: float = math.nan
    # a beats window's heart rate (bpm) and RMSSD (ms): derived from its cleaned RR
    # intervals, which themselves never leave the hub (core.signal.beats.DERIVED_KEYS)
    derived: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "decision",
            "resident": self.resident,
            "device": self.device,
            "t": round(self.t, 3),
            "state": self.state,
            "probabilities": _rounded(self.probabilities),
            "p_instant": _rounded(self.raw),  # the window's own, unsmoothed; not raw signal
            "model_id": self.model_id,
            "window_start": round(self.window_start, 3),
            "window_end": round(self.window_end, 3),
            "window_index": self.window_index,
        }
        if self.label is not None:
            d["label"] = self.label
        if math.isfinite(self.latency_ms):
            d["latency_ms"] = round(self.latency_ms, 3)
        if self.derived:
            d["derived"] = {k: round(v, 1) for k, v in self.derived.items()}
        return d


@dataclass(frozen=True, slots=True)
class Event:
    resident: str
    device: str
    t: float  # hub wall-clock epoch seconds (virtual when sped up)
    kind: str  # one of EVENT_KINDS
    detail: dict[str, Any] = field(default_factory=dict)  # small, derived values only

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "event",
            "resident": self.resident,
            "device": self.device,
            "t": round(self.t, 3),
            "kind": self.kind,
            "detail": self.detail,
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """``(B, K)`` or ``(K,)`` logits -> probabilities, stable for large logits, float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


class DecisionLogic:
    """Smoothing, hysteresis and dwell for one device's stream."""

    def __init__(
        self,
        class_names: Sequence[str],
        cfg: DecisionConfig,
        *,
        wearer: Wearer,
        model_id: str,
        reset_after_s: float = RESET_AFTER_S,
    ) -> None:
        self.class_names = tuple(class_names)
        self.cfg = cfg
        self.wearer = wearer
        self.model_id = model_id
        self.reset_after_s = reset_after_s
        self._smoothed: np.ndarray | None = None  # (K,)
        self._last_t: float | None = None
        self.state: str | None = None
        self._state_since = 0.0  # data time the current state began

    def update(
        self,
        probs: np.ndarray,
        *,
        t: float,
        window_start: float,
        window_end: float,
        window_index: int,
        label: str | None = None,
        latency_ms: float = math.nan,
        derived: Mapping[str, float] | None = None,
    ) -> tuple[Decision, list[Event]]:
        """One valid window's class probabilities ``(K,)``; ``window_end`` is its data time."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)  # (K,)
        if p.shape != (len(self.class_names),):
            raise ValueError(f"expected {len(self.class_names)} probabilities, got {p.shape}")
        now = window_end
        if (
            self._smoothed is None
            or self._last_t is None
            or now - self._last_t > self.reset_after_s
            or now < self._last_t  # the device clock went back: a new session
        ):
            self._smoothed = p.copy()
        else:
            a = self.cfg.ema_alpha
            self._smoothed = a * p + (1.0 - a) * self._smoothed
        self._last_t = now
        s = self._smoothed
        events: list[Event] = []

        best = int(np.argmax(s))
        challenger = self.class_names[best]
        if self.state is None:
            self._enter(challenger, now, t, s, events, previous=None)
        elif challenger != self.state:
            cur = s[self.class_names.index(self.state)]
            if (
                s[best] >= self.cfg.enter_threshold
                and s[best] - cur >= self.cfg.switch_margin
                and now - self._state_since >= self.cfg.min_dwell_s
            ):
                self._enter(challenger, now, t, s, events, previous=self.state)

        assert self.state is not None  # set on the first window above
        decision = Decision(
            resident=self.wearer.resident,
            device=self.wearer.device,
            t=t,
            state=self.state,
            probabilities=dict(zip(self.class_names, map(float, s), strict=True)),
            raw=dict(zip(self.class_names, map(float, p), strict=True)),
            model_id=self.model_id,
            window_start=window_start,
            window_end=window_end,
            window_index=window_index,
            label=label,
            latency_ms=latency_ms,
            derived=dict(derived or {}),
        )
        return decision, events

    def _enter(
        self,
        state: str,
        now: float,
        t: float,
        s: np.ndarray,
        events: list[Event],
        *,
        previous: str | None,
    ) -> None:
        held = None if previous is None else round(now - self._state_since, 1)
        self.state = state
        self._state_since = now
        events.append(
            self._event(
                t,
                "state_change",
                {
                    "from": previous,
                    "to": state,
                    "held_s": held,
                    "p": round(float(s[self.class_names.index(state)]), 4),
                },
            )
        )

    def _event(self, t: float, kind: str, detail: dict[str, Any]) -> Event:
        return Event(self.wearer.resident, self.wearer.device, t, kind, detail)


class DeviceEvents:
    """Edge-triggered device events: contact, battery, link, data gaps, window validity.

    Each ``on_*`` returns the events the observation causes (usually none): a condition is
    reported when it starts and when it ends, never once per packet.
    """

    def __init__(self, cfg: DecisionConfig, *, wearer: Wearer) -> None:
        self.cfg = cfg
        self.wearer = wearer
        self._contact: bool | None = None
        self._battery_armed = True
        self._connected: bool | None = None
        self._invalid_reason: str | None = None

    def on_contact(self, t: float, contact: bool) -> list[Event]:
        previous, self._contact = self._contact, contact
        if contact == previous or (previous is None and contact):
            return []
        return [self._event(t, "contact_restored" if contact else "no_contact", {})]

    def on_battery(self, t: float, percent: float) -> list[Event]:
        if not math.isfinite(percent):
            return []
        if self._battery_armed and percent < self.cfg.battery_low_pct:
            self._battery_armed = False
            return [self._event(t, "battery_low", {"percent": round(percent, 1)})]
        if not self._battery_armed and percent >= self.cfg.battery_low_pct + BATTERY_REARM_PCT:
            self._battery_armed = True
        return []

    def on_link(self, t: float, connected: bool, reason: str = "") -> list[Event]:
        previous, self._connected = self._connected, connected
        if connected == previous:
            return []
        if connected:
            # the first connection of a run is not a "re"-connection
            if previous is None:
                return []
            return [self._event(t, "reconnected", {})]
        return [self._event(t, "disconnected", {"reason": reason} if reason else {})]

    def on_gap(self, t: float, sensor: str, lost: int) -> list[Event]:
        if lost <= 0:
            return []
        return [self._event(t, "data_gap", {"sensor": sensor, "lost_packets": int(lost)})]

    def on_window(self, t: float, valid: bool, reason: str | None) -> list[Event]:
        if not self.cfg.invalid_events:
            return []
        if valid:
            if self._invalid_reason is None:
                return []
            self._invalid_reason = None
            return [self._event(t, "valid_windows", {})]
        reason = reason or "unknown"
        if reason == self._invalid_reason:
            return []
        self._invalid_reason = reason
        return [self._event(t, "invalid_windows", {"reason": reason})]

    def _event(self, t: float, kind: str, detail: dict[str, Any]) -> Event:
        return Event(self.wearer.resident, self.wearer.device, t, kind, detail)


def _rounded(d: dict[str, float]) -> dict[str, float]:
    # 4 decimals: probabilities are not more precise than that, and lines stay short
    return {k: round(v, 4) for k, v in d.items()}
