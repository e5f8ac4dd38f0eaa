"""Alert rules over derived states: thresholds, per-wearer overrides, cooldown, clearing."""

from __future__ import annotations

from edge.alerts import AlertConfig, AlertRules
from edge.decisions import Decision, Event

P = {"baseline": 0.2, "stress": 0.8}


def decision(t: float, state: str, resident: str = "anna") -> Decision:
    return Decision(resident, f"dev-{resident}", t, state, P, P, "m", t - 60, t, int(t))


def feed(rules: AlertRules, records: list[Decision | Event]) -> list[Event]:
    out: list[Event] = []
    for r in records:
        out += rules.observe(r)
    return out


def stress_run(start: float, minutes: float, resident: str = "anna",
               state: str = "stress") -> list[Decision | Event]:
    return [decision(start + 5 * i, state, resident) for i in range(int(minutes * 12) + 1)]


def test_sustained_stress_alerts_at_the_threshold_and_clears_with_words() -> None:
    rules = AlertRules(AlertConfig(sustained_stress_min=10, cooldown_min=30))
    out = feed(rules, stress_run(0.0, 12))
    (alert,) = out
    assert alert.kind == "alert" and alert.t == 600.0 and alert.resident == "anna"
    assert alert.detail["rule"] == "sustained_stress" and alert.detail["minutes"] == 10.0
    assert alert.detail["message"] == "anna has been stressed for 10 min"
    assert rules.active() == {"anna": ["sustained_stress"]}
    (cleared,) = rules.observe(decision(725.0, "baseline"))
    assert cleared.kind == "alert_cleared" and cleared.detail["rule"] == "sustained_stress"
    assert "no longer stressed" in cleared.detail["message"] and rules.active() == {}


def test_cooldown_limits_reminders_and_recurrences() -> None:
    rules = AlertRules(AlertConfig(sustained_stress_min=10, cooldown_min=30))
    out = feed(rules, stress_run(0.0, 45))  # 45 min of stress: alerts at 10 and 40 min
    assert [e.t for e in out if e.kind == "alert"] == [600.0, 2400.0]
    rules.observe(decision(2705.0, "baseline"))
    again = feed(rules, stress_run(2710.0, 11))  # ends 10 min after the 40-min alert: too soon
    assert [e for e in again if e.kind == "alert"] == []


def test_a_gap_in_decisions_restarts_the_count() -> None:
    rules = AlertRules(AlertConfig(sustained_stress_min=10, max_gap_s=120))
    out = feed(rules, stress_run(0.0, 6) + stress_run(360.0 + 300.0, 6))
    assert out == []  # 6 + 6 minutes with a 5-minute hole is not 12 minutes


def test_per_wearer_thresholds() -> None:
    cfg = AlertConfig(sustained_stress_min=10, wearers={"bob": {"sustained_stress_min": 2}})
    cfg.validate("alerts")
    rules = AlertRules(cfg)
    out = feed(rules, [r for pair in zip(stress_run(0.0, 5), stress_run(0.0, 5, "bob"),
                                         strict=True) for r in pair])
    assert [(e.resident, e.t) for e in out] == [("bob", 120.0)]


def test_contact_link_battery_rules_need_time_or_a_reading() -> None:
    rules = AlertRules(AlertConfig(no_contact_min=10, disconnected_min=15, battery_low_pct=20))
    assert rules.observe(Event("anna", "d", 0.0, "no_contact")) == []
    assert rules.tick(500.0) == []
    (a,) = rules.tick(600.0)
    assert a.detail["rule"] == "no_contact" and "off the wrist for 10 min" in a.detail["message"]
    (c,) = rules.observe(Event("anna", "d", 700.0, "contact_restored"))
    assert c.kind == "alert_cleared"
    assert rules.observe(Event("bob", "d", 0.0, "disconnected")) == []
    (d,) = rules.tick(900.0)
    assert (d.resident, d.detail["rule"]) == ("bob", "disconnected")
    # decisions flowing again clear a link alert even without a `reconnected` event
    (cleared,) = rules.observe(decision(950.0, "baseline", "bob"))
    assert cleared.kind == "alert_cleared" and cleared.detail["rule"] == "disconnected"
    (b,) = rules.battery("anna", "d", 1000.0, 18.0)
    assert b.detail == {"rule": "battery_low", "minutes": 0.0, "percent": 18.0,
                        "message": "anna's wearable battery is low (18 %)"}
    assert rules.battery("anna", "d", 1060.0, 22.0) == []  # not 5 points above yet
    (ok,) = rules.battery("anna", "d", 1120.0, 26.0)
    assert ok.kind == "alert_cleared"
    (ev,) = rules.observe(Event("carl", "d", 0.0, "battery_low", {"percent": 10.0}))
    assert ev.detail["percent"] == 10.0


def test_hub_unhealthy_while_any_part_fails() -> None:
    rules = AlertRules(AlertConfig(hub_unhealthy_min=5))
    rules.observe(Event("hub", "hub", 0.0, "sink_fault", {"sink": "sqlite", "error": "disk"}))
    rules.observe(Event("hub", "hub", 10.0, "sink_fault", {"sink": "mqtt", "error": "away"}))
    rules.observe(Event("hub", "hub", 20.0, "sink_recovered", {"sink": "sqlite"}))
    (a,) = rules.tick(300.0)
    assert (a.resident, a.detail["rule"]) == ("hub", "hub_unhealthy")
    (c,) = rules.observe(Event("hub", "hub", 400.0, "sink_recovered", {"sink": "mqtt"}))
    assert c.kind == "alert_cleared"


def test_the_hub_rule_can_run_on_its_own_clock() -> None:
    """A sped-up run: wearers' records carry virtual times far ahead of the wall clock that
    the hub's own faults are stamped with; each rule is judged on its own clock."""
    rules = AlertRules(AlertConfig(hub_unhealthy_min=5, no_contact_min=10))
    rules.observe(Event("hub", "hub", 1000.0, "sink_fault", {"sink": "mqtt", "error": "away"}))
    rules.observe(Event("anna", "d", 50_000.0, "no_contact"))
    assert rules.tick(50_000.0 + 60.0, hub_t=1000.0 + 60.0) == []
    (a,) = rules.tick(50_000.0 + 120.0, hub_t=1000.0 + 301.0)
    assert a.detail["rule"] == "hub_unhealthy"
    (b,) = rules.tick(50_000.0 + 601.0, hub_t=1000.0 + 320.0)
    assert (b.resident, b.detail["rule"]) == ("anna", "no_contact")


def test_alert_events_and_a_disabled_config_raise_nothing() -> None:
    rules = AlertRules(AlertConfig(sustained_stress_min=0))
    (a,) = rules.observe(decision(0.0, "stress"))
    assert rules.observe(a) == []
    off = AlertRules(AlertConfig(enabled=False, sustained_stress_min=0))
    assert feed(off, stress_run(0.0, 20)) == [] and off.tick(1e6) == []
