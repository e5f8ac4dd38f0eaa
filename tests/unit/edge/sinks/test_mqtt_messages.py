"""Records -> MQTT payloads: a whitelist of derived values, link/battery/heart-rate state."""

from __future__ import annotations

import math

from edge.decisions import Decision, Event
from edge.sinks.mqtt.messages import DeviceStatus, MessageBuilder, OutMessage, Priority
from edge.sinks.mqtt.topics import Topics, slug

T = Topics("wearable-edge", "hub1")
CLASSES = ("baseline", "stress", "amusement")


def decision(t: float = 1.7e9, state: str = "stress", resident: str = "anna") -> Decision:
    return Decision(resident, "dev-1", t, state,
                    probabilities={"baseline": 0.2, "stress": 0.712345, "amusement": 0.087655},
                    raw={"baseline": 0.123456, "stress": 0.8, "amusement": 0.076544},
                    model_id="model-x", window_start=123.456, window_end=183.456,
                    window_index=987654, label="stress", latency_ms=3.321)


def by_topic(msgs: list[OutMessage]) -> dict[str, OutMessage]:
    return {m.topic: m for m in msgs}


def test_a_decision_carries_only_whitelisted_derived_fields() -> None:
    b = MessageBuilder(T)
    msgs = by_topic(b.build(decision()))
    state = msgs["wearable-edge/hub1/anna/state"]
    assert state.retain and state.priority is Priority.STATE
    assert set(state.body or {}) == {"t", "time", "state", "p", "probabilities", "model",
                                     "stress_pct"}
    body = state.body or {}
    assert body["state"] == "stress" and body["stress_pct"] == 71.2 and body["p"] == 0.7123
    assert body["time"] == "2023-11-14T22:13:20+00:00"
    # the window's own probabilities, window times, index, label and latency stay home
    text = repr(body)
    for value in ("0.1235", "123.456", "183.456", "987654", "3.321", "0.0765"):
        assert value not in text
    # a decision also says the wearable is connected, once
    assert msgs["wearable-edge/hub1/anna/connected"].body["connected"] is True  # type: ignore[index]
    assert [m.topic for m in b.build(decision(1.7e9 + 5))] == ["wearable-edge/hub1/anna/state"]


def test_no_stress_class_no_stress_pct() -> None:
    b = MessageBuilder(T, stress_class="anxious")
    (state,) = [m for m in b.build(decision()) if m.topic.endswith("/state")]
    assert "stress_pct" not in (state.body or {})


def test_event_details_keep_scalars_only() -> None:
    b = MessageBuilder(T)
    e = Event("anna", "dev-1", 1.7e9, "invalid_windows",
              {"reason": "gap", "samples": [1.0, 2.0, 3.0], "nested": {"x": 1}, "n": 3,
               "f": math.nan, "long": "x" * 500})
    (msg,) = b.build(e)
    assert msg.topic == "wearable-edge/hub1/anna/event" and not msg.retain
    detail = (msg.body or {})["detail"]
    assert detail == {"reason": "gap", "n": 3, "f": None, "long": "x" * 200}


def test_alerts_are_never_droppable_and_drive_the_binary_sensors() -> None:
    b = MessageBuilder(T)
    raised = b.build(Event("anna", "dev-1", 1.7e9, "alert",
                           {"rule": "sustained_stress", "minutes": 10.0, "message": "m"}))
    assert {m.topic for m in raised} == {"wearable-edge/hub1/anna/alert",
                                         "wearable-edge/hub1/anna/sustained_stress"}
    assert all(m.priority is Priority.ALERT for m in raised)
    sensor = by_topic(raised)["wearable-edge/hub1/anna/sustained_stress"]
    assert sensor.retain and (sensor.body or {})["active"] is True
    cleared = by_topic(b.build(Event("anna", "dev-1", 1.7e9 + 60, "alert_cleared",
                                     {"rule": "sustained_stress"})))
    assert (cleared["wearable-edge/hub1/anna/sustained_stress"].body or {})["active"] is False
    hub = by_topic(b.build(Event("hub", "hub", 1.7e9, "alert", {"rule": "hub_unhealthy"})))
    assert (hub["wearable-edge/hub1/hub/problem"].body or {})["active"] is True


def test_link_and_battery_are_retained_and_sent_on_change() -> None:
    b = MessageBuilder(T, status_interval_s=60.0)
    down = by_topic(b.build(Event("anna", "dev-1", 100.0, "disconnected", {"reason": "lost"})))
    assert (down["wearable-edge/hub1/anna/connected"].body or {})["connected"] is False
    assert "wearable-edge/hub1/anna/event" in down
    up = by_topic(b.build(Event("anna", "dev-1", 110.0, "reconnected")))
    assert (up["wearable-edge/hub1/anna/connected"].body or {})["connected"] is True

    def battery(t: float, pct: float) -> list[int]:
        return [(m.body or {})["percent"] for m in b.build(DeviceStatus("anna", "d", t, pct))]

    assert battery(0.0, 80.4) == [80]
    assert battery(10.0, 79.0) == []  # within the interval
    assert battery(70.0, 79.6) == []  # same percent
    assert battery(80.0, 78.0) == [78]
    low = b.build(Event("anna", "dev-1", 81.0, "battery_low", {"percent": 14.2}))
    assert [(m.body or {}).get("percent") for m in low if m.topic.endswith("/battery")] == [14]


def test_heart_rate_is_a_period_mean_and_implausible_readings_are_counted() -> None:
    b = MessageBuilder(T, status_interval_s=60.0)
    out: list[OutMessage] = []
    for i, bpm in enumerate([70.0, 72.0, 0.0, 74.0, 71.0, 73.0, math.nan]):
        out += b.build(DeviceStatus("anna", "d", 1000.0 + 15 * i, heart_rate_bpm=bpm))
    assert len(out) == 1
    (hr,) = out
    assert hr.topic == "wearable-edge/hub1/anna/heart_rate" and hr.heart_rate
    assert (hr.body or {})["bpm"] == 72  # mean of 70, 72, 74, 71, 73 (0 is no contact)
    assert b.counters["heart_rate_implausible"] == 2
    off = MessageBuilder(T, heart_rate=False)
    assert off.build(DeviceStatus("anna", "d", 0.0, heart_rate_bpm=70.0)) == []


def test_slug_is_topic_safe_and_never_merges_two_names() -> None:
    assert slug("anna") == "anna"
    assert slug("Anna") != slug("anna") and slug("Anna").startswith("anna_")
    assert slug("anna b") != slug("anna_b")
    assert slug("+#/") .startswith("wearer_")
    for name in ("Zoë", "a/b", "#", "x" * 200):
        s = slug(name)
        assert s and all(c.isalnum() or c in "_-" for c in s) and len(s) <= 60
    assert T.state("Anna B.").startswith("wearable-edge/hub1/anna_b_")
