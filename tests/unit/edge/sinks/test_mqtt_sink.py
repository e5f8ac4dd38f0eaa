"""The MQTT sink against a real Mosquitto: order per wearer, TLS, a refused password."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.decisions import Event
from edge.sinks.mqtt import MqttSink
from edge.sinks.mqtt.outbox import Outbox
from tests.fakes.mosquitto import Collector, Mosquitto, make_tls, require_mosquitto, until
from tests.fakes.mqtt import CLASSES, decision, options

WEARERS = ("anna", "bob", "carl")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    require_mosquitto()
    with Mosquitto(tmp_path / "broker") as b:
        yield b


async def test_every_decision_arrives_in_order_per_wearer(broker: Mosquitto,
                                                          tmp_path: Path) -> None:
    n = 40
    async with Collector(broker, "wearable-edge/#") as c:
        sink = MqttSink(options(broker.url), db_path=tmp_path / "edge.db", class_names=CLASSES)
        sink.start()
        for i in range(n):
            for w in WEARERS:
                sink.submit(decision(w, i))
            if i == 20:
                sink.submit(Event("anna", "dev-anna", decision("anna", i).t, "alert",
                                  {"rule": "sustained_stress", "minutes": 10.0}))
            if i % 7 == 0:
                await asyncio.sleep(0.01)  # spread over several outbox batches
        assert await sink.wait_published(10)
        await c.wait_for("every state", lambda: sum(
            m.topic.endswith("/state") for m in c.messages) >= n * len(WEARERS))
        await sink.aclose(5)
    ids = [m.json()["id"] for m in c.messages if m.payload and m.topic != sink.topics.status]
    assert len(ids) == len(set(ids))  # one id per message
    for w in WEARERS:
        states = [m.json() for m in c.on(f"wearable-edge/testhub/{w}/state")]
        assert [s["t"] for s in states] == [decision(w, i).t for i in range(n)]
        assert [s["state"] for s in states] == [decision(w, i).state for i in range(n)]
        assert set(states[0]) == {"id", "t", "time", "state", "p", "probabilities", "model",
                                  "stress_pct"}
    alert_at = [m.topic for m in c.messages].index("wearable-edge/testhub/anna/alert")
    anna = [i for i, m in enumerate(c.messages) if m.topic == "wearable-edge/testhub/anna/state"]
    assert anna[20] < alert_at < anna[21]  # in its place among anna's decisions
    assert [m.payload for m in c.on(sink.topics.status)] == [b"online", b"offline"]
    assert sink.stats.snapshot()["published"] >= n * len(WEARERS) + 1


async def test_tls_to_a_broker_with_a_self_signed_ca(tmp_path: Path) -> None:
    require_mosquitto()
    tls = make_tls(tmp_path / "tls")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        assert broker.url.startswith("mqtts://")
        async with Collector(broker, "wearable-edge/#") as c:
            sink = MqttSink(options(broker.url, ca_file=str(tls.ca)),
                            db_path=tmp_path / "edge.db", class_names=CLASSES)
            sink.start()
            for i in range(5):
                sink.submit(decision("anna", i))
            assert await sink.wait_published(10)
            await c.wait_for("5 states over TLS", lambda: len(
                c.on("wearable-edge/testhub/anna/state")) == 5)
            await sink.aclose(5)


async def test_an_untrusted_broker_certificate_is_one_clear_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_mosquitto()
    tls = make_tls(tmp_path / "tls")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        sink = MqttSink(options(broker.url), db_path=tmp_path / "edge.db", class_names=CLASSES)
        with caplog.at_level(logging.INFO, logger="edge.sinks.mqtt"):
            sink.start()
            sink.submit(decision("anna", 0))
            await until("3 attempts", lambda: sink.stats.snapshot().get("connect_failures", 0) >= 3)
            await sink.aclose(2)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "presented a certificate this hub does not trust" in lines[0]
    assert "set mqtt.ca_file" in lines[0]


async def test_a_wrong_password_is_one_line_retried_and_records_stay_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_mosquitto()
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    pw.chmod(0o600)
    faults: list[tuple[str, str | None]] = []
    with Mosquitto(tmp_path / "broker", users={"hub": "the-password"}) as broker:
        url = broker.url.replace("mqtt://", "mqtt://hub@")
        sink = MqttSink(options(url, password_file=str(pw)), db_path=tmp_path / "edge.db",
                        class_names=CLASSES, on_fault=lambda *a: faults.append(a))
        with caplog.at_level(logging.DEBUG):
            sink.start()
            for i in range(10):
                sink.submit(decision("anna", i))
            await until("4 attempts", lambda: sink.stats.snapshot().get("connect_failures", 0) >= 4)
            assert await asyncio.to_thread(sink.flush, 5.0)
            assert sink.health()["connected"] is False and sink.pending() >= 10
            await sink.aclose(2)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    line = problems[0].getMessage()
    # Mosquitto answers a wrong password with "not authorised" under MQTT 3.1.1
    assert "refused the login (user 'hub': not authorised, a wrong password" in line
    assert "\n" not in line
    assert f"check the file {pw}" in line and "retrying" in line
    assert "not-the-password" not in caplog.text
    assert faults == [("mqtt", line.split("mqtt: ", 1)[1].split("; retrying")[0])]
    ob = Outbox(tmp_path / "edge.db")  # stored locally, waiting for a corrected password
    assert ob.count() == 10 + 1  # the decisions and the wearer's `connected`
    ob.close()


async def test_close_before_start_and_nothing_to_send(broker: Mosquitto, tmp_path: Path) -> None:
    sink = MqttSink(options(broker.url), db_path=tmp_path / "edge.db", class_names=CLASSES)
    assert sink.close(1.0) == 0


async def test_stopped_before_the_backlog_is_sent_says_offline_and_keeps_the_rest(
        broker: Mosquitto, tmp_path: Path) -> None:
    async with Collector(broker, "wearable-edge/testhub/status") as c:
        sink = MqttSink(options(broker.url), db_path=tmp_path / "edge.db", class_names=CLASSES)
        sink.start()
        for i in range(3000):
            sink.submit(decision("anna", i))
        assert await asyncio.to_thread(sink.flush, 10)
        await c.wait_for("online", lambda: c.on(sink.topics.status) != [])
        await until("publishing", lambda: sink.stats.snapshot().get("published", 0) > 0)
        assert await asyncio.to_thread(sink._writer.close, 5) == 0
        left = await sink.publisher.stop(0.0)  # no time to drain: cut off mid-backlog
        await c.wait_for("offline", lambda: len(c.messages) == 2)
    assert [m.payload for m in c.messages] == [b"online", b"offline"]
    assert 0 < left < 3001
    ob = Outbox(tmp_path / "edge.db")
    assert ob.count() == left  # the rest waits for the next start
    ob.close()


async def test_a_full_backlog_drops_oldest_states_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker")  # not started yet: the hub is offline
    sink = MqttSink(options(broker.url, backlog_max=100), db_path=tmp_path / "edge.db",
                    class_names=CLASSES)
    with caplog.at_level(logging.WARNING, logger="edge.sinks.mqtt"):
        sink.start()
        sink.submit(Event("anna", "dev-anna", 0.0, "alert", {"rule": "no_contact"}))
        for i in range(150):
            sink.submit(decision("anna", i))
        assert await asyncio.to_thread(sink.flush, 10)
    assert sink.stats.snapshot()["backlog_dropped"] == 52  # 152 rows, bound 100: 52 states
    assert any("dropping the oldest derived states" in r.getMessage() for r in caplog.records)
    with broker:
        async with Collector(broker, "wearable-edge/#") as c:
            assert await sink.wait_published(10)
            await c.wait_for("the overflow report",
                             lambda: c.on("wearable-edge/testhub/hub/event") != [])
            await sink.aclose(5)
    (report,) = [m.json() for m in c.on("wearable-edge/testhub/hub/event")]
    assert report["kind"] == "backlog_overflow"
    assert report["detail"] == {"dropped": 52, "dropped_total": 52, "backlog_max": 100}
    assert len(c.on("wearable-edge/testhub/anna/alert")) == 1  # the alert was kept
    states = [m.json()["t"] for m in c.on("wearable-edge/testhub/anna/state")]
    assert states == [decision("anna", i).t for i in range(52, 150)]  # the newest, in order


async def test_retired_wearers_are_removed_at_start_and_no_longer_published(
        broker: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    first = MqttSink(options(broker.url), db_path=db, class_names=CLASSES)
    first.start()
    for w in ("anna", "bob"):
        first.submit(decision(w, 0))
    assert await first.wait_published(10)
    await first.aclose(5)
    # bob moved out: the operator lists him under [mqtt] retired and restarts the hub
    sink = MqttSink(options(broker.url, retired=["bob"]), db_path=db, class_names=CLASSES)
    sink.start()
    sink.submit(decision("anna", 1))
    sink.submit(decision("bob", 1))
    assert await sink.wait_published(10)
    await sink.aclose(5)
    assert sink.stats.snapshot()["retired_wearer_records"] == 1
    async with Collector(broker, "#", client_id="after") as after:
        await after.wait_for("anna's retained state", lambda: bool(
            after.on("wearable-edge/testhub/anna/state")))
        await asyncio.sleep(0.3)
    topics = {m.topic for m in after.messages}
    assert not any("bob" in t for t in topics), sorted(topics)
    assert after.on("wearable-edge/testhub/anna/state")[-1].json()["t"] == decision("anna", 1).t
