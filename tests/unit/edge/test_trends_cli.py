"""``edge-trends``: the CSV reader refuses bad input in one line, and the outputs it promises."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from edge.trends import cli
from edge.trends.csvio import read_epochs
from tests.fakes.actigraphy import resident_epochs


def write_csv(path: Path, days: float = 3, epoch_s: int = 60, *, light: bool = False,
              start: datetime = datetime(2024, 3, 4, 13, 0), tz: str = "") -> Path:
    series = resident_epochs(int(np.ceil(days)) + 1, seed=2)
    n = int(days * 86400 // epoch_s)
    step = max(1, epoch_s // 60)
    act = series.activity[: n * step : step] if epoch_s >= 60 else np.repeat(
        series.activity, 60 // epoch_s)[:n]
    lines = ["time,activity" + (",light" if light else "")]
    for i in range(n):
        t = (start + timedelta(seconds=i * epoch_s)).isoformat() + tz
        lines.append(f"{t},{act[i]:.0f}" + (",250.5" if light else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def edit(path: Path, line: int, text: str | None) -> Path:
    """Replace (or with None delete) 1-based ``line`` of ``path``."""
    rows = path.read_text().splitlines()
    if text is None:
        del rows[line - 1]
    else:
        rows[line - 1] = text
    path.write_text("\n".join(rows) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    code, out, err = run(capsys, "rhythm", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"edge-trends: {path}: ")
    return lines[0]


def test_gap_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = edit(write_csv(tmp_path / "a.csv"), 101, None)
    assert "line 101: gap of 1 min after 2024-03-04T14:38:00" in refused(capsys, p)


def test_non_monotonic_times_are_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = edit(write_csv(tmp_path / "a.csv"), 50, "2024-03-04T13:30:00,10")
    line = refused(capsys, p)
    assert "line 50: time 2024-03-04T13:30:00 is not after the previous" in line
    assert "times must increase" in line


def test_duplicate_times_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = edit(write_csv(tmp_path / "a.csv"), 50, "2024-03-04T13:47:00,10")
    assert "is not after the previous" in refused(capsys, p)


def test_mixed_epoch_lengths_are_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = write_csv(tmp_path / "a.csv")
    rows = p.read_text().splitlines()
    rows.insert(200, "2024-03-04T16:18:30,5")  # a 30 s step inside 60 s epochs
    p.write_text("\n".join(rows) + "\n")
    assert "mixed epoch lengths" in refused(capsys, p)


def test_fewer_than_two_days_are_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = write_csv(tmp_path / "a.csv", days=1.5)
    line = refused(capsys, p)
    assert "covers 1 d 12 h (2160 epochs of 60 s)" in line and "at least 2 days" in line


@pytest.mark.parametrize(("row", "fragment"), [
    ("2024-03-04T13:10:00,lots", "line 11: activity 'lots' is not a number"),
    ("2024-03-04T13:10:00,-4", "line 11: activity '-4' must be a finite number >= 0"),
    ("2024-03-04T13:10:00,nan", "line 11: activity 'nan' must be a finite number >= 0"),
    ("2024-03-04 25:10,3", "line 11: time '2024-03-04 25:10' is not ISO 8601"),
    ("2024-03-04T13:10:00,3,4", "line 11: 3 fields, the header has 2"),
    ("2024-03-04T13:10:00+01:00,3", "line 11: time '2024-03-04T13:10:00+01:00' mixes times"),
])
def test_malformed_values_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      row: str, fragment: str) -> None:
    p = edit(write_csv(tmp_path / "a.csv"), 11, row)
    assert fragment in refused(capsys, p)


@pytest.mark.parametrize(("header", "fragment"), [
    ("time,counts", "no 'activity' column (header: time,counts)"),
    ("when,activity", "no 'time' column"),
])
def test_missing_columns_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     header: str, fragment: str) -> None:
    p = edit(write_csv(tmp_path / "a.csv"), 1, header)
    assert fragment in refused(capsys, p)


def test_empty_and_absent_files_are_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty file" in refused(capsys, empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text("time,activity\n")
    assert "0 epoch(s)" in refused(capsys, header_only)
    assert "cannot read" in refused(capsys, tmp_path / "nope.csv")


def test_an_epoch_that_does_not_divide_an_hour_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_csv(tmp_path / "a.csv", epoch_s=60)
    rows = p.read_text().splitlines()
    t0 = datetime(2024, 3, 4)
    body = [f"{(t0 + timedelta(seconds=7 * i)).isoformat()},1" for i in range(len(rows) - 1)]
    p.write_text("\n".join([rows[0], *body]) + "\n")
    assert "epoch length 7 s does not divide an hour" in refused(capsys, p)


def test_json_has_the_promised_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_csv(tmp_path / "a.csv", days=4)
    code, out, err = run(capsys, "rhythm", str(p), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc) == ["IS", "IV", "RA", "L5", "M10", "L5_start", "M10_start", "nights"]
    assert 0 < doc["IS"] <= 1 and doc["IV"] > 0 and 0 < doc["RA"] <= 1
    assert len(doc["L5_start"]) == 5 and doc["L5_start"][2] == ":"
    assert len(doc["nights"]) >= 2
    assert set(doc["nights"][0]) >= {"night", "sleep_onset", "wake_time", "total_sleep_min",
                                     "sleep_efficiency", "waso_min", "awakenings"}


@pytest.mark.parametrize("epoch_s", [30, 60])
def test_epochs_out_has_one_row_per_input_epoch(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                epoch_s: int) -> None:
    p = write_csv(tmp_path / "a.csv", days=2.5, epoch_s=epoch_s)
    out_csv = tmp_path / "sleep.csv"
    code, out, _ = run(capsys, "rhythm", str(p), "--epochs-out", str(out_csv))
    assert code == 0 and "interdaily stability" in out
    rows = out_csv.read_text().splitlines()
    inputs = p.read_text().splitlines()
    assert rows[0] == "time,sleep" and len(rows) == len(inputs)
    assert [r.split(",")[0] for r in rows[1:]] == [r.split(",")[0] for r in inputs[1:]]
    values = {int(r.split(",")[1]) for r in rows[1:]}
    assert values == {-1, 0, 1}
    assert rows[1].endswith(",-1")  # an edge epoch: the algorithm cannot score it


def test_utc_offsets_are_accepted_and_light_is_read(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "a.csv", days=2, light=True, tz="+02:00")
    f = read_epochs(p)
    assert f.series.start == datetime(2024, 3, 4, 13, 0) and f.series.epoch_s == 60
    assert f.series.light is not None and f.series.light[0] == 250.5


def test_report_lists_days_and_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_csv(tmp_path / "a.csv", days=9)
    code, out, err = run(capsys, "report", str(p), "--json", "--baseline-days", "4")
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["days"]) == 10 and "events" in doc
    code, out, _ = run(capsys, "report", str(p))
    assert code == 0 and "trend events" in out


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    p = write_csv(tmp_path / "a.csv", days=8)
    png = tmp_path / "weeks.png"
    code, _, err = run(capsys, "plot", str(p), "--out", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_to_install_the_host_extra(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    p = write_csv(tmp_path / "a.csv", days=3)
    code, _, err = run(capsys, "rhythm", str(p), "--plot", str(tmp_path / "x.png"))
    assert code == 1 and "install the host extra" in err
