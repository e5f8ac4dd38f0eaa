"""Decisions, events and device status -> the MQTT messages to store and publish.

This is the privacy boundary of the MQTT sink: every payload is built field by field from a
whitelist of derived values (state, smoothed class probabilities, event kinds with scalar
details, battery percent, a heart-rate mean over ``status_interval_s``). Nothing is copied
wholesale from a record, so a field added to a record later does not leak by accident; a
sample, an RR interval or a window never has a way in.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from edge.alerts.rules import ALERT_KINDS
from edge.decisions import Decision, Event
from edge.device_status import DeviceStatus
from edge.sinks.mqtt.topics import HUB, Topics

__all__ = ["DeviceStatus", "MessageBuilder", "OutMessage", "Priority", "iso_time"]

MAX_TEXT: Final = 200  # event detail strings (an error text) are cut here
HR_RANGE: Final = (20.0, 250.0)  # beats per minute a human heart can show; outside: a bad read


class Priority(enum.IntEnum):
    """What a full outbox gives up first: the oldest derived states, then events, never alerts."""

    STATE = 0
    EVENT = 1
    ALERT = 2


@dataclass(frozen=True, slots=True)
class OutMessage:
    resident: str  # whose order this message keeps ("hub" for the hub's own)
    device: str
    topic: str
    body: dict[str, Any] | None  # a JSON object (the outbox adds the id); None: empty
    retain: bool
    priority: Priority
    heart_rate: bool = False  # the wearer offers a heart rate (its entity is announced)


@dataclass
class _Status:
    connected: bool | None = None
    battery: int | None = None
    battery_at: float = -math.inf
    hr_sum: float = 0.0
    hr_n: int = 0
    hr_since: float | None = None


def iso_time(t: float) -> str:
    """Epoch seconds -> ISO 8601 with the UTC offset (Home Assistant's timestamp format)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class MessageBuilder:
    """Turns records into :class:`OutMessage` s; keeps a little state per wearer (link,
    battery, heart-rate average) so retained values change only when they change."""

    def __init__(self, topics: Topics, *, stress_class: str = "stress",
                 status_interval_s: float = 60.0, heart_rate: bool = True) -> None:
        self.topics = topics
        self.stress_class = stress_class
        self.status_interval_s = status_interval_s
        self.heart_rate = heart_rate
        self._status: dict[str, _Status] = {}
        self.counters: Counter[str] = Counter()  # inputs not published, by reason

    def build(self, record: Decision | Event | DeviceStatus) -> list[OutMessage]:
        if isinstance(record, Decision):
            return self._decision(record)
        if isinstance(record, Event):
            return self._event(record)
        return self._device_status(record)

    # -- decisions ---------------------------------------------------------------------------
    def _decision(self, d: Decision) -> list[OutMessage]:
        probs = {str(k): round(float(v), 4) for k, v in d.probabilities.items()
                 if math.isfinite(float(v))}
        body: dict[str, Any] = {
            "t": round(float(d.t), 3),
            "time": iso_time(d.t),
            "state": str(d.state),
            "p": probs.get(d.state),
            "probabilities": probs,
            "model": str(d.model_id),
        }
        if self.stress_class in probs:
            body["stress_pct"] = round(probs[self.stress_class] * 100.0, 1)
        out = self._link(d.resident, d.device, d.t, True)
        out.append(OutMessage(d.resident, d.device, self.topics.state(d.resident), body,
                              retain=True, priority=Priority.STATE))
        return out

    # -- events -----------------------------------------------------------------------------
    def _event(self, e: Event) -> list[OutMessage]:
        detail = _scalars(e.detail)
        body = {"t": round(float(e.t), 3), "time": iso_time(e.t), "kind": str(e.kind),
                "detail": detail}
        r = e.resident
        out: list[OutMessage] = []
        if e.kind in ALERT_KINDS:
            body["resident"] = r
            out.append(OutMessage(r, e.device, self.topics.alert(r), body, retain=False,
                                  priority=Priority.ALERT))
            rule = detail.get("rule")
            active = {"t": body["t"], "time": body["time"], "active": e.kind == "alert"}
            if rule == "sustained_stress":
                out.append(OutMessage(r, e.device, self.topics.sustained_stress(r), active,
                                      retain=True, priority=Priority.ALERT))
            elif rule == "hub_unhealthy":
                out.append(OutMessage(HUB, HUB, self.topics.hub_problem, active, retain=True,
                                      priority=Priority.ALERT))
            return out
        if r == HUB:
            return [OutMessage(HUB, HUB, self.topics.hub_event, body, retain=False,
                               priority=Priority.EVENT)]
        if e.kind in ("disconnected", "reconnected"):
            out.extend(self._link(r, e.device, e.t, e.kind == "reconnected"))
        elif e.kind == "battery_low" and isinstance(detail.get("percent"), int | float):
            out.extend(self._battery(r, e.device, e.t, float(detail["percent"]), force=True))
        out.append(OutMessage(r, e.device, self.topics.event(r), body, retain=False,
                              priority=Priority.EVENT))
        return out

    # -- device status ------------------------------------------------------------------------
    def _device_status(self, s: DeviceStatus) -> list[OutMessage]:
        out: list[OutMessage] = []
        if s.battery_pct is not None and math.isfinite(s.battery_pct):
            out.extend(self._battery(s.resident, s.device, s.t, s.battery_pct, force=False))
        hr = s.heart_rate_bpm
        if self.heart_rate and hr is not None and not HR_RANGE[0] <= hr <= HR_RANGE[1]:
            # a strap without skin contact reports 0; averaged in, it would fake a low pulse
            self.counters["heart_rate_implausible"] += 1
        elif self.heart_rate and hr is not None:
            st = self._st(s.resident)
            if st.hr_since is None:
                st.hr_since = s.t
            st.hr_sum += float(hr)
            st.hr_n += 1
            if s.t - st.hr_since >= self.status_interval_s:
                body = {"t": round(s.t, 3), "time": iso_time(s.t),
                        "bpm": round(st.hr_sum / st.hr_n),
                        "period_s": round(s.t - st.hr_since, 1)}
                st.hr_sum, st.hr_n, st.hr_since = 0.0, 0, None
                out.append(OutMessage(s.resident, s.device, self.topics.heart_rate(s.resident),
                                      body, retain=True, priority=Priority.STATE,
                                      heart_rate=True))
        return out

    def _st(self, resident: str) -> _Status:
        return self._status.setdefault(resident, _Status())

    def _link(self, resident: str, device: str, t: float, connected: bool) -> list[OutMessage]:
        st = self._st(resident)
        if st.connected is connected:
            return []
        st.connected = connected
        body = {"t": round(t, 3), "time": iso_time(t), "connected": connected}
        return [OutMessage(resident, device, self.topics.connected(resident), body, retain=True,
                           priority=Priority.EVENT)]

    def _battery(self, resident: str, device: str, t: float, pct: float, *,
                 force: bool) -> list[OutMessage]:
        st = self._st(resident)
        value = max(0, min(100, round(pct)))
        if value == st.battery or (
            not force and st.battery is not None and t - st.battery_at < self.status_interval_s
        ):
            return []
        st.battery, st.battery_at = value, t
        body = {"t": round(t, 3), "time": iso_time(t), "percent": value}
        return [OutMessage(resident, device, self.topics.battery(resident), body, retain=True,
                           priority=Priority.EVENT)]


def _scalars(detail: dict[str, Any]) -> dict[str, Any]:
    """Only scalar values of an event's detail go out (strings cut short, floats rounded)."""
    out: dict[str, Any] = {}
    for k, v in detail.items():
        if v is None or isinstance(v, bool | int):
            out[str(k)] = v
        elif isinstance(v, float):
            out[str(k)] = round(v, 4) if math.isfinite(v) else None
        elif isinstance(v, str):
            out[str(k)] = v[:MAX_TEXT]
    return out
