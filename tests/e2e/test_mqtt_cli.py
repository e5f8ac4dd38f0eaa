"""``edge-daemon --device sim --duration 20 --speed 20 --mqtt mqtt://127.0.0.1:PORT``, as written.

The form operators will type, against a real Mosquitto: the run ends by itself, every
decision in the database reached the broker (unique message ids), Home Assistant's configs
are retained, and the hub's status ends ``offline``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.daemon import run_cli
from tests.fakes.mosquitto import Collector, Mosquitto, require_mosquitto

pytestmark = pytest.mark.slow


async def test_the_documented_command_line(tmp_path: Path) -> None:
    require_mosquitto()
    state = tmp_path / "state"
    with Mosquitto(tmp_path / "broker") as broker:
        async with Collector(broker, "#") as c:
            proc = await asyncio.to_thread(run_cli, [
                "--device", "sim", "--duration", "20", "--speed", "20", "--mqtt",
                f"mqtt://127.0.0.1:{broker.port}", "--state-dir", str(state),
                "--status", "off"], timeout=120)
            assert proc.returncode == 0, proc.stderr
            await asyncio.sleep(0.5)
        async with Collector(broker, "homeassistant/#", client_id="late") as late:
            await late.wait_for("retained configs", lambda: len(late.messages) >= 6)
    conn = sqlite3.connect(f"file:{state / 'edge.db'}?mode=ro", uri=True)
    stored = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    conn.close()
    states = [m.json() for m in c.messages if m.topic.endswith("/state")]
    assert stored > 0 and len({s["id"] for s in states}) == stored
    assert all(m.retain for m in late.messages)
    status = [m.payload for m in c.messages if m.topic.endswith("/status")]
    assert status[0] == b"online" and status[-1] == b"offline"
