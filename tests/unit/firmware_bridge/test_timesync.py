"""firmware_bridge.timesync: clock offset/drift/jumps and sequence-number bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import ClockError
from firmware_bridge.protocol import TimeSync
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from firmware_bridge.sim.wearable import Faults
from firmware_bridge.timesync import ClockMapper, SeqStatus, SequenceTracker


def _pairs(n: int, drift_ppm: float, offset_s: float, jitter_s: float, seed: int = 0):
    """(device µs, hub s) every 5 s of a device clock ``drift_ppm`` fast (slow if < 0)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        t_dev = 3_000_000 + i * 5_000_000  # a pair every 5 s
        hub = offset_s + t_dev * 1e-6 / (1 + drift_ppm * 1e-6) + abs(rng.normal(0, jitter_s))
        yield t_dev, hub


def test_before_any_pair_mapping_is_refused() -> None:
    cm = ClockMapper()
    assert not cm.synced
    with pytest.raises(ClockError):
        cm.to_hub(5)
    with pytest.raises(ClockError):
        _ = cm.offset_s


@pytest.mark.parametrize("drift_ppm", [-80.0, 0.0, 35.0, 100.0])
def test_recovers_offset_and_drift_under_latency_jitter(drift_ppm: float) -> None:
    cm = ClockMapper()
    for d, h in _pairs(60, drift_ppm, 1234.5, 0.003):
        cm.add(d, h)
    assert cm.drift_ppm == pytest.approx(drift_ppm, abs=8.0)
    t = 3_000_000 + 59 * 5_000_000
    truth = 1234.5 + t * 1e-6 / (1 + drift_ppm * 1e-6)
    assert cm.to_hub(t) == pytest.approx(truth, abs=0.006)
    arr = cm.to_hub(np.array([t, t + 1_000_000], dtype=np.uint64))
    assert arr.shape == (2,) and arr[1] - arr[0] == pytest.approx(1.0, abs=1e-3)
    assert cm.stats["jumps"] == 0


def test_a_single_late_pair_is_an_outlier_not_a_jump() -> None:
    cm = ClockMapper()
    pairs = list(_pairs(20, 0.0, 10.0, 0.0))
    for i, (d, h) in enumerate(pairs):
        cm.add(d, h + (3.0 if i == 10 else 0.0))  # a 3 s stall delayed one pair
    assert cm.stats["jumps"] == 0 and cm.stats["outliers"] == 1
    assert cm.to_hub(pairs[-1][0]) == pytest.approx(pairs[-1][1], abs=1e-6)


def test_a_clock_jump_resets_the_fit() -> None:
    cm = ClockMapper()
    pairs = list(_pairs(20, 20.0, 10.0, 0.0))
    for i, (d, h) in enumerate(pairs):
        cm.add(d + (7_000_000 if i >= 10 else 0), h)  # device clock jumps +7 s
    assert cm.stats["jumps"] == 1
    d, h = pairs[-1]
    assert cm.to_hub(d + 7_000_000) == pytest.approx(h, abs=1e-3)


def test_device_clock_going_backwards_is_a_jump() -> None:
    cm = ClockMapper()
    cm.add(10_000_000, 100.0)
    cm.add(15_000_000, 105.0)
    cm.add(1_000_000, 106.0)  # rebooted...
    assert cm.stats["jumps"] == 0  # ...or a late packet: one pair cannot tell
    cm.add(6_000_000, 111.0)  # the second pair of the new clock confirms it
    assert cm.stats["jumps"] == 1 and cm.stats["outliers"] == 0
    assert cm.to_hub(2_000_000) == pytest.approx(107.0)


def test_drift_sign_device_fast_is_positive() -> None:
    # the device counts 1.00008 s per hub second: 80 ppm fast
    cm = ClockMapper()
    for i in range(30):
        t_hub = 50.0 + 5.0 * i
        cm.add(round(7e6 + 5e6 * i * (1 + 80e-6)), t_hub)
    assert cm.drift_ppm == pytest.approx(80.0, abs=0.01)
    assert cm.to_hub(round(7e6 + 100e6 * (1 + 80e-6))) == pytest.approx(150.0, abs=1e-6)
    slow = ClockMapper()
    for i in range(30):
        slow.add(round(5e6 * i * (1 - 30e-6)), 5.0 * i)
    assert slow.drift_ppm == pytest.approx(-30.0, abs=0.01)


def test_a_reordered_or_repeated_pair_is_no_jump() -> None:
    pairs = list(_pairs(30, 80.0, 10.0, 0.0))
    two_way = ClockMapper()  # the pair keeps its own hub time: it still fits
    one_way = ClockMapper()  # the hub stamps arrival: the held pair looks 5 s late
    order = [*range(12), 13, 12, 14, 14, *range(15, 30)]  # 12 held back; 14 sent twice
    for i, k in enumerate(order):
        two_way.add(*pairs[k])
        arrival = pairs[max(order[: i + 1])][1] + 0.004  # with the newest pair sent so far
        one_way.add(pairs[k][0], arrival)
    assert two_way.stats["jumps"] == 0 and one_way.stats["jumps"] == 0
    assert two_way.stats["reordered"] == 1 and two_way.stats["duplicates"] == 1
    assert one_way.stats["outliers"] == 1
    for cm in (two_way, one_way):
        assert cm.drift_ppm == pytest.approx(80.0, abs=1.0)


