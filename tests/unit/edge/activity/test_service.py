"""edge.activity.service: taps -> stored epochs -> a day closed after its midnight, on the loop."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np

from edge.activity.daily import DAY_KIND, local_midnight
from edge.activity.epochs import ActivityEpoch
from edge.activity.options import ActigraphyOptions
from edge.activity.service import ActivityService
from edge.activity.store import ActivityStore
from edge.decisions import Event, Wearer
from firmware_bridge.protocol import SampleFormat, SensorInfo
from tests.fakes.actigraphy import resident_epochs

ACC = SensorInfo(1, "acc", "g", 30.0, 3, SampleFormat.INT16, 1.0 / 4096.0)
DAY0 = date(2024, 3, 4)


def feed(tap, t0: float, seconds: int, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
    """``seconds`` of a moving wrist from device second ``t0``, in 10 s packets."""
    rng = np.random.default_rng(seed)
    for k in range(seconds // 10):
        g = np.array([-0.2, 0.1, 0.97]) + 0.3 * rng.standard_normal((300, 3))
        tap(ACC, t0 + 10 * k + np.arange(300) / 30.0, ACC.to_raw(g))


async def test_epochs_are_stored_and_the_day_is_closed_after_its_midnight(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    series = resident_epochs(3, seed=4)  # three days before the one the tap ends
    t_day0 = local_midnight(DAY0)
    before = ActivityStore(db)
    before.write_epochs([
        ActivityEpoch("ada", "dev-1", t_day0 + 60.0 * i, 60, (int(a), 0, 0), float(a), None)
        for i, a in enumerate(series.activity[:-10])])  # up to 23:50 of the third day
    before.close()
    emitted: list[Event] = []
    svc = ActivityService(ActigraphyOptions(nonwear_min=0), db, emit=emitted.append)
    midnight = local_midnight(DAY0 + timedelta(days=3))
    tap = svc.tap("dev-1", Wearer("dev-1", "ada"), lambda t: midnight - 600.0 + t)
    feed(tap, 0.0, 1200)  # 23:50 -> 00:10
    await svc.close(30.0)
    assert [e.kind for e in emitted] == [DAY_KIND]
    ev = emitted[0]
    assert ev.resident == "ada" and ev.device == "dev-1" and ev.t == midnight
    assert ev.detail["day"] == (DAY0 + timedelta(days=2)).isoformat()
    h = svc.health()
    assert h["days_closed"] == 1 and h["epochs_stored"] == h["activity_epochs"] >= 18
    after = ActivityStore(db, readonly=True)
    rows = after.epochs("ada", midnight - 600, midnight + 600)
    after.close()
    assert rows is not None and rows.t[0] == midnight - 600 and rows.t[-1] >= midnight + 480


async def test_an_unwritable_database_keeps_then_counts_the_epochs(tmp_path: Path) -> None:
    db = tmp_path / "not-a-file"
    db.mkdir()  # sqlite cannot open a directory: every write fails
    emitted: list[Event] = []
    svc = ActivityService(ActigraphyOptions(), db, emit=emitted.append)
    tap = svc.tap("dev-1", Wearer("dev-1", "ada"), lambda t: 1_700_000_000.0 + t)
    feed(tap, 0.0, 600)
    await svc.close(10.0)
    h = svc.health()
    assert h["write_failures"] >= 1 and "epochs_stored" not in h
    assert h["epochs_lost_at_shutdown"] == h["activity_epochs"] >= 8
    assert emitted == []
