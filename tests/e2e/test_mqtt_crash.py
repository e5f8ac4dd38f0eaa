"""SIGKILL of a publishing hub: its backlog is published after restart; its will says offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge.sinks.mqtt import MqttSink
from edge.sinks.mqtt.outbox import Outbox
from tests.fakes.mosquitto import Collector, Mosquitto, free_port, require_mosquitto
from tests.fakes.mqtt import CLASSES, kill, options, start_publisher

KEEPALIVE_S = 2  # small, so the test is short; the bound scales with it


async def test_sigkill_with_a_backlog_then_restart_publishes_the_backlog(tmp_path: Path) -> None:
    require_mosquitto()
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"  # no broker yet: everything stays in the outbox
    db = tmp_path / "edge.db"
    proc = start_publisher(url, db, 25)
    kill(proc)  # SIGKILL: no shutdown, no flush
    ob = Outbox(db)
    backlog = {json.loads(r.payload)["id"] for r in ob.peek(1000)}
    ob.close()
    assert len(backlog) == 26  # 25 decisions and the wearer's `connected`
    with Mosquitto(tmp_path / "broker", port=port) as broker:
        async with Collector(broker, "wearable-edge/#") as c:
            sink = MqttSink(options(url), db_path=db, class_names=CLASSES)  # the restart
            sink.start()
            await c.wait_for("the backlog", lambda: backlog <= {
                m.json()["id"] for m in c.messages if m.payload.startswith(b"{")})
            await sink.aclose(5)
    states = [m.json() for m in c.on("wearable-edge/testhub/anna/state")]
    assert [s["t"] for s in states] == sorted(s["t"] for s in states) and len(states) == 25
    ob = Outbox(db)
    assert ob.count() == 0
    ob.close()


async def test_last_will_offline_within_one_and_a_half_keepalives(tmp_path: Path) -> None:
    require_mosquitto()
    with Mosquitto(tmp_path / "broker") as broker:
        async with Collector(broker, "wearable-edge/testhub/status") as c:
            proc = start_publisher(broker.url, tmp_path / "edge.db", 1, keepalive_s=KEEPALIVE_S)
            try:
                await c.wait_for("online", lambda: [m.payload for m in c.messages] == [b"online"])
            finally:
                killed_at = time.monotonic()
                kill(proc)
            await c.wait_for("offline", lambda: len(c.messages) == 2, within_s=3 * KEEPALIVE_S)
    offline = c.messages[1]
    assert offline.payload == b"offline"
    assert offline.at - killed_at <= 1.5 * KEEPALIVE_S
