"""Decision logic: EMA smoothing, hysteresis, minimum dwell and the events it raises."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import DecisionConfig
from edge.decisions import (
    BATTERY_REARM_PCT,
    RESET_AFTER_S,
    DecisionLogic,
    DeviceEvents,
    Wearer,
    softmax,
)
from tests.strategies import examples

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
    assert set(out) == {"type", "resident", "device", "t", "state", "probabilities", "p_instant",
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


# -- the EMA reset: a clock going back, the threshold on both sides (issue 18) ------------------
def _at(logic: DecisionLogic, p: tuple[float, float, float], end: float) -> dict[str, float]:
    d, _ = logic.update(np.array(p), t=1e9 + end, window_start=end - 60.0, window_end=end,
                        window_index=0)
    return d.probabilities


def test_regression_ema_restarts_when_the_device_clock_goes_back() -> None:
    # A wearable that reboots starts its clock again near 0: the windows after it belong to a
    # new session, and calm from before the reboot must not dilute what it sees now.
    logic = _logic(ema_alpha=0.3)
    for end in np.arange(3600.0, 3700.0, HOP):
        _at(logic, (0.95, 0.05, 0.0), end)
    assert _at(logic, (0.1, 0.9, 0.0), 60.0)["stress"] == pytest.approx(0.9)
    # and the new session smooths from there, not from the old one
    assert _at(logic, (0.1, 0.9, 0.0), 65.0)["stress"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("gap", "restarts"),
    # strictly longer than reset_after_s restarts; up to it (even a float step short) smooths
    [(RESET_AFTER_S - 1.0, False), (RESET_AFTER_S, False), (RESET_AFTER_S + 1.0, True),
     (1.5 * RESET_AFTER_S, True), (HOP, False)],
)
def test_ema_reset_threshold_on_both_sides(gap: float, restarts: bool) -> None:
    logic = _logic(ema_alpha=0.3)
    _at(logic, (1.0, 0.0, 0.0), 1000.0)
    got = _at(logic, (0.0, 1.0, 0.0), 1000.0 + gap)["stress"]
    assert got == pytest.approx(1.0 if restarts else 0.3)


def test_ema_weighs_the_newest_window_by_alpha() -> None:
    # asymmetric alpha: swapped weights would give 0.8 here, not 0.2
    logic = _logic(ema_alpha=0.2)
    _at(logic, (1.0, 0.0, 0.0), 60.0)
    assert _at(logic, (0.0, 1.0, 0.0), 65.0) == pytest.approx(
        {"baseline": 0.8, "stress": 0.2, "amusement": 0.0})


# -- a reference state machine written from the documented rules ---------------------------------
@dataclass
class _Reference:
    """edge.decisions' module docstring and DecisionConfig's comments, restated plainly:
    EMA with ``alpha`` on the newest window, restarted after more than ``reset_after_s`` of data
    time or when the clock goes back; a challenger replaces the state when its smoothed value
    reaches ``enter``, leads the state by ``margin`` and the state is ``dwell`` old; battery
    low fires below the threshold once and re-arms at threshold + 5 points."""

    alpha: float
    margin: float
    enter: float
    dwell: float
    reset_after: float
    battery_low: float
    smoothed: list[float] | None = None
    last: float | None = None
    state: int | None = None
    since: float = 0.0
    armed: bool = True
    changes: list[tuple[int | None, int, float | None]] = field(default_factory=list)

    def window(self, p: list[float], end: float) -> None:
        if self.smoothed is None or self.last is None or end < self.last or (
                end - self.last > self.reset_after):
            self.smoothed = list(p)
        else:
            self.smoothed = [self.alpha * a + (1 - self.alpha) * b
                             for a, b in zip(p, self.smoothed, strict=True)]
        self.last = end
        top = max(range(len(p)), key=lambda i: (self.smoothed[i], -i))  # first of equals
        if self.state is None:
            self.changes.append((None, top, None))
            self.state, self.since = top, end
        elif top != self.state and self.smoothed[top] >= self.enter and (
                self.smoothed[top] - self.smoothed[self.state] >= self.margin) and (
                end - self.since >= self.dwell):
            self.changes.append((self.state, top, round(end - self.since, 1)))
            self.state, self.since = top, end

    def battery(self, pct: float) -> bool:
        if self.armed and pct < self.battery_low:
            self.armed = False
            return True
        if pct >= self.battery_low + 5.0:
            self.armed = True
        return False


_probs = st.lists(st.integers(0, 20), min_size=3, max_size=3).filter(any).map(
    lambda v: [x / sum(v) for x in v])
# steps of data time between windows: the usual hop, the reset threshold and either side of
# it, long gaps, and the clock going back (a reboot)
_steps = st.one_of(st.just(HOP), st.sampled_from([RESET_AFTER_S - 5, RESET_AFTER_S,
                                                   RESET_AFTER_S + 5, 400.0, -300.0, 0.0]),
                   st.floats(-50.0, 200.0, allow_nan=False))


@examples(300)
@given(alpha=st.sampled_from([0.1, 0.3, 0.7, 1.0]), margin=st.sampled_from([0.0, 0.1, 0.3]),
       enter=st.sampled_from([0.0, 0.4, 0.6]), dwell=st.sampled_from([0.0, 10.0, 30.0]),
       windows=st.lists(st.tuples(_probs, _steps), min_size=1, max_size=40))
def test_decisions_follow_the_reference_state_machine(
    alpha: float, margin: float, enter: float, dwell: float,
    windows: list[tuple[list[float], float]],
) -> None:
    logic = _logic(ema_alpha=alpha, switch_margin=margin, enter_threshold=enter,
                   min_dwell_s=dwell)
    ref = _Reference(alpha, margin, enter, dwell, RESET_AFTER_S, 15.0)
    end = 1000.0
    got_changes = []
    for i, (p, step) in enumerate(windows):
        end += step
        ref.window(p, end)
        d, events = logic.update(np.array(p), t=end, window_start=end - 60.0, window_end=end,
                                 window_index=i)
        assert ref.smoothed is not None and ref.state is not None
        assert list(d.probabilities.values()) == pytest.approx(ref.smoothed, abs=1e-12)
        assert d.state == CLASSES[ref.state]
        got_changes += [(e.detail["from"], e.detail["to"], e.detail["held_s"]) for e in events]
    want = [(None if a is None else CLASSES[a], CLASSES[b], h) for a, b, h in ref.changes]
    assert got_changes == want


@examples(200)
@given(low=st.sampled_from([0.0, 15.0, 20.0, 97.5]),
       readings=st.lists(st.one_of(st.integers(-1, 101).map(float),
                                   st.sampled_from([14.999, 15.0, 19.999, 20.0, 24.999, 25.0])),
                         max_size=40))
def test_battery_events_follow_the_reference(low: float, readings: list[float]) -> None:
    assert BATTERY_REARM_PCT == 5.0  # the reference states the documented 5 points
    ev = _events(battery_low_pct=low)
    ref = _Reference(0.3, 0.1, 0.5, 30.0, RESET_AFTER_S, low)
    for pct in readings:
        got = ev.on_battery(0.0, pct)
        assert [e.detail["percent"] for e in got] == ([round(pct, 1)] if ref.battery(pct) else [])


# -- what a record carries, exactly (found by mutation testing: benchmarks/mutation.py) --------
def test_decision_and_event_records_carry_every_field_rounded() -> None:
    logic = DecisionLogic(CLASSES, DecisionConfig(), wearer=Wearer("dev-7", "anna"),
                          model_id="student-3")
    d, events = logic.update(np.array([[0.123456789, 0.8, 0.076543211]]), t=1700000000.1234567,
                             window_start=12.3456789, window_end=72.3456789, window_index=4,
                             latency_ms=3.14159, derived={"hr_bpm": 71.26, "rmssd_ms": 40.04})
    assert d.to_dict() == {
        "type": "decision", "resident": "anna", "device": "dev-7", "t": 1700000000.123,
        "state": "stress",
        "probabilities": {"baseline": 0.1235, "stress": 0.8, "amusement": 0.0765},
        "p_instant": {"baseline": 0.1235, "stress": 0.8, "amusement": 0.0765},
        "model_id": "student-3", "window_start": 12.346, "window_end": 72.346,
        "window_index": 4, "latency_ms": 3.142, "derived": {"hr_bpm": 71.3, "rmssd_ms": 40.0},
    }
    (e,) = events
    assert e.to_dict() == {
        "type": "event", "resident": "anna", "device": "dev-7", "t": 1700000000.123,
        "kind": "state_change",
        "detail": {"from": None, "to": "stress", "held_s": None, "p": 0.8},
    }
    # a switch carries the new state's smoothed probability to 4 places and the time held
    logic.cfg = DecisionConfig(ema_alpha=1.0, min_dwell_s=0.0)
    _, events = logic.update(np.array([0.87654321, 0.1, 0.02345679]), t=1700000042.0,
                             window_start=20.0, window_end=80.04, window_index=5)
    (e,) = events
    assert (e.resident, e.device, e.t) == ("anna", "dev-7", 1700000042.0)
    assert e.detail == {"from": "stress", "to": "baseline", "held_s": 7.7, "p": 0.8765}


def test_the_newest_window_is_smoothed_in_float64_whatever_it_arrives_as() -> None:
    logic = _logic(ema_alpha=0.3)
    p0 = np.array([0.2, 0.7, 0.1], np.float32)
    p1 = np.array([0.6, 0.3, 0.1], np.float32)
    logic.update(p0, t=0.0, window_start=0.0, window_end=60.0, window_index=0)
    d, _ = logic.update(p1, t=5.0, window_start=5.0, window_end=65.0, window_index=1)
    want = 0.3 * p1.astype(np.float64) + 0.7 * p0.astype(np.float64)
    assert list(d.probabilities.values()) == pytest.approx(want.tolist(), abs=1e-15)


def test_softmax_of_one_row_and_of_float32_logits() -> None:
    p = softmax(np.array([2.0, 1.0, 0.0], np.float32))  # (K,): one window
    assert p.dtype == np.float64 and p.shape == (3,)
    e = np.exp([2.0, 1.0, 0.0])
    assert p == pytest.approx(e / e.sum(), abs=1e-15)


def test_every_device_event_names_the_wearer_and_the_time() -> None:
    ev = DeviceEvents(DecisionConfig(battery_low_pct=20.0), wearer=Wearer("dev-7", "anna"))
    got = [*ev.on_contact(1.0, False), *ev.on_contact(2.0, True), *ev.on_battery(3.0, 12.34),
           *ev.on_link(4.0, True), *ev.on_link(5.0, False), *ev.on_link(6.0, True),
           *ev.on_link(7.0, False, "timeout"), *ev.on_gap(8.0, "acc", 1),
           *ev.on_window(9.0, False, None), *ev.on_window(10.0, True, None)]
    assert [(e.resident, e.device, e.t, e.kind, e.detail) for e in got] == [
        ("anna", "dev-7", 1.0, "no_contact", {}),
        ("anna", "dev-7", 2.0, "contact_restored", {}),
        ("anna", "dev-7", 3.0, "battery_low", {"percent": 12.3}),
        ("anna", "dev-7", 5.0, "disconnected", {}),  # no reason given: no reason key
        ("anna", "dev-7", 6.0, "reconnected", {}),
        ("anna", "dev-7", 7.0, "disconnected", {"reason": "timeout"}),
        ("anna", "dev-7", 8.0, "data_gap", {"sensor": "acc", "lost_packets": 1}),
        ("anna", "dev-7", 9.0, "invalid_windows", {"reason": "unknown"}),
        ("anna", "dev-7", 10.0, "valid_windows", {}),
    ]


@pytest.mark.parametrize("low", [15.0, 20.0])
def test_battery_rearms_exactly_at_threshold_plus_margin(low: float) -> None:
    # the reference property test draws these boundaries only sometimes; here they always are
    ev = _events(battery_low_pct=low)
    fired = []
    for pct in (low, low - 0.01, low + BATTERY_REARM_PCT - 0.01, low - 1.0,
                low + BATTERY_REARM_PCT, low - 1.0):
        fired += [pct for _ in ev.on_battery(0.0, pct)]
    # at the threshold itself: no warning; just under the re-arm level: still disarmed;
    # at the re-arm level: armed again
    assert fired == [low - 0.01, low - 1.0]


def test_a_challenger_exactly_at_the_threshold_and_the_margin_switches() -> None:
    # "reaches enter_threshold" and "beats by switch_margin" include equality; the values are
    # exact in binary so the comparison sees them as equal
    logic = _logic(ema_alpha=1.0, min_dwell_s=0.0, enter_threshold=0.625, switch_margin=0.25)
    states, _ = _feed(logic, [(0.9, 0.1, 0.0), (0.375, 0.625, 0.0)])
    assert states == ["baseline", "stress"]
    # a hair under either and it holds
    for p in [(0.375, 0.6249, 0.0001), (0.3751, 0.6249, 0.0)]:
        logic = _logic(ema_alpha=1.0, min_dwell_s=0.0, enter_threshold=0.625, switch_margin=0.25)
        states, _ = _feed(logic, [(0.9, 0.1, 0.0), p])
        assert states == ["baseline", "baseline"], p
