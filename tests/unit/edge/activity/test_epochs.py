"""edge.activity.epochs: a device's raw packets -> count epochs on the hub's clock grid."""

from __future__ import annotations

import numpy as np
import pytest

from core.actigraphy import CountsAccumulator
from edge.activity.epochs import DeviceActivity
from edge.decisions import Wearer
from firmware_bridge.protocol import SampleFormat, SensorInfo

ACC = SensorInfo(1, "acc", "g", 30.0, 3, SampleFormat.INT16, 1.0 / 4096.0)
LIGHT = SensorInfo(2, "light", "lux", 0.1, 1, SampleFormat.UINT16, 1.0)
WALL0 = 1_700_000_017.5  # hub time of device second 0: not on the minute grid


def moving(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) wire values of a wrist that moves."""
    rng = np.random.default_rng(seed)
    g = np.array([-0.2, 0.1, 0.97]) + 0.3 * rng.standard_normal((n, 3))
    return ACC.to_raw(g)


def device(wearer: str = "anna") -> DeviceActivity:
    return DeviceActivity("dev-1", Wearer("dev-1", wearer), lambda t: WALL0 + t, epoch_s=60)


def play(act: DeviceActivity, raw: np.ndarray, *, t0: float = 0.0, packet: int = 8,
         info: SensorInfo = ACC) -> list:
    out = []
    for i in range(0, len(raw), packet):
        chunk = raw[i : i + packet]
        t = t0 + (i + np.arange(len(chunk))) / info.rate_hz
        out += act.on_samples(info, t, chunk)
    return out


def test_epochs_start_on_the_minute_and_match_the_kernel_whatever_the_packets() -> None:
    raw = moving(30 * 600)
    other = device()
    small = play(other, raw, packet=8) + other.flush()
    act = device()
    big = play(act, raw, packet=1800) + act.flush()
    assert all(e.t % 60 == 0 for e in big)
    assert big[0].t == 1_700_000_040.0  # the first whole minute after the first sample
    skip = round((big[0].t - WALL0) * 30)  # samples before the grid are not counted
    ref = CountsAccumulator(30, 60)
    ref_epochs = ref.push(ACC.to_physical(raw[skip:])) + ref.flush()
    assert [e.counts for e in big] == [e.counts for e in ref_epochs]
    assert [(e.t, e.counts) for e in small] == [(e.t, e.counts) for e in big]
    assert {e.resident for e in big} == {"anna"} and big[0].light is None
    assert act.counters["activity_samples_before_grid"] == skip
    assert np.diff([e.t for e in big]).tolist() == [60.0] * (len(big) - 1)


def test_a_lost_packet_is_held_over_a_long_gap_restarts_on_the_grid() -> None:
    raw = moving(30 * 300)
    act = device()
    first = play(act, raw[: 30 * 120], packet=30)
    first += play(act, raw[30 * 121 : 30 * 200], t0=121.0, packet=30)  # 1 s lost: filled
    assert act.counters["activity_samples_filled"] == 30
    first += play(act, raw[30 * 200 :], t0=300.0, packet=30)  # 100 s lost: a new stream
    first += act.flush()
    assert act.counters["activity_restarts_gap"] == 1
    starts = [e.t for e in first]
    assert all(s % 60 == 0 for s in starts) and starts == sorted(set(starts))
    assert WALL0 + 200 not in starts  # the minute with the hole is not made up


def test_a_clock_that_goes_back_restarts_and_unusable_accelerometers_are_counted() -> None:
    act = device()
    play(act, moving(30 * 90), packet=300)
    play(act, moving(30 * 90), t0=5.0, packet=300)
    assert act.counters["activity_restarts_clock"] == 1
    odd = DeviceActivity("d", Wearer("d", "r"), lambda t: t)
    two_axes = SensorInfo(1, "acc", "g", 30.0, 2, SampleFormat.INT16, 1 / 4096)
    slow = SensorInfo(3, "acc", "g", 25.0, 3, SampleFormat.INT16, 1 / 4096)
    in_ms2 = SensorInfo(4, "acc", "m/s2", 32.0, 3, SampleFormat.INT16, 1 / 400)
    for info in (two_axes, slow, in_ms2, slow):
        raw = np.zeros((100, info.channels), np.int16)
        assert odd.on_samples(info, np.arange(100) / info.rate_hz, raw) == []
    assert odd.counters["activity_sensor_unusable"] == 3  # once per sensor


def test_light_is_the_epoch_mean_and_an_epoch_waits_for_late_light() -> None:
    act = device()
    raw = moving(30 * 300)
    lux_t = np.arange(0.0, 300.0, 10.0)  # device seconds of the light samples
    lux = np.where(lux_t < 150, 100.0, 3000.0)
    # the first light sample says the device has light; then 200 s of acceleration...
    out = act.on_samples(LIGHT, lux_t[:1], LIGHT.to_raw(lux[:1, None]))
    out += play(act, raw[: 30 * 200], packet=300)
    assert out == []  # ...whose epochs wait for the light stream to pass their end
    for i in range(1, 30, 6):  # a minute of light per packet, arriving late
        out += act.on_samples(LIGHT, lux_t[i : i + 6], LIGHT.to_raw(lux[i : i + 6, None]))
    out += play(act, raw[30 * 200 :], t0=200.0, packet=300)
    out += act.flush()
    assert len(out) == 4
    for e in out:
        # epoch [t, t+60) in hub time is device [t - WALL0, ...)
        sel = (lux_t >= e.t - WALL0) & (lux_t < e.t + 60 - WALL0)
        assert e.light == pytest.approx(lux[sel].mean())