@pytest.mark.parametrize("jump_s", [None, 2.0])
def test_an_hour_of_a_fast_lossy_device_gives_plus_drift_and_only_real_jumps(
    jump_s: float | None,
) -> None:
    """The simulator's device 80 ppm fast for an hour over a link that drops, duplicates,
    reorders and stalls packets; TIME_SYNC seen two-way (echoed hub time) and one-way
    (stamped on arrival with 1-40 ms of latency jitter). With a configured clock jump, that
    one jump is found; without, none."""
    faults = Faults(seed=4, clock_drift_ppm=80.0, drop=0.02, duplicate=0.05, reorder=0.05,
                    stall_at_s=(600.0, 1803.0, 2400.0), stall_s=2.0,
                    clock_jump_at_s=None if jump_s is None else 1200.0,
                    clock_jump_us=0 if jump_s is None else round(jump_s * 1e6))  # fmt: skip
    w = SimulatedWearable(synthetic_recording(3600.0, seed=2), speed=float("inf"),
                          modalities=("eda",), faults=faults)  # fmt: skip
    w.hub_t0 = 1000.0  # hub clock = 1000 s + recording time (0 would mean "one-way")
    rng = np.random.default_rng(1)
    two_way, one_way = ClockMapper(), ClockMapper()
    syncs = 0
    for em in w.timeline():
        if isinstance(em.message, TimeSync):
            syncs += 1
            two_way.observe(em.message, received_at=-1.0)  # ignored: two-way
            arrival = 1000.0 + em.t + 0.001 + abs(rng.normal(0.0, 0.015))
            one_way.observe(TimeSync(em.message.seq, em.message.t_device_us, 0), arrival)
    assert syncs > 700 and w.stats["reordered"] > 0 and w.stats["duplicated"] > 0
    for cm, tol_ppm in ((two_way, 0.5), (one_way, 10.0)):
        assert cm.stats["jumps"] == (0 if jump_s is None else 1), cm.stats
        assert cm.drift_ppm == pytest.approx(80.0, abs=tol_ppm), cm.stats
        t = 3500.0
        assert cm.to_hub(w.device_time_us(t)) == pytest.approx(1000.0 + t, abs=0.03)
    assert two_way.stats["duplicates"] > 0


def test_observe_one_way_and_two_way() -> None:
    cm = ClockMapper()
    cm.observe(TimeSync(0, 1_000_000, 0), received_at=50.0)  # one-way: reception time
    assert cm.to_hub(1_000_000) == pytest.approx(50.0)
    cm2 = ClockMapper()
    cm2.observe(TimeSync(0, 1_000_000, 77_000_000), received_at=99.0)  # two-way: echoed hub time
    assert cm2.to_hub(1_000_000) == pytest.approx(77.0)
    cm2.reset()
    assert not cm2.synced and cm2.stats["resets"] == 1


def test_sequence_statuses() -> None:
    t = SequenceTracker()
    seen = [t.observe("s", s) for s in (10, 11, 13, 12, 12, 14, 20)]
    assert seen == [
        SeqStatus.FIRST, SeqStatus.IN_ORDER, SeqStatus.GAP, SeqStatus.REORDERED,
        SeqStatus.DUPLICATE, SeqStatus.IN_ORDER, SeqStatus.GAP,
    ]  # fmt: skip
    c = t.counts("s")
    assert (c.received, c.lost, c.duplicated, c.reordered) == (6, 5, 1, 1)


def test_sequence_wraps_and_restarts() -> None:
    t = SequenceTracker()
    for s in (65534, 65535, 0, 1):
        t.observe("a", s)
    assert t.counts("a").lost == 0
    assert t.observe("a", 30000) is SeqStatus.RESTART  # too far ahead to be loss
    assert t.counts("a").restarts == 1
    assert t.observe("a", 30001) is SeqStatus.IN_ORDER
    t.reset("a")  # e.g. on HELLO
    assert t.observe("a", 0) is SeqStatus.FIRST
    assert t.counts("a").restarts == 1  # counts survive a reset
    assert t.totals()["received"] == 7


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 400),
    start=st.integers(0, 65535),
    drop=st.sets(st.integers(0, 399)),
    dup=st.sets(st.integers(0, 399)),
    swap=st.sets(st.integers(0, 398)),
)
def test_sequence_counts_match_what_happened(
    n: int, start: int, drop: set[int], dup: set[int], swap: set[int]
) -> None:
    seqs = [(start + i) % 65536 for i in range(n)]
    sent = [s for i, s in enumerate(seqs) if i not in drop]
    out = []
    for i, s in enumerate(sent):
        out.append(s)
        if i in dup:
            out.append(s)
    for i in sorted(swap):  # adjacent swaps: late by one
        if i + 1 < len(out) and out[i] != out[i + 1]:
            out[i], out[i + 1] = out[i + 1], out[i]
    t = SequenceTracker()
    if not out:
        assert t.totals() == {}
        return
    statuses = [t.observe(0, s) for s in out]
    c = t.counts(0)
    delivered = [s for s, st_ in zip(out, statuses, strict=True) if st_ is not SeqStatus.DUPLICATE]
    assert sorted(set(delivered)) == sorted(set(sent))  # every sent packet delivered once
    assert len(delivered) == len(set(delivered))
    assert c.duplicated == len(out) - len(delivered)
    first = out[0]
    first_i = seqs.index(first)
    last_i = max(seqs.index(s) for s in out)
    # lost = packets in the window the tracker saw that never arrived
    window = set(seqs[first_i : last_i + 1])
    assert c.lost == len(window - set(sent))
