"""edge.beat_clock: beat times of a strap's RR packets, chained and kept honest by packet times."""

from __future__ import annotations

import numpy as np
import pytest

from edge.beat_clock import MAX_LAG_S, BeatClock
from firmware_bridge.sim.rr import heart_rate_notifications, simulate_rr


def packets(jitter_s: float = 0.0, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:
    """True beat times and a strap's packets: (its own first-beat time, intervals), the
    last beat taken at the notification's arrival, delayed by up to ``jitter_s``."""
    sim = simulate_rr(np.ones(3000, np.int8), 10.0, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for now, m in heart_rate_notifications(sim):
        if not m.rr_s:
            continue
        rr = np.asarray(m.rr_s)
        arrival = now + rng.uniform(0.0, jitter_s)
        out.append((arrival - rr[1:].sum(), rr))
    return sim.t_s, out


def test_jittered_arrivals_do_not_move_the_beats_relative_to_each_other() -> None:
    truth, pkts = packets(jitter_s=0.3)
    clock = BeatClock()
    t = np.concatenate([clock.place(t0, rr)[0] for t0, rr in pkts])
    rr = np.concatenate([p[1] for p in pkts])
    # every interval is where its beats are: the chain keeps them exactly apart, but where
    # a packet showed the chain running ahead of the clock (anchored on a slow delivery),
    # which happens a few times until it has met the fastest ones
    moved = np.count_nonzero(np.abs(np.diff(t) - rr[1:]) > 1e-9)
    assert moved == clock.counters["pulled_back"] <= 6 and len(pkts) > 250
    # and it settles on the fastest deliveries: never after the true beat by more than a
    # notification period plus the jitter, never before it
    lag = t - truth[-t.size:]
    assert lag.min() >= -1e-9 and lag.max() <= 1.0 + 0.3 + 1e-9
    assert clock.counters["anchored"] == 1


def test_a_lost_packet_leaves_a_gap_instead_of_shifting_every_later_beat() -> None:
    truth, pkts = packets()
    clock = BeatClock()
    placed = []
    for i, (t0, rr) in enumerate(pkts):
        if 100 <= i < 104:  # four notifications never arrive
            continue
        placed.append(clock.place(t0, rr)[0])
    t = np.concatenate(placed)
    holes = np.diff(t)
    assert holes.max() > MAX_LAG_S  # the lost beats are a hole...
    later = t[-50:]  # ...and the beats after it are at their true times again
    np.testing.assert_allclose(later, truth[-50:], atol=0.6)
    assert clock.counters["reanchored_behind"] == 1


def test_sequence_gap_and_reset_anchor_again_and_times_only_increase() -> None:
    clock = BeatClock()
    t, _ = clock.place(100.0, np.array([0.8, 0.8]))
    assert t.tolist() == pytest.approx([100.0, 100.8])
    # a packet claiming to end earlier than the chain (a clock stepping back): pulled back,
    # by at most half its first interval, never to or before the previous beat
    t2, _ = clock.place(100.9, np.array([0.8]))
    assert t2[0] == pytest.approx(100.8 + 0.4) and clock.counters["pulled_back"] == 1
    # a known loss (sequence gap): anchored on the packet; beats not after the last dropped
    t3, rr3 = clock.place(100.0, np.array([0.8, 0.9, 0.9]), gap=True)
    assert t3.tolist() == pytest.approx([101.8]) and rr3.tolist() == [0.9]
    assert clock.counters["dropped_not_after_previous"] == 2
    clock.reset()
    t4, _ = clock.place(50.0, np.array([0.7]))
    assert t4.tolist() == [50.0]
    assert clock.place(60.0, np.zeros(0))[0].size == 0
