"""Privacy over MQTT: a whole simulated run seen from ``#`` holds no raw sample.

The daemon (built as the CLI builds it, with the demo bundle) runs a simulated wearable
playing a synthetic recording to its end (5 minutes of enrollment, then decisions), with the
MQTT sink wired from the configuration (``[mqtt] url``), which also gets the wearable's
battery from the daemon. A subscriber
to ``#`` keeps everything the broker carries. The leak detector of the privacy test searches
all of it for the recording's samples. Positive control: a naive bridge publishing a few
packets' samples to the same broker during the same run; the same search finds those.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.recording import save_recording
from edge.config import apply_overrides, load_config
from edge.daemon import open_daemon
from firmware_bridge.protocol import Samples
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.leaks import LeakDetector
from tests.fakes.mosquitto import Collector, Mosquitto, require_mosquitto

pytestmark = pytest.mark.slow
LEAK_TOPIC = "wearable-edge/naive-bridge/samples"
DATA_S = 600.0  # the demo bundle enrolls for 300 s; then ~60 decisions at its 5 s hop


async def test_a_whole_sim_run_publishes_no_raw_value(tmp_path: Path) -> None:
    import aiomqtt

    require_mosquitto()
    recording = save_recording(synthetic_recording(DATA_S, seed=11), tmp_path / "wrist.npz")
    detector = LeakDetector(recording)
    with Mosquitto(tmp_path / "broker") as broker:
        async with Collector(broker, "#") as everything:
            cfg = apply_overrides(load_config(None), {
                "device": "sim", "sim.recording": str(recording), "speed": 300.0,
                "state_dir": str(tmp_path / "state"), "resident": "anna",
                "health.status_line": "off", "sinks.log_decisions": False,
                "mqtt.url": broker.url, "mqtt.hub_id": "testhub", "mqtt.keepalive_s": 5})
            daemon = open_daemon(cfg)
            packets: list[list[int]] = []

            def on_item(item: Any, _: float) -> None:
                m = item.message
                if isinstance(m, Samples) and m.raw.shape[0] >= 16 and len(packets) < 3:
                    packets.append([int(v) for v in m.raw[:, 0]])

            daemon.observe_items(on_item)
            summary = await daemon.run()
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="naive") as naive:
                for p in packets:
                    await naive.publish(LEAK_TOPIC, json.dumps(p), qos=1)
            await everything.wait_for("the naive bridge's packets",
                                      lambda: len(everything.on(LEAK_TOPIC)) == len(packets))

    ours = [m for m in everything.messages if m.topic != LEAK_TOPIC]
    states = everything.on("wearable-edge/testhub/anna/state")
    assert summary["stop_reason"] == "source ended"  # the whole recording was played
    assert summary["decisions"] > 40 and len(states) == summary["decisions"]
    assert everything.on("wearable-edge/testhub/anna/battery")
    assert any(m.topic.startswith("homeassistant/") for m in ours)
    traffic = b"\n".join(m.topic.encode() + b" " + m.payload for m in ours)
    assert len(traffic) > 15_000  # the search has something to search
    assert detector.find(traffic) == []
    # positive control: the same search over the same capture finds the naive bridge's data
    leaked = b"\n".join(m.payload for m in everything.on(LEAK_TOPIC))
    assert len(packets) == 3 and len(detector.find(leaked)) >= 3
