"""edge.sources.sim_process: the simulated wearables' frames through a pipe from another process."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest

from core.errors import ConfigError
from edge.sources.options import SimOptions
from edge.sources.sim import SimSource
from edge.sources.sim_process import RECORD, SimProcessSource, iter_records, play
from firmware_bridge.framing import FrameDecoder
from firmware_bridge.protocol import Hello, Samples
from firmware_bridge.sim import Faults, SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording


class FakeClock:
    """Time that passes only when the player sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _decoded(buf: bytes, n: int) -> tuple[list[list[object]], list[list[float]]]:
    decoders = [FrameDecoder() for _ in range(n)]
    msgs: list[list[object]] = [[] for _ in range(n)]
    stamps: list[list[float]] = [[] for _ in range(n)]
    end = 0
    for idx, stamp, s, e in iter_records(buf):
        got = decoders[idx].feed(buf[s:e])
        msgs[idx] += got
        stamps[idx] += [stamp] * len(got)
        end = e
    assert end == len(buf)  # whole records only
    return msgs, stamps


def test_records_carry_each_wearables_frames_in_order_stamped_with_their_schedule() -> None:
    rec = synthetic_recording(30.0, seed=1)
    faults = Faults(seed=2, flip=0.05, drop=0.05)
    src = SimSource.from_options(SimOptions(devices=3), recording=rec, hop_s=2.0)
    src.wearables[1].faults = faults  # one wearable with corrupted and dropped frames
    clock = FakeClock()
    out = io.BytesIO()
    written = play(src.wearables, src.start_delays_s, out, tick_s=0.01, clock=clock,
                   sleep=clock.sleep)
    buf = out.getvalue()
    assert written > 3 * 30 * 2  # a record per wearable per packet time, about
    assert min(clock.sleeps) > 0 and sum(clock.sleeps) == pytest.approx(30.0 + 2.0 * 2 / 3, abs=0.3)
    msgs, stamps = _decoded(buf, 3)
    for i, w in enumerate(src.wearables):
        # the same messages the wearable's own frames decode to (flipped ones rejected alike)
        twin = SimulatedWearable(rec, device_id=w.device_id, faults=w.faults,
                                 t0_device_us=w.t0_device_us)
        twin.hub_t0 = w.hub_t0
        ref = FrameDecoder()
        expected = [m for _, f in twin.frame_timeline() for m in ref.feed(f)]
        assert msgs[i] == expected
        assert isinstance(msgs[i][0], Hello) and msgs[i][0].device_id == w.device_id
        assert w.hub_t0 == pytest.approx(100.0 + src.start_delays_s[i])
        assert stamps[i] == sorted(stamps[i]) and stamps[i][0] == w.hub_t0
    # a record is never late by more than a tick against its schedule in this fake time
    assert RECORD.size == 14


def test_a_partial_record_waits_for_the_rest() -> None:
    buf = RECORD.pack(1, 3, 2.5) + b"abc" + RECORD.pack(0, 4, 3.0) + b"de"
    assert list(iter_records(buf)) == [(1, 2.5, RECORD.size, RECORD.size + 3)]
    assert list(iter_records(buf[: RECORD.size + 2])) == []


def test_days_cannot_play_in_another_process() -> None:
    with pytest.raises(ConfigError) as e:
        SimOptions(days=2.0, process=True).validate()
    assert e.value.key == "sim.process"
    with pytest.raises(ConfigError) as e:
        SimOptions(process_cpus=[-1]).validate()
    assert e.value.key == "sim.process_cpus"


async def test_the_source_reads_the_childs_frames_and_stops_it() -> None:
    """The real child process (the synthetic recording at 200x), read until enough items."""
    src = SimProcessSource.from_options(SimOptions(devices=2, process=True), speed=200.0,
                                        loop_forever=True, hop_s=5.0)
    got = []
    async with src:
        async for item in src:
            got.append(item)
            if len(got) >= 400:
                break
    devices = {it.device for it in got}
    assert devices == {"sim-0", "sim-1"}
    for d in devices:
        mine = [it.message for it in got if it.device == d]
        assert isinstance(mine[0], Hello)
        seqs = [m.seq for m in mine if isinstance(m, Samples) and m.sensor_id == 1]
        assert seqs == list(range(len(seqs)))  # every packet, once, in order
    h = src.health()
    assert h["process"] is True and h["items"] >= 400 and h["decoder_frames"] >= 400
    assert src._proc is not None and src._proc.returncode is not None  # stopped
    # the items come in batches (one wake-up per read), stamped in schedule order per device
    stamps = [it.received_at for it in got if it.device == "sim-0"]
    assert stamps == sorted(stamps)
    assert len(set(itertools.chain(stamps))) < len(stamps)
    assert np.isfinite(stamps).all()
