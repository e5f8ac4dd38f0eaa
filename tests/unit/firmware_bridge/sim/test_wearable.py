"""firmware_bridge.sim.wearable: faithful playback and every fault switch.

The recording is a small deterministic synthetic one built in-process
(:func:`firmware_bridge.sim.synthetic.synthetic_recording`, an ``core.recording.Recording``).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest

from firmware_bridge.errors import SimulatorError
from firmware_bridge.protocol import Event, EventKind, Hello, Message, Samples, TimeSync
from firmware_bridge.sim import Faults, SimulatedWearable
from firmware_bridge.timesync import ClockMapper, SeqStatus, SequenceTracker
from tests.fakes.playback import by_sensor, check_every_sample_in_order

INF = math.inf


async def _collect(w: SimulatedWearable) -> list[tuple[float, Message]]:
    return [item async for item in w.messages()]


async def test_plays_every_sample_in_order_without_faults(rec) -> None:  # type: ignore[no-untyped-def]
    w = SimulatedWearable(rec, speed=INF)
    items = await _collect(w)
    msgs = [m for _, m in items]
    assert msgs[0] == w.hello
    kinds = {s.kind for s in w.hello.sensors}
    assert kinds == {"bvp", "eda", "temp", "acc"}
    check_every_sample_in_order(w, rec, msgs)
    assert sum(isinstance(m, Hello) for m in msgs) == 4  # t = 0, 10, 20, 30
    assert sum(isinstance(m, TimeSync) for m in msgs) == 8  # every 5 s
    hub = [t for t, _ in items]
    assert hub == sorted(hub) and w.hub_t0 is not None
    assert set(w.decoder_stats) <= {"bytes", "frames"}
    # physical values survive the wire within half a step
    bvp = next(s for s in w.hello.sensors if s.kind == "bvp")
    phys = bvp.to_physical(np.concatenate([p.raw for p in by_sensor(msgs)[bvp.sensor_id]]))
    np.testing.assert_allclose(phys, rec.signals["bvp"].values, atol=bvp.scale / 2 + 1e-4)


async def test_drop_duplicate_reorder_are_seen_by_the_sequence_tracker(rec) -> None:  # type: ignore[no-untyped-def]
    w = SimulatedWearable(rec, speed=INF, faults=Faults(drop=0.05, duplicate=0.05, reorder=0.05, seed=11))
    msgs = [m for _, m in await _collect(w)]
    tracker = SequenceTracker()
    delivered: dict[int, set[int]] = defaultdict(set)
    for m in msgs:
        if isinstance(m, Samples):
            status = tracker.observe(m.sensor_id, m.seq)
            if status is not SeqStatus.DUPLICATE:
                assert m.seq not in delivered[m.sensor_id]
                delivered[m.sensor_id].add(m.seq)
    totals = tracker.totals()
    assert w.stats["dropped_samples"] > 0 and w.stats["duplicated_samples"] > 0
    assert totals["duplicated"] == w.stats["duplicated_samples"]
    assert totals["reordered"] > 0
    clean = by_sensor([m for _, m in await _collect(SimulatedWearable(rec, speed=INF))])
    n_expected = {s.sensor_id: len(clean[s.sensor_id]) for s in w.hello.sensors}
    missing = sum(n_expected[k] - len(v) for k, v in delivered.items())
    assert missing == w.stats["dropped_samples"]
    # a lost packet at a sensor's very end is never seen as a gap, so <=
    assert totals["lost"] <= w.stats["dropped_samples"]
    assert totals["lost"] >= w.stats["dropped_samples"] - len(n_expected)


async def test_flipped_bytes_never_reach_the_hub(rec) -> None:  # type: ignore[no-untyped-def]
    clean = {(m.sensor_id, m.seq): m for _, m in await _collect(SimulatedWearable(rec, speed=INF))
             if isinstance(m, Samples)}  # fmt: skip
    w = SimulatedWearable(rec, speed=INF, faults=Faults(flip=0.2, seed=5))
    got = [m for _, m in await _collect(w) if isinstance(m, Samples)]
    assert w.stats["flipped"] > 20
    rejected = sum(w.decoder_stats[r] for r in ("crc", "framing", "truncated", "payload",
                                                "unknown_type", "version"))  # fmt: skip
    assert rejected >= w.stats["flipped"]  # a flip to 0x00 splits a frame: two rejections
    assert len(got) <= len(clean) - w.stats["flipped"] + 10
    for m in got:
        assert m == clean[(m.sensor_id, m.seq)]


async def test_clock_drift_and_jump_are_recovered_from_time_sync(rec) -> None:  # type: ignore[no-untyped-def]
    w = SimulatedWearable(rec, speed=INF, time_sync_period_s=1.0,
                          faults=Faults(clock_drift_ppm=80.0))  # fmt: skip
    cm = ClockMapper()
    for t_hub, m in await _collect(w):
        if isinstance(m, TimeSync):
            assert m.t_hub_us == pytest.approx(t_hub * 1e6, abs=1)
            cm.observe(m, t_hub)
    assert cm.drift_ppm == pytest.approx(80.0, abs=0.5)  # device runs fast: positive
    assert w.hub_t0 is not None
    assert cm.to_hub(w.device_time_us(30.0)) == pytest.approx(w.hub_t0 + 30.0, abs=1e-4)

    w2 = SimulatedWearable(rec, speed=INF, time_sync_period_s=1.0,
                           faults=Faults(clock_jump_at_s=20.0, clock_jump_us=-5_000_000))  # fmt: skip
    cm2 = ClockMapper()
    for t_hub, m in await _collect(w2):
        if isinstance(m, TimeSync):
            cm2.observe(m, t_hub)
    assert cm2.stats["jumps"] == 1
    assert w2.hub_t0 is not None
    assert cm2.to_hub(w2.device_time_us(35.0)) == pytest.approx(w2.hub_t0 + 35.0, abs=1e-4)


async def test_disconnect_stall_battery_and_contact(rec) -> None:  # type: ignore[no-untyped-def]
    faults = Faults(disconnect_at_s=(12.0,), disconnect_s=3.0, stall_at_s=(25.0,), stall_s=2.0,
                    battery_low_at_s=30.0, contact_lost_at_s=5.0, contact_lost_s=4.0)  # fmt: skip
    w = SimulatedWearable(rec, speed=INF, faults=faults)
    emissions = list(w.timeline())
    events = [e.event for e in emissions]
    assert events.count("disconnect") == 1 and events.count("reconnect") == 1
    i = events.index("reconnect")
    assert emissions[i].t == pytest.approx(15.0) and emissions[i + 1].message == w.hello
    assert w.stats["lost_disconnected_samples"] > 0
    # nothing was sent while the link was down
    assert not [e for e in emissions if e.message is not None and 12.0 <= e.t < 15.0]
    # the stall: nothing between 25 and 27 s, then the backlog at 27 s
    ts = [e.t for e in emissions if e.message is not None]
    assert not [t for t in ts if 25.0 <= t < 27.0]
    assert sum(t == 27.0 for t in ts) >= 8 and w.stats["stalled"] >= 8

    w2 = SimulatedWearable(rec, speed=INF, faults=faults)
    msgs = [m for _, m in await _collect(w2)]
    evs = [m for m in msgs if isinstance(m, Event)]
    assert [e.value for e in evs if e.kind is EventKind.CONTACT] == [0, 1]
    assert [e.value for e in evs if e.kind is EventKind.BATTERY][-1] == 5
    eda = next(s for s in w2.hello.sensors if s.kind == "eda")
    raw = np.concatenate([p.raw for p in by_sensor(msgs)[eda.sensor_id]])[:, 0]
    t = np.arange(len(raw)) / eda.rate_hz
    assert (raw[(t >= 5.0) & (t < 9.0)] == 0).all()  # open electrodes
    assert (raw[t < 5.0] > 0).all()


async def test_loop_forever_continues_seq_and_clock(rec) -> None:  # type: ignore[no-untyped-def]
    short = rec.crop(0.0, 5.0)
    w = SimulatedWearable(short, speed=INF, loop_forever=True)
    out: list[Samples] = []
    async for _, m in w.messages():
        if isinstance(m, Samples) and m.sensor_id == 1:
            out.append(m)
            if len(out) == 60:  # 15 s: three laps of a 5 s recording
                break
    assert [m.seq for m in out] == list(range(60))
    t = [m.t_device_us for m in out]
    assert all(b - a == 250_000 for a, b in itertools.pairwise(t))
    assert np.array_equal(out[0].raw, out[20].raw)  # lap 2 replays the same samples
    assert w.label_at(12.0) == w.label_at(2.0)


def test_labels_are_the_recording_ground_truth(rec) -> None:  # type: ignore[no-untyped-def]
    w = SimulatedWearable(rec, speed=INF)
    codes = rec.labels.values[:, 0]
    t = np.array([0.0, 11.9, 12.1, 20.0, 39.99])
    np.testing.assert_array_equal(w.label_at(t), codes[(t * 700).astype(int)])
    assert w.label_at(0.0) == 1 and w.label_at(15.0) == 2  # baseline, then stress
    with pytest.raises(SimulatorError):
        w.label_at_hub(1.0)  # not started


def test_configuration_errors(rec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SimulatorError):
        Faults(drop=1.5)
    with pytest.raises(SimulatorError):
        SimulatedWearable(rec, speed=0)
    with pytest.raises(SimulatorError, match="no signal 'ecg'"):
        SimulatedWearable(rec, modalities=("ecg",))


# -- a heart-rate strap: beats, not samples ---------------------------------------------------
def test_a_strap_sends_every_beat_once_timed_by_its_first_interval() -> None:
    from core.recording import load_recording
    from firmware_bridge.sim.rr import with_beats
    from firmware_bridge.sim.synthetic import synthetic_recording

    rec = with_beats(synthetic_recording(300.0, seed=2), seed=2)
    beats = rec.beats["rr"]
    w = SimulatedWearable(rec, modalities=(), beats=("rr",), speed=math.inf,
                          faults=Faults(contact_lost_at_s=100.0, contact_lost_s=20.0))
    assert [(s.kind, s.unit) for s in w.hello.sensors] == [("hr", "bpm"), ("rr", "s")]
    rr_id = w.hello.sensors[1].sensor_id
    msgs = [e.message for e in w.timeline() if e.event == "message"]
    packets = [m for m in msgs if isinstance(m, Samples) and m.sensor_id == rr_id]
    got = np.concatenate([p.raw[:, 0] for p in packets]) * w.hello.sensors[1].scale
    firsts = np.array([p.t_device_us for p in packets]) * 1e-6 - 1.0  # t0_device_us = 1 s
    lost = (beats.t_s >= 100.0) & (beats.t_s < 120.0)
    # every beat outside the contact loss, once, in order, at the strap's 1/1024 s
    np.testing.assert_allclose(got, beats.rr_s[~lost][: got.size], atol=1 / 2048)
    assert got.size == (~lost).sum() and [p.seq for p in packets] == list(range(len(packets)))
    # a packet's time is the beat that ends its first interval
    np.testing.assert_allclose(firsts, beats.t_s[np.searchsorted(beats.t_s, firsts - 1e-6)],
                               atol=1e-6)
    contact = [m.value for m in msgs if isinstance(m, Event) and m.kind is EventKind.CONTACT]
    assert contact == [1, 0, 1]  # reported at start, lost, back
    hr = [int(m.raw[0, 0]) for m in msgs if isinstance(m, Samples) and m.sensor_id != rr_id]
    assert 55 < np.median(hr) < 95
    with pytest.raises(SimulatorError, match="no beat series"):
        SimulatedWearable(synthetic_recording(60.0), modalities=(), beats=("rr",))
    assert load_recording  # the demo recordings that carry beats load with it
