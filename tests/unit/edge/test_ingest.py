"""edge.ingest: the device's HELLO and its wearer have one owner, the device's ingest."""

from __future__ import annotations

import time

import numpy as np

from edge.config import DecisionConfig
from edge.decisions import DecisionLogic
from edge.ingest import DeviceIngest
from edge.sources.base import SourceItem
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Event,
    EventKind,
    Hello,
    SampleFormat,
    Samples,
    SensorInfo,
)
from tests.fakes.runs import toy_contract

BVP = SensorInfo(1, "bvp", "a.u.", 16.0, 1, SampleFormat.INT16, 0.1)
EDA = SensorInfo(2, "eda", "uS", 4.0, 1, SampleFormat.UINT16, 0.001)
ACC = SensorInfo(3, "acc", "g", 8.0, 3, SampleFormat.INT16, 1 / 4096)
RESIDENTS = {"WE-0001": "room-7"}


def _ingest() -> DeviceIngest:
    return DeviceIngest(
        "AA:BB:CC:DD:EE:01", toy_contract(), DecisionConfig(battery_low_pct=15.0),
        resolve_resident=lambda key, device_id: RESIDENTS.get(device_id or "", key),
        load_calibration=lambda resident: None, save_calibration=lambda resident, cal: None,
    )


def _item(msg: object) -> SourceItem:
    return SourceItem("AA:BB:CC:DD:EE:01", time.monotonic(), msg)


def test_samples_that_disagree_with_the_hello_are_counted_not_read() -> None:
    ingest = _ingest()
    ingest.handle(_item(Hello("WE-0001", "fw", PROTOCOL_VERSION, (BVP, EDA, ACC))))
    ingest.handle(_item(Samples(1, 0, 0, np.zeros((16, 1), np.int16))))  # as announced
    ingest.handle(_item(Samples(1, 1, 1_000_000, np.zeros((16, 2), np.int16))))  # 2 channels
    ingest.handle(_item(Samples(2, 0, 0, np.zeros((4, 1), np.float32))))  # float, not uint16
    assert ingest.counters["samples"] == 16
    assert ingest.counters["samples_format_mismatch"] == 16 + 4
    # a rejected packet is not taken as a received sequence number
    assert ingest.seq.counts(2).received == 0


def test_the_hello_names_the_resident_every_record_of_the_device_carries() -> None:
    ingest = _ingest()
    logic = DecisionLogic(("baseline", "stress", "amusement"), DecisionConfig(),
                          wearer=ingest.wearer, model_id="m")
    assert ingest.resident == "AA:BB:CC:DD:EE:01"  # until the device says who it is
    ingest.handle(_item(Hello("WE-0001", "fw", PROTOCOL_VERSION, (BVP, EDA, ACC))))
    assert ingest.resident == "room-7"
    out = ingest.handle(_item(Event(EventKind.BATTERY, 0, 0, 5)))
    assert [(e.kind, e.resident, e.device) for e in out.events] == [
        ("battery_low", "room-7", "AA:BB:CC:DD:EE:01")]
    decision, _ = logic.update(np.array([0.8, 0.1, 0.1]), t=0.0, window_start=0.0,
                               window_end=4.0, window_index=0)
    assert (decision.resident, decision.device) == ("room-7", "AA:BB:CC:DD:EE:01")


