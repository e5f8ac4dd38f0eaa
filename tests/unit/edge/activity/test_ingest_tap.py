"""The ingest's raw taps: every accepted packet, model or not; a slow sensor is not a reboot."""

from __future__ import annotations

import numpy as np

from core.contract import InputContract
from edge.config import DecisionConfig
from edge.ingest import DeviceIngest
from edge.sources.base import SourceItem
from firmware_bridge.protocol import PROTOCOL_VERSION, Hello, SampleFormat, Samples, SensorInfo

ACC = SensorInfo(1, "acc", "g", 30.0, 3, SampleFormat.INT16, 1.0 / 4096.0)
LIGHT = SensorInfo(2, "light", "lux", 0.1, 1, SampleFormat.UINT16, 1.0)


def ingest(contract: InputContract | None = None) -> DeviceIngest:
    return DeviceIngest("dev-1", contract, DecisionConfig(), resolve_resident=lambda k, d: "ada",
                        load_calibration=lambda r: None, save_calibration=lambda r, c: None,
                        realtime=False, wall_at_start=1e9, mono_at_start=0.0,
                        select_contract=lambda hello: None)


def test_taps_see_every_packet_of_a_device_no_model_fits_and_slow_sensors_are_no_reboot() -> None:
    ing = ingest()
    seen: list[tuple[str, float, int]] = []
    ing.raw_taps.append(lambda info, t, raw: seen.append((info.kind, float(t[0]), len(raw))))
    items = [Hello("dev-1", "fw", PROTOCOL_VERSION, (ACC, LIGHT))]
    for k in range(3):  # a minute of acceleration, then the minute's light (6 samples)
        t0_us = 60_000_000 * k
        items.append(Samples(1, k, t0_us, np.zeros((1800, 3), np.int16)))
        items.append(Samples(2, k, t0_us, np.full((6, 1), 300, np.uint16)))
    for i, msg in enumerate(items):
        ing.handle(SourceItem("dev-1", float(i), msg))
    assert seen == [(kind, 60.0 * k, n) for k in range(3)
                    for kind, n in (("acc", 1800), ("light", 6))]
    assert ing.counters["clock_regressions"] == 0  # the light packet starts a minute back
    assert ing.counters["samples_unused"] == 3 * 1806  # no model: the taps are the only users
