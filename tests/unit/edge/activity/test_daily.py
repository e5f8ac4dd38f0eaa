"""edge.activity.daily: closing a wearer's days from stored epochs, once each, with trends."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

from edge.activity.daily import DAY_KIND, TREND_KIND, close_day, local_midnight
from edge.activity.options import ActigraphyOptions
from edge.activity.store import ActivityStore
from edge.decisions import Event
from edge.sinks.mqtt.messages import MessageBuilder
from edge.sinks.mqtt.topics import Topics
from tests.fakes.actigraphy import START, stored_resident

DAY0 = START.date()
# the fake resident sleeps so still that a night now and then holds 2 h without a count,
# which the non-wear rule would take off the wrist; these tests are about the days
STILL_SLEEPER = ActigraphyOptions(nonwear_min=0)


def close(st: ActivityStore, day: date, opts: ActigraphyOptions | None = None):  # type: ignore[no-untyped-def]
    return close_day(st, "ada", "dev-1", day, opts or STILL_SLEEPER,
                     now=local_midnight(day + timedelta(days=1)))


def test_each_day_is_published_once_and_the_fragmented_nights_raise_a_trend(
        tmp_path: Path) -> None:
    st = stored_resident(tmp_path, fragmented_from=10)
    outcomes = [close(st, DAY0 + timedelta(days=k)) for k in range(14)]
    assert outcomes[0].skipped == "too_short"  # one day is not a rhythm
    published = [o for o in outcomes if not o.skipped]
    assert len(published) >= 12
    events = [e for o in outcomes for e in o.events]
    days = [e for e in events if e.kind == DAY_KIND]
    assert [e.detail["day"] for e in days] == [o.day.isoformat() for o in published]
    last = days[-1].detail
    assert 0.5 < last["IS"] <= 1 and last["L5_start"] is not None and last["M10_start"]
    assert last["night"] == (DAY0 + timedelta(days=12)).isoformat()
    assert last["waso_min"] > 60 and last["sleep_onset"].startswith(last["night"])
    assert last["sleep_algorithm"].startswith("Sadeh")
    assert all(e.t == local_midnight(date.fromisoformat(e.detail["day"]) + timedelta(days=1))
               for e in days)
    trends = [e for e in events if e.kind == TREND_KIND]
    waso = [e for e in trends if e.detail["measure"] == "waso_min"]
    assert len(waso) == 1 and waso[0].detail["direction"] == "rising"
    # the small hours of day 10 end night 9: nights 9, 10 and 11 are the first three fragmented
    assert waso[0].detail["first_day"] == (DAY0 + timedelta(days=9)).isoformat()
    assert waso[0].detail["value"] > waso[0].detail["band_high"]
    # every stored day holds its night, but the last (it has not ended)
    rows = st.days("ada")
    assert [r.day for r in rows] == [DAY0 + timedelta(days=k) for k in range(14)]
    assert all(r.night for r in rows[:-1]) and rows[-1].night is None
    assert math.isnan(rows[0].measures.get("IS"))


def test_a_closed_day_is_not_closed_again_and_a_restart_does_not_repeat_a_trend(
        tmp_path: Path) -> None:
    st = stored_resident(tmp_path, fragmented_from=10)
    for k in range(14):
        close(st, DAY0 + timedelta(days=k))
    again = close(st, DAY0 + timedelta(days=13))
    assert again.skipped == "already_closed" and not again.events
    st.close()
    # the hub restarts and closes the last day again (its row lost, say): no trend event twice
    reopened = ActivityStore(st.path)
    with reopened.conn:
        reopened.conn.execute("DELETE FROM activity_days WHERE day = ?",
                              ((DAY0 + timedelta(days=13)).isoformat(),))
    redo = close(reopened, DAY0 + timedelta(days=13))
    assert [e.kind for e in redo.events] == [DAY_KIND]


def test_missed_days_are_caught_up_and_old_epochs_expire(tmp_path: Path) -> None:
    st = stored_resident(tmp_path, days=12)
    opts = ActigraphyOptions(history_days=9, nonwear_min=0)
    close(st, DAY0 + timedelta(days=3), opts)
    out = close(st, DAY0 + timedelta(days=11), opts)  # the hub was off for a week
    assert out.days_written == 9  # the last stored day again, and every day after it
    assert [e.kind for e in out.events] == [DAY_KIND]
    span = st.epoch_span("ada")
    assert span is not None
    assert span[0] == local_midnight(DAY0 + timedelta(days=12)) - 9 * 86400.0


def test_the_day_and_trend_events_leave_through_mqtt_as_scalars_only(tmp_path: Path) -> None:
    st = stored_resident(tmp_path, fragmented_from=10)
    events: list[Event] = []
    for k in range(14):
        events += close(st, DAY0 + timedelta(days=k)).events
    builder = MessageBuilder(Topics("wearable-edge", "hub"))
    for ev in (events[-1], next(e for e in events if e.kind == TREND_KIND)):
        msgs = builder.build(ev)
        assert msgs, ev.kind
        body = msgs[-1].body
        assert body is not None and body["kind"] == ev.kind
        assert all(v is None or isinstance(v, str | int | float) for v in body["detail"].values())
        assert body["detail"] == {k: (round(v, 4) if isinstance(v, float) else v)
                                  for k, v in ev.detail.items()}
