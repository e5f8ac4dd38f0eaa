"""The broker goes away mid-run and comes back: every message made meanwhile arrives, in order.

A persistent subscriber (its session and queued QoS-1 messages survive the broker's restart)
is the witness. The MQTT sink and the SQLite sink share the hub's database, as in the daemon.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path

from edge.sinks import SqliteSink, open_database
from edge.sinks.mqtt import MqttSink
from tests.fakes.mosquitto import Collector, Link, Mosquitto, Received, require_mosquitto, until
from tests.fakes.mqtt import CLASSES, decision, options

WEARERS = ("anna", "bob")
BURST = 500  # decisions per wearer sent in one go
OUTAGE_S = 30.0  # how long the broker stays away, as an operator restarting it would
OUTAGE_STEPS = 60  # decisions per wearer made during the outage, one every 0.5 s
TOTAL = 20 + BURST + 40 + OUTAGE_STEPS + 10


def unique(messages: list[Received]) -> list[Received]:
    """Messages without QoS-1 duplicates (same id), in arrival order."""
    seen: set[str] = set()
    out = []
    for m in messages:
        if not m.payload.startswith(b"{"):
            continue  # the status topic's online/offline
        mid = m.json().get("id")
        if mid is not None and mid not in seen:
            seen.add(mid)
            out.append(m)
    return out


async def test_broker_stopped_mid_run_then_restarted_nothing_lost(tmp_path: Path) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    db = tmp_path / "edge.db"
    sqlite = SqliteSink(db, retention_days=0, commit_interval_s=0.1)
    sink = MqttSink(options(broker.url, retry_min_s=0.1, retry_max_s=0.3), db_path=db,
                    class_names=CLASSES)
    i = 0

    async def produce(n: int, *, pause: bool = True) -> None:
        nonlocal i
        for _ in range(n):
            for w in WEARERS:
                d = decision(w, i)
                sqlite.submit(d)
                sink.submit(d)
            i += 1
            if pause:
                await asyncio.sleep(0.005)

    try:
        async with Collector(broker, "wearable-edge/#", persistent=True,
                             client_id="witness") as witness:
            sqlite.start()
            sink.start()
            await produce(20)
            assert await sink.wait_published(10)
            # a burst, and the broker stops while it is being sent: some messages are in
            # flight (sent, not acknowledged) when the link goes
            await produce(BURST, pause=False)
            assert await asyncio.to_thread(sink.flush, 10)
            await until("the burst is being sent",
                        lambda: sink.stats.snapshot().get("published", 0) > 100, within_s=10)
            broker.stop()  # mid-run: the hub keeps deciding
            await until("the sink notices", lambda: not sink.health()["connected"])
            sent_before = sink.stats.snapshot()["published"]
            assert sent_before < sink.stats.snapshot()["outbox_written"]  # cut off mid-burst
            await produce(40)
            assert await asyncio.to_thread(sink.flush, 10)
            assert sink.pending() >= 40 * len(WEARERS), sink.health()  # held in the outbox
            # the outage goes on for OUTAGE_S while the hub keeps deciding: nothing made in it
            # may be lost
            for _ in range(OUTAGE_STEPS):
                await produce(1)
                await asyncio.sleep(OUTAGE_S / OUTAGE_STEPS)
            broker.start()
            await produce(10)
            assert await sink.wait_published(20), sink.health()
            written = sink.stats.snapshot()["outbox_written"]
            await witness.wait_for("every message", lambda: len(unique(witness.messages))
                                   >= written, within_s=20)
            assert witness.subscriptions >= 2  # it really was cut off and came back
            await sink.aclose(5)
            assert await asyncio.to_thread(sqlite.close, 5) == 0
    finally:
        broker.stop()

    got = unique(witness.messages)
    assert len(got) == written  # broker side == what the outbox was given
    states = [m for m in got if m.topic.endswith("/state")]
    conn = open_database(db, readonly=True)
    stored = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    left = conn.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0]
    conn.close()
    assert len(states) == stored == TOTAL * len(WEARERS) and left == 0
    per_wearer: dict[str, list[float]] = defaultdict(list)
    for m in states:
        per_wearer[m.topic.split("/")[2]].append(json.loads(m.payload)["t"])
    for w in WEARERS:
        assert per_wearer[w] == [decision(w, k).t for k in range(TOTAL)]  # in order, once


async def test_messages_lost_in_transit_when_the_link_is_cut_are_sent_again(
        tmp_path: Path) -> None:
    """The link is held (messages sent, never acknowledged), then cut: those messages were
    deleted nowhere, so they go out again after reconnecting, with the same ids."""
    require_mosquitto()
    with Mosquitto(tmp_path / "broker") as broker:
        async with Link(broker) as link, Collector(broker, "wearable-edge/#") as witness:
            sink = MqttSink(options(link.url, retry_min_s=0.1, retry_max_s=0.3),
                            db_path=tmp_path / "edge.db", class_names=CLASSES)
            sink.start()
            for k in range(10):
                sink.submit(decision("anna", k))
            assert await sink.wait_published(10)
            link.hold()
            for k in range(10, 40):
                sink.submit(decision("anna", k))
            await until("messages in flight", lambda: link.held_bytes > 0)
            link.cut()
            await until("the sink notices", lambda: not sink.health()["connected"])
            for k in range(40, 50):
                sink.submit(decision("anna", k))
            assert await asyncio.to_thread(sink.flush, 10)
            link.restore()
            assert await sink.wait_published(10), sink.health()
            written = sink.stats.snapshot()["outbox_written"]
            await witness.wait_for("every message", lambda: len(unique(witness.messages))
                                   >= written)
            await sink.aclose(5)
    states = [m.json()["t"] for m in unique(witness.messages) if m.topic.endswith("/state")]
    assert states == [decision("anna", k).t for k in range(50)]
    assert sink.stats.snapshot()["connects"] == 2  # the same sink, reconnected
