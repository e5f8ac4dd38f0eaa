"""Helpers for the MQTT sink's tests: records, options for a test broker, a publisher process.

:func:`start_publisher` runs an :class:`~edge.sinks.mqtt.MqttSink` in a subprocess that
stores ``n`` decisions in its outbox, prints ``stored`` and then keeps running (publishing,
or retrying while the broker is away) until it is killed: what a daemon does at SIGKILL.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from edge.decisions import Decision
from edge.sinks.mqtt import MqttOptions

__all__ = ["CLASSES", "T0", "decision", "kill", "options", "start_publisher"]

REPO: Final = Path(__file__).resolve().parents[2]
CLASSES: Final = ("baseline", "stress", "amusement")
T0: Final = 1_700_000_000.0


def decision(resident: str, i: int, *, state: str | None = None, t0: float = T0) -> Decision:
    """The ``i``-th decision of ``resident`` (5 s apart); states cycle unless given."""
    s = state or CLASSES[(i // 3) % len(CLASSES)]
    p = {c: (0.8 if c == s else 0.1) for c in CLASSES}
    return Decision(resident, f"dev-{resident}", t0 + 5.0 * i, s, p, p, "model-x",
                    float(i), float(i) + 60.0, i)


def options(url: str, **changes: Any) -> MqttOptions:
    """Options for a test broker: fast retries, a fixed hub id."""
    base: dict[str, Any] = {"url": url, "hub_id": "testhub", "retry_min_s": 0.1,
                            "retry_max_s": 0.5, "keepalive_s": 5, "timeout_s": 5.0}
    base.update(changes)
    return MqttOptions(**base)


_PUBLISHER = """
import asyncio, sys
from edge.sinks.mqtt import MqttSink
from tests.fakes.mqtt import CLASSES, decision, options

async def main(url, db, n, keepalive):
    sink = MqttSink(options(url, keepalive_s=keepalive, client_id="crash-publisher"),
                    db_path=db, class_names=CLASSES)
    sink.start()
    for i in range(n):
        sink.submit(decision("anna", i))
    assert await asyncio.to_thread(sink.flush, 30.0)
    print("stored", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def start_publisher(url: str, db: Path, n: int, *, keepalive_s: int = 5) -> subprocess.Popen[str]:
    """The publishing subprocess; returns once it has stored its ``n`` decisions."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _PUBLISHER, url, str(db), str(n),
                             str(keepalive_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    line = proc.stdout.readline() if ready else "(nothing within 60 s)"
    if line.strip() != "stored":
        err = kill(proc)
        raise AssertionError(f"the publisher did not store its decisions: {line!r} {err}")
    return proc


def kill(proc: subprocess.Popen[str]) -> str:
    """SIGKILL the publisher (no shutdown of any kind); its stderr."""
    proc.kill()
    _, err = proc.communicate(timeout=10)  # also closes its pipes
    return err