# -- a heart-rate strap: RR beats, contact, the model chosen at HELLO -------------------------
def test_a_strap_through_the_translator_gives_rr_windows_with_derived_values() -> None:
    from collections import Counter

    from edge.sources.ble.translate import StandardProfileTranslator
    from tests.fakes.hr import strap_values, toy_hr_contract

    contract = toy_hr_contract()
    chosen: list[object] = []

    def select(hello: Hello) -> object:
        chosen.append([s.kind for s in hello.sensors])
        return contract if "rr" in chosen[-1] else None  # a heart rate alone fits nothing

    ingest = DeviceIngest(
        "C0:FF:EE:00:00:01", None, DecisionConfig(),
        resolve_resident=lambda key, device_id: key,
        load_calibration=lambda resident: None, save_calibration=lambda resident, cal: None,
        select_contract=select,  # type: ignore[arg-type]
    )
    tr = StandardProfileTranslator("C0:FF:EE:00:00:01", heart_rate=True, thermometer=False)
    t0 = 1000.0
    for msg in tr.hello(round(t0 * 1e6)):
        ingest.handle(_item(msg))
    assert ingest.contract is None and ingest.state_note == "no model fits this device"
    windows = []
    # 90 s of strap: contact lost from 60 s to 75 s (no RR then, contact flag off)
    for t, value, _ in strap_values(90.0, contact_losses=((60.0, 75.0),)):
        for msg in tr.heart_rate_measurement(value, round((t0 + t) * 1e6)):
            windows += ingest.handle(_item(msg)).windows
    windows += ingest.flush().windows
    assert chosen == [["hr"], ["hr", "rr"]]  # the first RR intervals re-announced the sensors
    assert ingest.contract is contract and ingest.calibration is not None  # enrolled: 20 s
    reasons = Counter(w.window.reason.value if w.window.reason else "valid" for w in windows)
    assert reasons["valid"] >= 15 and reasons["no_contact"] >= 3, reasons
    valid = [w.window for w in windows if w.window.valid]
    assert all(90 < w.derived["hr_bpm"] < 130 and w.derived["rmssd_ms"] > 0 for w in valid)
    assert all(w.data["rr"].shape == (1, 32) for w in valid)
    assert ingest.counters["samples"] > 100 and ingest.counters["hello_no_model_fits"] == 1


# -- packets held for the assembler: the same windows, cut by the same packets ----------------
def _play(wearable: object, ingest: DeviceIngest) -> list[tuple[object, ...]]:
    """Every window the ingest cuts from the wearable's whole stream, with the stamp of the
    packet that completed it."""
    out = []
    for em in wearable.timeline():  # type: ignore[attr-defined]
        if em.message is None:
            continue
        res = ingest.handle(SourceItem(ingest.key, 1000.0 + em.t, em.message))
        out += [(rw.completed_at, rw.window) for rw in res.windows]
    out += [(None, rw.window) for rw in ingest.flush().windows]
    return out


def test_held_packets_give_the_windows_packet_by_packet_pushing_gives(monkeypatch) -> None:
    import edge.ingest as ingest_module
    from firmware_bridge.sim import Faults, SimulatedWearable
    from firmware_bridge.sim.synthetic import synthetic_recording

    recording = synthetic_recording(200.0, seed=2)
    faults = Faults(seed=4, drop=0.02, duplicate=0.02, reorder=0.02, contact_lost_at_s=120.0,
                    contact_lost_s=10.0, clock_jump_at_s=150.0, clock_jump_us=-40_000_000)
    runs = []
    taps = []
    for held in (ingest_module.MAX_HELD_PACKETS, 1):  # 1: every packet handed over at once
        monkeypatch.setattr(ingest_module, "MAX_HELD_PACKETS", held)
        wearable = SimulatedWearable(recording, device_id="WE-0001", faults=faults,
                                     modalities=("bvp", "eda", "acc", "temp"))
        ingest = _ingest()
        seen: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

        def tap(info: SensorInfo, t: np.ndarray, raw: np.ndarray,
                seen: dict[int, list[tuple[np.ndarray, np.ndarray]]] = seen) -> None:
            seen.setdefault(info.sensor_id, []).append((t.copy(), raw.copy()))

        ingest.raw_taps.append(tap)
        runs.append(_play(wearable, ingest))
        taps.append({sid: (np.concatenate([c[0] for c in chunks]),
                           np.concatenate([c[1] for c in chunks]))
                     for sid, chunks in seen.items()})
    held_run, each_run = runs
    assert len(each_run) > 30 and any(not w.valid for _, w in each_run)
    assert ingest.counters["clock_regressions"] == 1  # two sessions
    assert [(c, w.index, w.start, w.end, w.valid, w.reason) for c, w in held_run] == [
        (c, w.index, w.start, w.end, w.valid, w.reason) for c, w in each_run]
    for (_, a), (_, b) in zip(held_run, each_run, strict=True):
        assert a.data.keys() == b.data.keys()
        for name in a.data:
            np.testing.assert_array_equal(a.data[name], b.data[name])
    # the raw taps see every accepted sample once, in order, whatever the chunking
    assert taps[0].keys() == taps[1].keys()
    for sid in taps[0]:
        np.testing.assert_array_equal(taps[0][sid][0], taps[1][sid][0])
        np.testing.assert_array_equal(taps[0][sid][1], taps[1][sid][1])
