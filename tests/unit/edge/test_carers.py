"""edge.carers: alerts over the records, the wearables' status to the sinks, the hub's faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.carers import CarerOutputs, hub_event
from edge.config import DaemonConfig, apply_overrides, load_config
from edge.decisions import DecisionLogic, Event, Wearer
from edge.device_status import DeviceStatus, WearableStatus
from edge.sources.base import ConnectionEvent, SourceItem
from firmware_bridge.protocol import Event as DeviceEvent
from firmware_bridge.protocol import EventKind, Hello

CLASSES = ("baseline", "stress", "amusement")
T0 = 1_700_000_000.0


@dataclass
class Clock:
    t: float = T0
    m: float = 1000.0

    def wall(self) -> float:
        return self.t

    def mono(self) -> float:
        return self.m

    def advance(self, s: float) -> None:
        self.t += s
        self.m += s


def _cfg(**overrides: Any) -> DaemonConfig:
    return apply_overrides(load_config(None), overrides)


def _alerts(records: list[Any]) -> list[tuple[str, str]]:
    return [(r.kind, r.detail["rule"]) for r in records
            if isinstance(r, Event) and r.kind in ("alert", "alert_cleared")]


def _device(resident: str = "anna") -> Any:
    return SimpleNamespace(status=WearableStatus(),
                           ingest=SimpleNamespace(resident=resident,
                                                  time=SimpleNamespace(to_wall=lambda s: T0 + s)))


def test_one_stress_episode_gives_one_alert_then_its_end_clears_it() -> None:
    """The decision logic decides states; the alert rules alone judge how long stress lasts:
    25 minutes of stress (inside the 30 min cooldown) is one notification, not two."""
    cfg = _cfg()
    carers = CarerOutputs(cfg, source_kind="sim", live=False)
    logic = DecisionLogic(CLASSES, cfg.decisions, wearer=Wearer("dev-1", "anna"), model_id="m")
    records: list[Any] = []
    probs = [(0.05, 0.9, 0.05)] * 300 + [(0.9, 0.05, 0.05)] * 20  # 5 s hop: 25 min, then calm
    for i, p in enumerate(probs):
        end = 60.0 + 5.0 * i
        d, events = logic.update(np.array(p), t=T0 + end, window_start=end - 60.0,
                                 window_end=end, window_index=i)
        for r in (d, *events):
            records.append(r)
            records.extend(carers.on_record(r))
    assert _alerts(records) == [("alert", "sustained_stress"), ("alert_cleared", "sustained_stress")]
    raised = next(r for r in records if isinstance(r, Event) and r.kind == "alert")
    assert raised.t == T0 + 60.0 + 600.0  # ten minutes after the first stress decision
    assert raised.detail["message"] == "anna has been stressed for 10 min"
    assert not any(isinstance(r, Event) and r.kind == "sustained_stress" for r in records)


def test_a_failing_sink_makes_the_hub_unhealthy_after_the_threshold() -> None:
    clock = Clock()
    carers = CarerOutputs(_cfg(), source_kind="ble", live=True, wall=clock.wall, mono=clock.mono)
    fault = hub_event("sink_fault", {"sink": "mqtt", "error": "nothing accepts connections"},
                      clock.t)
    assert carers.on_record(fault) == []
    assert carers.hub_faults == {"mqtt": "nothing accepts connections"}
    clock.advance(4 * 60)
    assert carers.tick() == []  # sinks retry for minutes before a person needs to know
    clock.advance(61)
    raised = carers.tick()
    assert _alerts(raised) == [("alert", "hub_unhealthy")] and raised[0].resident == "hub"
    cleared = carers.on_record(hub_event("sink_recovered", {"sink": "mqtt"}, clock.t))
    assert _alerts(cleared) == [("alert_cleared", "hub_unhealthy")]
    assert carers.hub_faults == {}


def test_a_silent_source_is_lost_while_a_link_is_up_and_restored_by_its_next_item() -> None:
    clock = Clock()
    carers = CarerOutputs(_cfg(**{"alerts.hub_unhealthy_min": 0}), source_kind="ble",
                          live=True, wall=clock.wall, mono=clock.mono)
    dev = _device()
    carers.on_item(SourceItem("aa", clock.m, ConnectionEvent(True)), dev)
    clock.advance(30)
    assert carers.tick() == []
    clock.advance(31)
    lost = carers.tick()
    assert [e.kind for e in lost] == ["source_lost"] and lost[0].detail["source"] == "ble"
    assert _alerts(carers.on_record(lost[0])) == [("alert", "hub_unhealthy")]
    clock.advance(120)
    assert carers.tick() == []  # reported once per silence
    back = carers.on_item(SourceItem("aa", clock.m, ConnectionEvent(False, "link lost")), dev)
    assert [e.kind for e in back] == ["source_restored"]
    assert _alerts(carers.on_record(back[0])) == [("alert_cleared", "hub_unhealthy")]
    # every link down: a wearer out of reach, its own `disconnected` rule, not the hub's problem
    clock.advance(600)
    assert carers.tick() == []


def test_a_sped_up_run_judges_wearers_in_record_time() -> None:
    """At 100x, ten minutes without contact pass in six wall seconds: the rules must follow
    the records' (virtual) time, not the wall clock."""
    clock = Clock()
    carers = CarerOutputs(_cfg(speed=100.0), source_kind="sim", live=False, wall=clock.wall,
                          mono=clock.mono)
    carers.on_record(Event("anna", "sim-0", T0, "no_contact"))
    assert carers.tick() == []
    carers.on_record(Event("anna", "sim-0", T0 + 601.0, "data_gap", {"lost_packets": 1}))
    assert _alerts(carers.tick()) == [("alert", "no_contact")]


@dataclass
class StatusSink:
    got: list[DeviceStatus] = field(default_factory=list)

    def device_status(self, status: DeviceStatus) -> None:
        self.got.append(status)


def test_battery_goes_to_the_sinks_that_take_it_and_to_the_battery_rule() -> None:
    carers = CarerOutputs(_cfg(), source_kind="ble", live=True)
    sink = StatusSink()
    carers.attach([sink, SimpleNamespace(name="sqlite")])  # type: ignore[list-item]
    dev = _device()
    assert carers.on_item(SourceItem("aa", 0.0, Hello("w", "1", 1, ())), dev) == []
    out = carers.on_item(SourceItem("aa", 0.0, DeviceEvent(EventKind.BATTERY, 0, 5_000_000,
                                                           9)), dev)
    assert sink.got == [DeviceStatus("anna", "aa", T0 + 5.0, battery_pct=9.0)]
    assert _alerts(out) == [("alert", "battery_low")] and out[0].detail["percent"] == 9.0
