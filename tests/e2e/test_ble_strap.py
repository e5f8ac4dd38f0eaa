"""A stock heart-rate strap end to end: emulated BlueZ -> the real bleak client -> decisions.

The daemon (``--device ble``, bleak and bleak-retry-connector in its own process) connects
through the private system bus to an emulated strap that serves only the standard profiles
(Heart Rate 0x180D with RR intervals and contact, Battery 0x180F, Device Information), fed
in real time from simulated beats. With the toy RR bundle (8 s windows, 20 s enrollment)
decisions reach SQLite within half a minute, each with the window's heart rate and RMSSD;
and the RR intervals themselves are nowhere in what the daemon wrote. A strap that sends a
heart rate without RR intervals fits no model: one line says so and what to do.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fakes.bluez import BATTERY_LEVEL, HEART_RATE_MEASUREMENT, FakeBlueZ, heart_rate_strap
from tests.fakes.daemon import db_rows, start_cli, stop_cli
from tests.fakes.hr import rr_runs_in, strap_values, toy_hr_bundle

pytestmark = pytest.mark.slow

STRAP = "C0:FF:EE:00:00:42"
FAST_BLE = "[ble]\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\nscan_timeout_s = 2.0\n"


@pytest.fixture(scope="module")
def hr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_hr_bundle(tmp_path_factory.getbasetemp())


def _daemon(bundle: Path, tmp: Path) -> Any:
    cfg = tmp / "edge.toml"
    cfg.write_text(FAST_BLE)
    return start_cli(["--config", str(cfg), "--device", "ble", "--ble-device", STRAP,
                      "--bundle", str(bundle), "--backend", "onnx", "--precision", "fp32",
                      "--db", str(tmp / "edge.db"), "--state-dir", str(tmp / "state"),
                      "--jsonl", str(tmp / "decisions.jsonl"), "--log-level", "debug",
                      "--status", "off", "--summary-json", str(tmp / "summary.json")])


async def _play(strap: Any, values: list[tuple[float, bytes, tuple[float, ...]]]) -> None:
    """The strap's notifications at their real times (it notifies once a second)."""
    start = time.monotonic()
    for t, value, _ in values:
        await asyncio.sleep(max(0.0, start + t - time.monotonic()))
        assert strap.notify(HEART_RATE_MEASUREMENT, value)


async def test_a_stock_strap_through_bleak_gets_decisions_in_sqlite(
        hr_bundle: Path, tmp_path: Path, bluez: FakeBlueZ) -> None:
    strap = bluez.add_peripheral(heart_rate_strap(STRAP, battery=64))
    values = strap_values(48.0, contact_losses=((40.0, 43.0),))
    proc = _daemon(hr_bundle, tmp_path)
    try:
        await strap.wait_notifying(BATTERY_LEVEL, 60)  # the last subscription the source makes
        await _play(strap, values)
        await bluez.drain(30)
        await asyncio.sleep(1.0)
        _, err = await asyncio.to_thread(stop_cli, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "no model fits" not in err  # the HELLO before the first RR is not a misfit
    rows = db_rows(tmp_path / "edge.db")
    assert len(rows) >= 4, err
    hr = np.array([r["hr_bpm"] for r in rows])
    assert ((hr > 90) & (hr < 130)).all()  # the simulated strap wearer rests at 110 bpm
    assert all(r["rmssd_ms"] > 0 for r in rows)
    events = db_rows(tmp_path / "edge.db", "events")
    kinds = [e["kind"] for e in events]
    assert "calibrated" in kinds and "no_contact" in kinds and "contact_restored" in kinds
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["decisions"] == len(rows)
    # the intervals the strap sent are raw data: in no output, as text (s or ms) or bytes
    sent = np.concatenate([np.asarray(rr) for _, _, rr in values if rr])
    sent = np.round(sent * 1024.0) / 1024.0  # as they crossed the air: in 1/1024 s
    outputs = b"".join(p.read_bytes() for p in (tmp_path / "edge.db", tmp_path / "summary.json",
                                                tmp_path / "decisions.jsonl"))
    outputs += err.encode()
    assert not rr_runs_in(outputs, sent)
    assert rr_runs_in(json.dumps(sent[20:30].tolist()).encode(), sent)  # the search works


async def test_a_strap_without_rr_intervals_is_one_line_and_no_crash(
        hr_bundle: Path, tmp_path: Path, bluez: FakeBlueZ) -> None:
    from firmware_bridge import gatt

    strap = bluez.add_peripheral(heart_rate_strap(STRAP))
    proc = _daemon(hr_bundle, tmp_path)
    try:
        await strap.wait_notifying(BATTERY_LEVEL, 60)
        for bpm in (71, 72, 72, 73):  # a strap set to send its heart rate only
            strap.notify(HEART_RATE_MEASUREMENT, gatt.encode_heart_rate_measurement(
                gatt.HeartRateMeasurement(bpm, (), True)))
            await asyncio.sleep(0.3)
        await bluez.drain(30)
        await asyncio.sleep(0.5)
        _, err = await asyncio.to_thread(stop_cli, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [ln for ln in err.splitlines() if "no model fits" in ln]
    assert len(lines) == 1, err
    assert f"{STRAP} (" in lines[0] and "offers hr[bpm]" in lines[0]
    assert "needs rr (RR intervals, s)" in lines[0] and "switch on RR" in lines[0]
    assert "Traceback" not in err and db_rows(tmp_path / "edge.db") == []
