"""Decision logic: EMA smoothing, hysteresis, minimum dwell and the events it raises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.config import DecisionConfig
from edge.decisions import DecisionLogic, DeviceEvents, Wearer, softmax

CLASSES = ("baseline", "stress", "amusement")
HOP = 5.0


def _logic(**cfg: float | str | bool) -> DecisionLogic:
    return DecisionLogic(
        CLASSES, DecisionConfig(**cfg), wearer=Wearer("d1", "r1"), model_id="m"  # type: ignore[arg-type]
    )


def _feed(logic: DecisionLogic, probs: list[tuple[float, float, float]], t0: float = 0.0):
    """Feed windows at a 5 s hop; return (states, all events)."""
    states, events = [], []
    for i, p in enumerate(probs):
        end = t0 + 60.0 + i * HOP
        d, ev = logic.update(np.array(p), t=1e9 + end, window_start=end - 60.0, window_end=end,
                             window_index=i)
        states.append(d.state)
        events.extend(ev)
    return states, events


def test_first_window_sets_state_and_reports_it() -> None:
    states, events = _feed(_logic(), [(0.2, 0.7, 0.1)])
    assert states == ["stress"]
    assert [(e.kind, e.detail["from"], e.detail["to"]) for e in events] == [
        ("state_change", None, "stress")
    ]


def test_ema_smoothing_matches_hand_computation() -> None:
    logic = _logic(ema_alpha=0.5)
    d0, _ = logic.update(np.array([1.0, 0.0, 0.0]), t=0, window_start=0, window_end=60,
                         window_index=0)
    d1, _ = logic.update(np.array([0.0, 1.0, 0.0]), t=5, window_start=5, window_end=65,
                         window_index=1)
    assert d1.probabilities == pytest.approx({"baseline": 0.5, "stress": 0.5, "amusement": 0.0})
    assert d1.raw == pytest.approx({"baseline": 0.0, "stress": 1.0, "amusement": 0.0})
    assert d0.probabilities["baseline"] == pytest.approx(1.0)


def test_hysteresis_holds_state_when_challenger_is_only_slightly_ahead() -> None:
    # baseline established, then a long run where stress leads by less than the margin
    logic = _logic(ema_alpha=1.0, switch_margin=0.1, enter_threshold=0.4, min_dwell_s=0)
    states, _ = _feed(logic, [(0.8, 0.1, 0.1)] + [(0.46, 0.50, 0.04)] * 20)
    assert set(states) == {"baseline"}
    # a clear lead switches at once (dwell 0)
    states, events = _feed(logic, [(0.3, 0.65, 0.05)], t0=200)
    assert states == ["stress"]
    # baseline began at window_end 60; the switching window ends at 260
    assert events[0].detail == {"from": "baseline", "to": "stress", "held_s": 200.0, "p": 0.65}


def test_alternating_windows_do_not_flap() -> None:
    # raw argmax flips every window; smoothing + hysteresis keep one state throughout
    logic = _logic()
    probs = [(0.7, 0.25, 0.05) if i % 2 == 0 else (0.25, 0.7, 0.05) for i in range(60)]
    states, events = _feed(logic, probs)
    assert len(set(states)) == 1
    assert sum(e.kind == "state_change" for e in events) == 1  # only the first


def test_minimum_dwell_delays_a_change_until_the_state_is_old_enough() -> None:
    logic = _logic(ema_alpha=1.0, min_dwell_s=30.0)
    # stress from window 0; baseline wins clearly from window 1 on
    states, _ = _feed(logic, [(0.1, 0.9, 0.0)] + [(0.9, 0.1, 0.0)] * 10)
    # state began at window_end 60; a change is allowed once window_end - 60 >= 30, i.e. i=6
    assert states[:6] == ["stress"] * 6
    assert states[6:] == ["baseline"] * 5


def test_enter_threshold_blocks_a_weak_plurality() -> None:
    logic = _logic(ema_alpha=1.0, min_dwell_s=0, enter_threshold=0.5, switch_margin=0.05)
    states, _ = _feed(logic, [(0.9, 0.05, 0.05)] + [(0.3, 0.25, 0.45)] * 5)
    assert set(states) == {"baseline"}


def test_long_stress_is_one_state_change_and_no_alert_here() -> None:
    """How long stress lasts is the alert rules' to judge (edge.alerts.rules, per wearer and
    with a cooldown): the decision logic raising its own alert too would give a carer two
    notifications for one episode."""
    logic = _logic(ema_alpha=1.0)
    states, events = _feed(logic, [(0.1, 0.9, 0.0)] * 150)  # over 12 min of stress
    assert all(s == "stress" for s in states)
    assert [e.kind for e in events] == ["state_change"]


def test_ema_restarts_after_a_long_gap() -> None:
    logic = _logic(ema_alpha=0.1, min_dwell_s=0, switch_margin=0.0, enter_threshold=0.0)
    _feed(logic, [(0.95, 0.05, 0.0)] * 10)
    # 10 minutes later the person is clearly stressed: the stale average must not hold them back
    d, _ = logic.update(np.array([0.05, 0.95, 0.0]), t=0, window_start=700, window_end=760,
                        window_index=100)
    assert d.probabilities["stress"] == pytest.approx(0.95)
    assert d.state == "stress"


def test_wrong_number_of_probabilities_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 3"):
        _logic().update(np.array([0.5, 0.5]), t=0, window_start=0, window_end=60, window_index=0)


def test_decision_dict_is_json_ready_and_has_no_raw_samples() -> None:
    d, _ = _logic().update(np.array([0.2, 0.7, 0.1]), t=1.5, window_start=0, window_end=60,
                           window_index=0, label="stress", latency_ms=2.5)
    out = d.to_dict()
    assert out["type"] == "decision" and out["state"] == "stress" and out["label"] == "stress"
    assert set(out) == {"type", "resident", "device", "t", "state", "probabilities", "raw",
                        "model_id", "window_start", "window_end", "window_index", "label",
                        "latency_ms"}


def test_softmax_is_stable_for_large_logits() -> None:
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]]))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0) and np.allclose(p[1], 1 / 3)
    assert np.all(np.isfinite(p))


# -- device events ------------------------------------------------------------------------------
def _events(**cfg: float | bool) -> DeviceEvents:
    return DeviceEvents(DecisionConfig(**cfg), wearer=Wearer("d1", "r1"))  # type: ignore[arg-type]


def test_contact_events_are_edge_triggered() -> None:
    ev = _events()
    kinds = []
    for contact in (True, True, False, False, True, True):
        kinds += [e.kind for e in ev.on_contact(0.0, contact)]
    assert kinds == ["no_contact", "contact_restored"]


def test_first_contact_report_off_is_an_event() -> None:
    assert [e.kind for e in _events().on_contact(0.0, False)] == ["no_contact"]


def test_battery_low_fires_once_and_rearms_above_the_threshold_plus_margin() -> None:
    ev = _events(battery_low_pct=20.0)
    out = []
    for pct in (50, 30, 19, 18, 19, 21, 24, 18, 26, 17, math.nan):
        out += [e.detail["percent"] for e in ev.on_battery(0.0, float(pct))]
    # 19 fires; 21 and 24 are below 25 so not re-armed; 26 re-arms; 17 fires again
    assert out == [19.0, 17.0]


def test_link_events_skip_the_first_connection() -> None:
    ev = _events()
    kinds = []
    for connected in (True, False, False, True, True, False):
        kinds += [e.kind for e in ev.on_link(0.0, connected, "timeout")]
    assert kinds == ["disconnected", "reconnected", "disconnected"]


def test_gap_event_counts_lost_packets() -> None:
    ev = _events()
    assert ev.on_gap(0.0, "bvp", 0) == []
    (e,) = ev.on_gap(1.0, "bvp", 3)
    assert e.kind == "data_gap" and e.detail == {"sensor": "bvp", "lost_packets": 3}


def test_invalid_window_events_report_reason_changes_only() -> None:
    ev = _events()
    seq = [(True, None), (False, "gap"), (False, "gap"), (False, "flat"), (True, None), (True, None)]
    out = []
    for valid, reason in seq:
        out += [(e.kind, e.detail.get("reason")) for e in ev.on_window(0.0, valid, reason)]
    assert out == [("invalid_windows", "gap"), ("invalid_windows", "flat"), ("valid_windows", None)]


def test_invalid_window_events_can_be_disabled() -> None:
    assert _events(invalid_events=False).on_window(0.0, False, "gap") == []
