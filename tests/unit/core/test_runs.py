"""core.runs: the run-directory layout every reader and writer of a RUN shares."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.runs import RunLayout


def test_every_file_of_a_run_has_its_path(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.config == tmp_path / "config.toml"
    assert run.metrics == tmp_path / "metrics.json"
    assert run.report == tmp_path / "report.md"
    assert run.plot("ablation.png") == tmp_path / "plots" / "ablation.png"
    assert run.student_checkpoint == tmp_path / "student.pt"
    assert run.teacher_checkpoint("teacher_bvp") == tmp_path / "teachers" / "teacher_bvp.pt"
    assert run.calib_windows == tmp_path / "windows" / "calib.npz"
    assert run.heldout_windows == tmp_path / "windows" / "heldout.npz"
    assert run.demo_recording == tmp_path / "demo_recording.npz"


def test_root_may_be_a_string_and_the_layout_is_frozen(tmp_path: Path) -> None:
    run = RunLayout(str(tmp_path))  # type: ignore[arg-type]
    assert run.root == tmp_path and run == RunLayout(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.root = tmp_path / "elsewhere"  # type: ignore[misc]


def test_teacher_checkpoints_lists_what_is_there_in_name_order(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.teacher_checkpoints() == []  # no teachers/ folder: nothing, no error
    run.teachers_dir.mkdir()
    for name in ("teacher_eda_temp", "teacher_acc", "teacher_bvp"):
        run.teacher_checkpoint(name).write_bytes(b"")
    (run.teachers_dir / "notes.txt").write_text("not a checkpoint")
    assert [p.stem for p in run.teacher_checkpoints()] == [
        "teacher_acc", "teacher_bvp", "teacher_eda_temp",
    ]  # fmt: skip
