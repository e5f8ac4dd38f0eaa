"""Home Assistant discovery: the configs' keys, and on a real broker retained, re-sent, removed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.sinks.mqtt import MqttSink
from edge.sinks.mqtt.discovery import WEARER_OBJECTS, Discovery
from edge.sinks.mqtt.outbox import Wearer
from edge.sinks.mqtt.topics import Topics
from tests.fakes.mosquitto import Collector, Mosquitto, require_mosquitto
from tests.fakes.mqtt import CLASSES, decision, options

TOPICS = Topics("wearable-edge", "testhub")
REQUIRED = {"name", "unique_id", "state_topic", "availability", "device", "origin"}


def test_a_wearer_device_has_the_entities_with_their_classes() -> None:
    d = Discovery(TOPICS, CLASSES)
    configs = dict(d.wearer(Wearer("anna", "AA:BB", heart_rate=False)))
    base = "homeassistant/{}/testhub_anna/{}/config"
    assert set(configs) == {base.format(c, o) for c, o in WEARER_OBJECTS if o != "heart_rate"}
    for payload in configs.values():
        assert set(payload) >= REQUIRED
        assert payload["device"]["identifiers"] == ["wearable_edge_testhub_anna"]
        assert payload["device"]["via_device"] == "wearable_edge_testhub"
        assert payload["availability"] == [{"topic": "wearable-edge/testhub/status",
                                            "payload_available": "online",
                                            "payload_not_available": "offline"}]
        assert payload["origin"]["name"] == "wearable-edge"
    state = configs[base.format("sensor", "affective_state")]
    assert state["device_class"] == "enum" and state["options"] == list(CLASSES)
    assert state["state_topic"] == "wearable-edge/testhub/anna/state"
    assert state["value_template"] == "{{ value_json.state }}"
    assert configs[base.format("sensor", "stress_probability")]["unit_of_measurement"] == "%"
    assert configs[base.format("binary_sensor", "sustained_stress")]["device_class"] == "problem"
    assert configs[base.format("binary_sensor", "connected")]["device_class"] == "connectivity"
    assert configs[base.format("sensor", "battery")]["device_class"] == "battery"
    assert configs[base.format("sensor", "last_decision")]["device_class"] == "timestamp"
    ids = [p["unique_id"] for p in configs.values()]
    assert len(set(ids)) == len(ids)
    with_hr = dict(d.wearer(Wearer("anna", "AA:BB", heart_rate=True)))
    assert with_hr[base.format("sensor", "heart_rate")]["unit_of_measurement"] == "bpm"
    # a model without a stress class has no stress probability entity
    assert base.format("sensor", "stress_probability") not in dict(
        Discovery(TOPICS, ["calm", "tense"]).wearer(Wearer("anna", "x", False)))
    (hub_topic, hub), = d.hub()
    assert hub_topic == "homeassistant/binary_sensor/testhub_hub/problem/config"
    assert hub["device"]["identifiers"] == ["wearable_edge_testhub"]
    assert set(d.removal("anna")) == set(with_hr)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    require_mosquitto()
    with Mosquitto(tmp_path / "broker") as b:
        yield b


async def test_configs_retained_valid_resent_on_ha_online_and_removed(
        broker: Mosquitto, tmp_path: Path) -> None:
    import aiomqtt

    sink = MqttSink(options(broker.url), db_path=tmp_path / "edge.db", class_names=CLASSES)
    sink.start()
    for i in range(3):
        sink.submit(decision("anna", i))
        sink.submit(decision("bob", i))
    assert await sink.wait_published(10)
    # a subscriber that arrives later gets every config, retained, valid JSON with the keys
    async with Collector(broker, "homeassistant/#", client_id="late") as late:
        # 6 entities per wearer (no heart rate offered), 1 for the hub
        await late.wait_for("12 wearer configs + the hub's", lambda: len(late.messages) >= 13)
        await asyncio.sleep(0.2)
        assert len(late.messages) == 13 and all(m.retain for m in late.messages)
        for m in late.messages:
            assert set(m.json()) >= REQUIRED, m.topic
        # Home Assistant restarts: it announces `online`, the hub sends its configs again
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="ha") as ha:
            await ha.publish("homeassistant/status", "online", qos=1)
        await late.wait_for("configs re-sent", lambda: len(late.messages) >= 26)
        assert not any(m.retain for m in late.messages[13:])  # live copies, not retained ones
        # a wearer retired: empty retained payloads delete its entities
        sink.retire_wearer("bob")
        await late.wait_for("bob's configs deleted", lambda: sum(
            1 for m in late.messages if "testhub_bob" in m.topic and m.payload == b"") == 7)
    assert await sink.wait_published(10)
    async with Collector(broker, "#", client_id="after") as after:
        await asyncio.sleep(0.5)
        topics = {m.topic for m in after.messages}
    assert not any("bob" in t for t in topics), sorted(topics)
    assert "homeassistant/sensor/testhub_anna/affective_state/config" in topics
    assert "wearable-edge/testhub/anna/state" in topics
    await sink.aclose(5)


async def test_heart_rate_entity_announced_when_the_wearable_sends_one(
        broker: Mosquitto, tmp_path: Path) -> None:
    from edge.sinks.mqtt import DeviceStatus

    async with Collector(broker, "#") as c:
        sink = MqttSink(options(broker.url, status_interval_s=10.0),
                        db_path=tmp_path / "edge.db", class_names=CLASSES)
        sink.start()
        sink.submit(decision("anna", 0))
        for k, bpm in enumerate([68.0, 70.0, 72.0]):
            sink.device_status(DeviceStatus("anna", "dev-anna", 1000.0 + 5 * k,
                                            heart_rate_bpm=bpm, battery_pct=81.0))
        assert await sink.wait_published(10)
        await sink.aclose(5)
        # published means the broker has them; the collector's copies may still be on the way
        await c.wait_for("the heart rate and the battery", lambda: {
            "wearable-edge/testhub/anna/heart_rate", "wearable-edge/testhub/anna/battery"}
            <= {m.topic for m in c.messages})
    hr_config = "homeassistant/sensor/testhub_anna/heart_rate/config"
    topics = [m.topic for m in c.messages]
    assert hr_config in topics
    assert topics.index(hr_config) < topics.index("wearable-edge/testhub/anna/heart_rate")
    (hr,) = c.on("wearable-edge/testhub/anna/heart_rate")
    assert hr.json()["bpm"] == 70 and hr.json()["period_s"] == 10.0
    (battery,) = c.on("wearable-edge/testhub/anna/battery")
    assert battery.json()["percent"] == 81
