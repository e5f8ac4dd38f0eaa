"""Alert rules over derived states and events for carers; each alert an event record.

Rules, per wearer (thresholds overridable per wearer in ``[alerts.wearers.<name>]``):

- ``sustained_stress``: the decided state has been the stress class for ``sustained_stress_min``
  (a gap in decisions longer than ``max_gap_s`` starts the count afresh);
- ``no_contact``: the wearable has reported no skin contact (off the wrist) for ``no_contact_min``;
- ``disconnected``: the wearable's link has been down for ``disconnected_min``;
- ``battery_low``: the battery reads below ``battery_low_pct`` (cleared 5 points above it);
- ``hub_unhealthy`` (the hub itself): a sink failing or a source gone for ``hub_unhealthy_min``.

An alert is raised once its condition has held for the threshold, then at most once per
``cooldown_min`` while the condition lasts or recurs (a reminder, not a stream); when the
condition ends an ``alert_cleared`` follows. Both are :class:`~edge.decisions.Event` records
(``kind`` ``"alert"`` / ``"alert_cleared"``, ``detail["rule"]``), so every sink stores and
publishes them like any event. Pure logic: the caller gives the time (``t``, hub wall-clock
epoch seconds, virtual when sped up) with each record and with :meth:`AlertRules.tick`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from edge.alerts.options import AlertConfig
from edge.decisions import Decision, Event

__all__ = ["ALERT_KINDS", "RULES", "AlertRules", "describe"]

ALERT_KINDS: Final = ("alert", "alert_cleared")
RULES: Final = ("sustained_stress", "no_contact", "disconnected", "battery_low", "hub_unhealthy")
HUB: Final = "hub"  # the resident hub-level events carry (edge.daemon.on_sink_fault)
# a battery alert clears only this many points above its threshold, so a reading wobbling
# around the threshold cannot raise and clear it every minute
BATTERY_CLEAR_PCT: Final = 5.0
# hub events that mean a part of the hub stopped working, and the ones that end it
_HUB_BAD: Final = frozenset({"sink_fault", "source_lost"})
_HUB_GOOD: Final = frozenset({"sink_recovered", "source_restored"})


@dataclass
class _Condition:
    since: float | None = None  # when the condition began (None: it does not hold)
    device: str = ""
    raised: bool = False  # an alert was raised for this stretch and not yet cleared
    last_alert: float | None = None  # when the last alert was raised (for the cooldown)
    value: float | None = None  # what the alert reports besides the duration (battery %)


_RULE_MINUTES: Final = {
    "sustained_stress": "sustained_stress_min",
    "no_contact": "no_contact_min",
    "disconnected": "disconnected_min",
    "hub_unhealthy": "hub_unhealthy_min",
}


class AlertRules:
    """The alert state of every wearer; feed it every record, and the time now and then."""

    def __init__(self, cfg: AlertConfig, *, stress_class: str = "stress") -> None:
        self.cfg = cfg
        self.stress_class = stress_class
        self._conditions: dict[tuple[str, str], _Condition] = {}
        self._last_decision: dict[str, float] = {}
        self._hub_problems: set[str] = set()

    def observe(self, record: Decision | Event) -> list[Event]:
        """The alerts ``record`` raises or clears (usually none). Alert events give none."""
        if not self.cfg.enabled:
            return []
        out: list[Event] = []
        if isinstance(record, Decision):
            self._on_decision(record, out)
        elif record.kind not in ALERT_KINDS:
            self._on_event(record, out)
        return out

    def battery(self, resident: str, device: str, t: float, percent: float) -> list[Event]:
        """A battery reading (the daemon forwards the wearable's BATTERY events)."""
        if not self.cfg.enabled or not math.isfinite(percent):
            return []
        out: list[Event] = []
        threshold = self.cfg.threshold(resident, "battery_low_pct")
        c = self._cond(resident, "battery_low")
        c.value = round(percent, 1)
        if percent < threshold:
            self._set(resident, device, "battery_low", True, t, out)
            self._check(resident, "battery_low", t, 0.0, out)
        elif percent >= threshold + BATTERY_CLEAR_PCT:
            self._set(resident, device, "battery_low", False, t, out)
        return out

    def tick(self, t: float, *, hub_t: float | None = None) -> list[Event]:
        """Conditions that reached their threshold by ``t`` without a new record.

        ``hub_t``: the time for the hub's own rule, when it differs from the wearers' (a
        sped-up run: wearers live in data time, the hub's faults in wall-clock time).
        """
        if not self.cfg.enabled:
            return []
        out: list[Event] = []
        for (resident, rule), c in list(self._conditions.items()):
            if c.since is not None and rule in _RULE_MINUTES:
                now = hub_t if resident == HUB and hub_t is not None else t
                self._check(resident, rule, now, self._minutes(resident, rule), out)
        return out

    def active(self) -> dict[str, list[str]]:
        """Raised, not yet cleared alerts: resident -> rules (for a status display)."""
        out: dict[str, list[str]] = {}
        for (resident, rule), c in sorted(self._conditions.items()):
            if c.raised:
                out.setdefault(resident, []).append(rule)
        return out

    # -- rules -------------------------------------------------------------------------------
    def _on_decision(self, d: Decision, out: list[Event]) -> None:
        r = d.resident
        previous = self._last_decision.get(r)
        self._last_decision[r] = d.t
        # data is flowing: the link is up (a missed `reconnected` must not leave it raised)
        self._set(r, d.device, "disconnected", False, d.t, out)
        stressed = d.state == self.stress_class
        c = self._cond(r, "sustained_stress")
        if stressed and c.since is not None and previous is not None \
                and d.t - previous > self.cfg.max_gap_s:
            self._set(r, d.device, "sustained_stress", False, previous, out)
        self._set(r, d.device, "sustained_stress", stressed, d.t, out)
        self._check(r, "sustained_stress", d.t, self._minutes(r, "sustained_stress"), out)

    def _on_event(self, e: Event, out: list[Event]) -> None:
        r, kind = e.resident, e.kind
        if r == HUB:
            if kind in _HUB_BAD or kind in _HUB_GOOD:
                part = str(e.detail.get("sink") or e.detail.get("source") or kind)
                (self._hub_problems.add if kind in _HUB_BAD else self._hub_problems.discard)(part)
                self._set(HUB, HUB, "hub_unhealthy", bool(self._hub_problems), e.t, out)
                self._check(HUB, "hub_unhealthy", e.t, self._minutes(HUB, "hub_unhealthy"), out)
            return
        if kind in ("no_contact", "contact_restored"):
            self._set(r, e.device, "no_contact", kind == "no_contact", e.t, out)
            self._check(r, "no_contact", e.t, self._minutes(r, "no_contact"), out)
        elif kind in ("disconnected", "reconnected"):
            self._set(r, e.device, "disconnected", kind == "disconnected", e.t, out)
            self._check(r, "disconnected", e.t, self._minutes(r, "disconnected"), out)
        elif kind == "battery_low":
            pct = e.detail.get("percent")
            if isinstance(pct, int | float):
                out.extend(self.battery(r, e.device, e.t, float(pct)))

    # -- the condition machine -------------------------------------------------------------
    def _cond(self, resident: str, rule: str) -> _Condition:
        return self._conditions.setdefault((resident, rule), _Condition())

    def _minutes(self, resident: str, rule: str) -> float:
        return self.cfg.threshold(resident, _RULE_MINUTES[rule])

    def _set(self, resident: str, device: str, rule: str, on: bool, t: float,
             out: list[Event]) -> None:
        c = self._cond(resident, rule)
        c.device = device or c.device
        if on:
            if c.since is None:
                c.since = t
            return
        if c.since is not None and c.raised:
            out.append(self._event(resident, c.device, t, "alert_cleared", rule, c,
                                   held_min=(t - c.since) / 60.0))
        c.since = None
        c.raised = False

    def _check(self, resident: str, rule: str, t: float, minutes: float,
               out: list[Event]) -> None:
        c = self._cond(resident, rule)
        if c.since is None or t - c.since < minutes * 60.0:
            return
        cooldown = self.cfg.threshold(resident, "cooldown_min") * 60.0
        if c.last_alert is not None and t - c.last_alert < cooldown:
            return
        c.raised = True
        c.last_alert = t
        out.append(self._event(resident, c.device, t, "alert", rule, c,
                               held_min=(t - c.since) / 60.0))

    def _event(self, resident: str, device: str, t: float, kind: str, rule: str,
               c: _Condition, *, held_min: float) -> Event:
        detail: dict[str, Any] = {"rule": rule, "minutes": round(held_min, 1)}
        if rule in _RULE_MINUTES:
            detail["threshold_min"] = self._minutes(resident, rule)
        if rule == "battery_low" and c.value is not None:
            detail["percent"] = c.value
        detail["message"] = describe(resident, kind, detail)
        return Event(resident, device or resident, t, kind, detail)


def describe(resident: str, kind: str, detail: dict[str, Any]) -> str:
    """An alert in words, for a phone notification or the history."""
    rule = detail.get("rule", "")
    minutes = _duration(float(detail.get("minutes", 0.0)))
    if kind == "alert_cleared":
        return {
            "sustained_stress": f"{resident} is no longer stressed (after {minutes})",
            "no_contact": f"{resident}'s wearable is back on the wrist (after {minutes})",
            "disconnected": f"{resident}'s wearable is connected again (after {minutes})",
            "battery_low": f"{resident}'s wearable is charged again",
            "hub_unhealthy": f"the hub works normally again (after {minutes})",
        }.get(rule, f"{resident}: {rule} cleared")
    pct = detail.get("percent")
    return {
        "sustained_stress": f"{resident} has been stressed for {minutes}",
        "no_contact": f"{resident}'s wearable has been off the wrist for {minutes}",
        "disconnected": f"{resident}'s wearable has been out of reach for {minutes}",
        "battery_low": f"{resident}'s wearable battery is low"
                       + (f" ({pct:.0f} %)" if isinstance(pct, int | float) else ""),
        "hub_unhealthy": f"the hub has had a problem for {minutes} (see its log)",
    }.get(rule, f"{resident}: {rule}")


def _duration(minutes: float) -> str:
    if minutes < 1.0:
        return "less than a minute"
    if minutes < 90.0:
        return f"{minutes:.0f} min"
    return f"{minutes / 60.0:.1f} h"

