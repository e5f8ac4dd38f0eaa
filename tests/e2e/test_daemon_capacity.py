"""What the capacity benchmark relies on: staggered simulated wearables sharing one recording,
the ``sim.max_devices`` cap, window -> decision latency and the public timing hooks.

The daemon runs in-process on the real exported toy bundle (ONNX Runtime), the simulator
in-process, the real SQLite sink.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import ConfigError
from core.signal import compute_calibration
from edge.config import SIM_DEVICES_LIMIT, DaemonConfig, load_config
from edge.daemon import DecisionTiming, open_daemon
from edge.decisions import Decision
from edge.ingest import DeviceIngest
from edge.sources.base import SourceItem
from edge.sources.sim import SimSource
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.daemon import db_rows, toy_bundle
from tests.fakes.runs import toy_contract


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def recording() -> Any:
    return synthetic_recording(240.0)


def _cfg(tmp_path: Path, **sim: Any) -> DaemonConfig:
    cfg = DaemonConfig(device="sim", state_dir=str(tmp_path), duration=1.0, speed=50.0)
    for k, v in sim.items():
        setattr(cfg.sim, k, v)
    return cfg


def _sim_source(cfg: DaemonConfig, recording: Any, hop_s: float) -> SimSource:
    return SimSource.from_options(cfg.sim, speed=cfg.speed, loop_forever=True, hop_s=hop_s,
                                  recording=recording)


# -- config ------------------------------------------------------------------------------------
def test_sim_device_cap_is_a_validated_config_value(tmp_path: Path) -> None:
    assert DaemonConfig().sim.max_devices == 64 and DaemonConfig().sim.stagger is True
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path, devices=65).validate()
    assert e.value.key == "sim.devices" and "sim.max_devices" in str(e.value)
    _cfg(tmp_path, devices=300, max_devices=300).validate()  # raised: accepted
    for bad in (0, SIM_DEVICES_LIMIT + 1):
        with pytest.raises(ConfigError) as e:
            _cfg(tmp_path, max_devices=bad).validate()
        assert e.value.key == "sim.max_devices"
    p = tmp_path / "c.toml"
    p.write_text("[sim]\ndevices = 100\nmax_devices = 200\nstagger = false\n")
    cfg = load_config(p)
    assert (cfg.sim.devices, cfg.sim.max_devices, cfg.sim.stagger) == (100, 200, False)
    p.write_text("[sim]\nstagger = 'yes'\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == "sim.stagger"


# -- the sim source ----------------------------------------------------------------------------
def test_wearables_share_one_read_only_copy_of_the_recording(recording: Any) -> None:
    a = SimulatedWearable(recording, device_id="a")
    b = SimulatedWearable(recording, device_id="b")
    own = sum(raw.nbytes for raw in b.wire_samples)
    assert b.share_samples_from(a) == own > 0
    for ra, rb in zip(a.wire_samples, b.wire_samples, strict=True):
        assert rb is ra and not ra.flags.writeable
    # sharing changes nothing b sends: same packets as an unshared wearable from the recording
    c = SimulatedWearable(recording, device_id="b")
    for eb, ec in zip(b.timeline(), c.timeline(), strict=False):
        if eb.t > 30:
            break
        raw_b, raw_c = getattr(eb.message, "raw", None), getattr(ec.message, "raw", None)
        assert (raw_b is None) == (raw_c is None)
        if raw_b is not None:
            np.testing.assert_array_equal(raw_b, raw_c)
    # another recording: nothing shared
    other = SimulatedWearable(synthetic_recording(120.0, seed=5), device_id="d")
    assert other.share_samples_from(a) == 0
    assert all(ro is not ra for ro, ra in zip(other.wire_samples, a.wire_samples, strict=True))


def test_from_options_staggers_starts_over_the_hop_and_shares_samples(tmp_path: Path,
                                                                       recording: Any) -> None:
    src = _sim_source(_cfg(tmp_path, devices=4), recording, hop_s=2.0)
    assert src.start_delays_s == [0.0, 0.5, 1.0, 1.5]
    first = src.wearables[0]
    assert all(w.wire_samples[0] is first.wire_samples[0] for w in src.wearables)
    off = _sim_source(_cfg(tmp_path, devices=4, stagger=False), recording, hop_s=2.0)
    assert off.start_delays_s == [0.0] * 4
    with pytest.raises(ConfigError):
        src.stagger(-1.0)


async def test_staggered_wearables_start_their_clocks_in_turn(tmp_path: Path,
                                                              recording: Any) -> None:
    cfg = _cfg(tmp_path, devices=3)
    src = _sim_source(cfg, recording, hop_s=3.0)  # 0, 1, 2 s of data
    got: dict[str, float] = {}
    await src.start()
    try:
        async with asyncio.timeout(30):
            async for item in src:
                got.setdefault(item.device, item.received_at)
                if len(got) == 3:
                    break
    finally:
        await src.stop()
    w = src.wearables
    assert all(x.hub_t0 is not None for x in w)
    # a sleep never ends early: wearable i starts >= i s of data (i / speed wall s) later
    for i in (1, 2):
        assert w[i].hub_t0 - w[0].hub_t0 >= i / cfg.speed - 1e-3
    assert got["sim-0"] <= got["sim-1"] <= got["sim-2"]


# -- the ingest stamps ---------------------------------------------------------------------------
def _ingest(realtime: bool, recording: Any) -> DeviceIngest:
    contract = toy_contract()
    names = [m.name for m in contract.modalities]
    cal = compute_calibration(recording.streams(names), contract, source="test")
    return DeviceIngest("sim-0", contract, DaemonConfig().decisions,
                        resolve_resident=lambda k, d: "r", load_calibration=lambda r: cal,
                        save_calibration=lambda r, c: None, realtime=realtime)


@pytest.mark.parametrize("realtime", [True, False])
def test_ready_windows_carry_when_their_last_packet_arrived(realtime: bool,
                                                            recording: Any) -> None:
    ingest = _ingest(realtime, recording)
    w = SimulatedWearable(recording, device_id="sim-0")
    base = time.monotonic() - 1000.0  # packets "received" long ago ...
    windows = []
    for k, em in enumerate(w.timeline()):
        if em.t > 20:
            break
        if em.message is None:
            continue
        # ... except every tenth, stamped in the future by a confused source
        at = base + em.t if k % 10 else time.monotonic() + 1000.0
        before = time.monotonic()
        out = ingest.handle(SourceItem("sim-0", at, em.message))
        after = time.monotonic()
        for rw in out.windows:
            assert before <= rw.handled_at <= after
            if realtime:  # the packet's own arrival, never later than its handling
                assert rw.completed_at == min(at, rw.handled_at)
            else:  # virtual packet times: when the daemon read it
                assert rw.completed_at == rw.handled_at
        windows += out.windows
    assert len(windows) >= 5
    rest = ingest.flush().windows
    assert all(rw.completed_at == rw.handled_at for rw in rest)


# -- the daemon: window -> decision and the hooks ---------------------------------------------------
@pytest.mark.slow
async def test_daemon_reports_window_to_decision_and_observers_see_every_decision(
        bundle: Path, tmp_path: Path) -> None:
    cfg = DaemonConfig(device="sim", bundle=str(bundle), backend="onnx", state_dir=str(tmp_path),
                       duration=4.0, speed=100.0, log_level="warning")
    cfg.sim.devices = 2
    cfg.health.status_line = "off"
    cfg.sinks.log_decisions = False
    cfg.validate()
    daemon = open_daemon(cfg)
    assert isinstance(daemon.source, SimSource)
    hop = daemon.contract.hop_s
    assert daemon.source.start_delays_s == [0.0, hop / 2]  # sim.stagger on by default
    seen: list[tuple[Decision, DecisionTiming]] = []
    items: list[float] = []
    daemon.observe(lambda d, tm: seen.append((d, tm)))
    remove = daemon.observe_items(lambda item, read_at: items.append(read_at))
    once: list[int] = []

    def first_only(item: SourceItem, read_at: float) -> None:
        once.append(1)
        remove_once()

    remove_once = daemon.observe_items(first_only)
    summary = await daemon.run()
    remove()

    assert len(once) == 1  # the returned function unsubscribes
    assert len(items) == daemon.counters["items"] > 0
    assert summary["decisions"] == len(seen) > 20
    for d, tm in seen:
        assert tm.device == d.device and tm.window_index == d.window_index
        assert tm.completed_at <= tm.handled_at <= tm.submitted_at <= tm.decided_at
        assert 0.0 <= tm.engine_ms <= tm.worker_ms <= tm.window_to_decision_ms
        # the stored figure: window complete -> just before the sinks got it
        assert tm.worker_ms <= d.latency_ms <= tm.window_to_decision_ms
        assert math.isclose(tm.source_wait_ms + tm.preprocess_ms + tm.worker_ms
                            + tm.delivery_ms, tm.window_to_decision_ms, abs_tol=1e-6)
    w50, w99 = summary["window_to_decision_p50_ms"], summary["window_to_decision_p99_ms"]
    full = np.array([tm.window_to_decision_ms for _, tm in seen])
    assert math.isclose(w50, float(np.percentile(full, 50)), rel_tol=1e-9)
    assert math.isclose(w99, float(np.percentile(full, 99)), rel_tol=1e-9)
    assert summary["engine_p50_ms"] <= summary["latency_p50_ms"] <= w50
    h = daemon.health()
    assert h["window_to_decision_p99_ms"] == w99
    rows = db_rows(cfg.db_path)
    assert [r["latency_ms"] for r in rows] == pytest.approx([d.latency_ms for d, _ in seen])
