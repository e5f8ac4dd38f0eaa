"""firmware_bridge.sim.days: a resident's days made lazily, the same whatever the reads."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

import numpy as np
import pytest

from firmware_bridge.errors import SimulatorError
from firmware_bridge.protocol import Hello, Samples
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.days import BLOCK_S, DaysRecording, WireView

START = datetime(2024, 3, 4, 14, 30).timestamp()  # a Monday afternoon, local time


def days(n: float = 2.0, **kw: object) -> DaysRecording:
    return DaysRecording(n, start=START, utc_offset_s=0.0, **kw)  # type: ignore[arg-type]


def minute_of_day(rec: DaysRecording, t: np.ndarray) -> np.ndarray:
    return ((rec.start_of_day_s + t) // 60) % 1440


def test_any_reading_order_gives_the_same_samples() -> None:
    acc = days(seed=3).signals["acc"]
    n = 2 * acc.block + 500  # across two block boundaries
    whole = acc.read(0, n)
    again = days(seed=3).signals["acc"]
    pieces = np.concatenate([again.read(i, min(n, i + 997)) for i in range(0, n, 997)])
    np.testing.assert_array_equal(whole, pieces)
    backwards = days(seed=3).signals["acc"]
    np.testing.assert_array_equal(backwards.read(acc.block, acc.block + 10),
                                  whole[acc.block : acc.block + 10])
    assert not np.array_equal(days(seed=4).signals["acc"].read(0, 100), whole[:100])


def test_memory_holds_one_block_not_the_recording() -> None:
    rec = days(14.0)
    acc = rec.signals["acc"]
    assert len(acc) == 14 * 86400 * 30
    for i in range(0, 3 * acc.block, 1800):  # three hours, a packet at a time
        acc.read(i, i + 1800)
    cached = acc._cache
    assert cached is not None and cached[1].shape == (BLOCK_S * 30, 3)  # an hour, no more


def test_sleep_is_still_and_dark_days_move_and_the_walk_is_bright() -> None:
    rec = days(2.0, seed=1)
    acc, light = rec.signals["acc"], rec.signals["light"]
    n_day = 86400 * 30
    t = np.arange(n_day) / 30.0
    x = acc.read(0, n_day)
    mag = np.linalg.norm(x, axis=1)
    assert np.allclose(np.median(mag), 1.0, atol=0.05)  # gravity
    mod = minute_of_day(rec, t)
    night = (mod >= 60) & (mod < 5 * 60)  # 01:00-05:00, asleep every night
    day = (mod >= 14 * 60 + 40) & (mod < 19 * 60)
    move_night = np.median(np.abs(np.diff(x[night], axis=0)))  # the odd twitch aside
    move_day = np.median(np.abs(np.diff(x[day], axis=0)))
    assert move_day > 10 * move_night
    lt = np.arange(len(light)) / light.rate_hz
    lux = light.read(0, len(light))[:, 0]
    lmod = minute_of_day(rec, lt)
    assert np.all(lux[(lmod >= 60) & (lmod < 5 * 60)] == 0)
    assert np.all(lux[(lmod >= 10 * 60 + 40) & (lmod < 12 * 60 + 20)] > 1000)  # outdoors
    assert np.all(lux[(lmod >= 15 * 60) & (lmod < 19 * 60)] < 1000)  # indoors


def test_nights_fragment_from_the_day_asked() -> None:
    rec = days(14.0, fragment_from_day=10, seed=2)
    assert [len(rec.day(k).awakenings) for k in range(10)] == [0] * 10
    wakes = [rec.day(k).awakenings for k in range(10, 14)]
    assert all(6 <= len(w) <= 8 for w in wakes)
    for k, w in zip(range(10, 14), wakes, strict=True):
        onset, next_wake = rec.day(k).onset_min, 1440 + rec.day(k + 1).wake_min
        starts = [a for a, _ in w]
        assert starts == sorted(starts)
        assert all(onset < a and a + length < next_wake for a, length in w)
        # the night's minutes awake in the dark are restless, not still
        inten, _, lux = rec.minutes(k + 1)
        a, length = next((a - 1440, n) for a, n in w if a >= 1440 + 60)
        assert np.all(inten[a : a + length] >= 0.3) and np.all(lux[a : a + length] == 0)
    never = days(14.0, fragment_from_day=None, seed=2)
    assert all(not never.day(k).awakenings for k in range(14))


def test_bad_lengths_are_refused() -> None:
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(SimulatorError, match="positive"):
            days(bad)
    wire = WireView(days().signals["acc"], SimulatedWearable(days(), frames=False).hello.sensors[0])
    with pytest.raises(SimulatorError, match="contiguous"):
        wire[0:10:2]


def test_a_simulated_wearable_plays_it_lazily_without_frames() -> None:
    rec = days(0.02, seed=5)  # about half an hour
    w = SimulatedWearable(rec, speed=math.inf, packet_s=60.0, min_samples_per_packet=6,
                          frames=False)
    kinds = [(s.kind, s.unit, s.rate_hz, s.channels) for s in w.hello.sensors]
    assert kinds == [("acc", "g", 30.0, 3), ("light", "lux", pytest.approx(0.1), 1)]

    async def play() -> list[object]:
        return [m async for _, m in w.messages()]

    msgs = asyncio.run(play())
    assert isinstance(msgs[0], Hello)
    acc = [m for m in msgs if isinstance(m, Samples) and m.sensor_id == 1]
    light = [m for m in msgs if isinstance(m, Samples) and m.sensor_id == 2]
    assert {m.count for m in acc[:-1]} == {1800} and {m.count for m in light[:-1]} == {6}
    played = np.concatenate([w.hello.sensors[0].to_physical(m.raw) for m in acc])
    np.testing.assert_allclose(played, rec.signals["acc"].read(0, len(played)), atol=1 / 8192)
    assert w.decoder_stats == {}  # nothing was framed
    with pytest.raises(SimulatorError, match="flip"):
        from firmware_bridge.sim import Faults

        SimulatedWearable(rec, faults=Faults(flip=0.1), frames=False)
