"""What the hub stored, read back: edge.activity.report and ``edge-trends report/plot --db``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from edge.activity.daily import close_day, local_midnight
from edge.activity.options import ActigraphyOptions
from edge.activity.report import ActivityReadError, read_activity
from edge.trends import cli
from tests.fakes.actigraphy import START, stored_resident

DAY0 = START.date()
# the fake resident sleeps so still that the non-wear rule would take nights off the wrist
STILL_SLEEPER = ActigraphyOptions(nonwear_min=0)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    st = stored_resident(tmp_path_factory.mktemp("hub"), fragmented_from=10)
    for k in range(14):
        day = DAY0 + timedelta(days=k)
        close_day(st, "ada", "dev-1", day, STILL_SLEEPER,
                  now=local_midnight(day + timedelta(days=1)))
    st.close()
    return st.path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_stored_weeks_come_back_with_the_trend_the_hub_raised(db: Path) -> None:
    (w,) = read_activity(db, days=7, nonwear_min=0)
    assert w.resident == "ada" and len(w.days) == 7 and w.days[-1].day == DAY0 + timedelta(13)
    assert [t.measure for t in w.trends].count("waso_min") == 1
    assert w.series is not None and w.sleep is not None and w.sleep.shape == (w.series.n,)
    assert w.series.days == pytest.approx(7, abs=0.01)
    with pytest.raises(ActivityReadError, match="no activity stored for 'bob'"):
        read_activity(db, "bob")
    with pytest.raises(ActivityReadError, match="no database at"):
        read_activity(db.parent / "missing.db")


def test_report_in_words_and_json_and_a_plot(db: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--db", str(db), "--days", "14")
    assert code == 0
    assert out.startswith("ada: 14 days stored by the hub")
    assert "wake after sleep onset rising: 3 days in a row above" in out
    assert "last night (" in out
    code, out, _ = run(capsys, "report", "--db", str(db), "--wearer", "ada", "--json")
    doc = json.loads(out)
    (w,) = doc["wearers"]
    assert w["resident"] == "ada" and len(w["days"]) == 14
    assert any(e["measure"] == "waso_min" for e in w["events"])
    assert w["days"][-2]["night"]["sleep_onset"] and w["days"][-1]["night"] is None
    pytest.importorskip("matplotlib")
    png = tmp_path / "ada.png"
    code, _, err = run(capsys, "plot", "--db", str(db), "--out", str(png), "--days", "14",
                       "--nonwear-min", "0")
    assert code == 0 and png.stat().st_size > 10_000 and "wrote" in err


def test_a_database_without_activity_is_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from edge.sinks.sqlite import open_database

    plain = tmp_path / "edge.db"
    open_database(plain).close()  # a hub that has stored decisions only
    code, out, err = run(capsys, "report", "--db", str(plain))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "has no activity tables" in err
