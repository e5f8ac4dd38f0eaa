"""train.progress and train.ui: library code reports events, only the UI draws them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fakes.recordings import wesad_dict, write_wesad_pickle
from train.data import load_wesad
from train.progress import ProgressEvent, no_progress
from train.synth import generate_dataset
from train.ui import RichProgress


def test_loading_reports_each_subject_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # importing it would now fail
    for sid, seed in (("S2", 1), ("S3", 2)):
        write_wesad_pickle(tmp_path, wesad_dict(((1, 330), (2, 90)), subject=sid, seed=seed),
                           subject=sid)  # fmt: skip
    events: list[ProgressEvent] = []
    load_wesad(tmp_path, modalities=["eda"], progress=events.append)
    assert [(e.task, e.done, e.total) for e in events] == [
        ("subjects", 0, 2), ("subjects", 1, 2), ("subjects", 2, 2),
    ]  # fmt: skip
    assert capsys.readouterr() == ("", "")


def test_synthesis_reports_each_subject_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    events: list[ProgressEvent] = []
    paths = generate_dataset(tmp_path, 1, 0, minutes_scale=0.05, progress=events.append)
    assert [p.name for p in paths] == ["S2.pkl"]
    assert [(e.task, e.done, e.total) for e in events] == [("subjects", 0, 1), ("subjects", 1, 1)]
    assert capsys.readouterr() == ("", "")


def test_rich_bars_follow_the_events() -> None:
    no_progress(ProgressEvent("jobs", "x", 0, 1))  # the default sink accepts anything
    with RichProgress() as bars:
        bars(ProgressEvent("epochs", "S2 teacher_bvp", 0, 4))
        bars(ProgressEvent("epochs", "S2 teacher_bvp", 3, 4))
        (task,) = bars.tasks
        assert (task.completed, task.total, task.description) == (3, 4, "S2 teacher_bvp")
        bars(ProgressEvent("epochs", "S2 student_alone", 0, 10))  # the next model: same bar
        (task,) = bars.tasks
        assert (task.completed, task.total, task.description) == (0, 10, "S2 student_alone")
        bars(ProgressEvent("jobs", "cross-validation", 1, 3))
        assert [t.description for t in bars.tasks] == ["S2 student_alone", "cross-validation"]
