"""train.compare: runs side by side from their metrics.json, one seed or several."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.cli import main
from train.compare import compare_runs
from train.errors import DataError


def _model(role: str, mods: list[str], f1: float) -> dict:
    return {"role": role, "modalities": mods, "macro_f1": f1}


def _write_run(root: Path, mods: list[str], scores: dict[str, list[float]], seeds: list[int],
               variant: str = "kd_ca") -> Path:
    """A run folder whose metrics.json has the fields fit writes (per-seed scores given)."""
    roles = {"teacher_bvp": ("teacher", ["bvp"]), "teacher_rr": ("teacher", ["rr"]),
             "teacher_fusion_late": ("teacher", ["bvp", "eda", "ecg", "rr"])}
    models = {n: _model(*roles.get(n, ("student", mods)), f1=v[0]) for n, v in scores.items()}
    doc: dict = {"seed": seeds[0], "cv": {"kind": "loso"}, "dataset": {"kind": "wesad"},
                 "models": models,
                 "student": {"variant": variant, "modalities": mods, "params": 1, "macs": 2}}
    if len(seeds) > 1:
        doc["seeds"] = {"seeds": seeds, "models": {
            n: {"macro_f1_mean": sum(v) / len(v), "macro_f1_sd": 0.01, "macro_f1_per_seed": v}
            for n, v in scores.items()}}
    root.mkdir(parents=True)
    (root / "metrics.json").write_text(json.dumps(doc))
    return root


def test_each_run_gets_alone_best_distilled_and_the_teacher_on_its_inputs(tmp_path: Path) -> None:
    hr = _write_run(tmp_path / "hr", ["rr"], {
        "teacher_bvp": [0.8, 0.8], "teacher_rr": [0.90, 0.92], "teacher_fusion_late": [0.95, 0.95],
        "student_alone": [0.88, 0.90], "student_kd_equal": [0.87, 0.87],
        "student_kd_ca": [0.91, 0.93]}, seeds=[7, 8])
    wrist = _write_run(tmp_path / "wrist", ["bvp", "eda"], {
        "teacher_bvp": [0.85], "teacher_rr": [0.9], "teacher_fusion_late": [0.97],
        "student_alone": [0.82], "student_kd_equal": [0.84], "student_kd_ca": [0.83]},
        seeds=[7], variant="kd_equal")
    doc = compare_runs([hr, wrist])
    a, b = doc["runs"]
    assert a["seeds"] == [7, 8] and a["models"]["student_kd_ca"]["mean"] == pytest.approx(0.92)
    assert (a["best_distilled"], a["best_same_view_teacher"], a["best_teacher"]) == (
        "student_kd_ca", "teacher_rr", "teacher_fusion_late")
    assert (b["best_distilled"], b["best_same_view_teacher"], b["deployed"]) == (
        "student_kd_equal", "teacher_bvp", "student_kd_equal")
    assert b["models"]["student_alone"] == {"mean": 0.82, "sd": 0.0, "per_seed": [0.82]}
    assert not doc["same_seeds"] and "different seeds" in doc["note"]


def test_the_command_writes_json_markdown_and_plot(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scores = {"teacher_rr": [0.9], "student_alone": [0.8], "student_kd_ca": [0.85]}
    runs = [_write_run(tmp_path / n, ["rr"], scores, seeds=[7]) for n in ("a", "b")]
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    assert json.loads((out / "comparison.json").read_text())["same_seeds"] is True
    md = (out / "comparison.md").read_text()
    assert "0.850 ± 0.000 (student_kd_ca)" in md and (out / "comparison.png").stat().st_size > 0
    assert "Students side by side" in capsys.readouterr().out


def test_a_folder_that_is_not_a_run_is_one_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"no metrics\.json"):
        compare_runs([tmp_path, tmp_path])
    assert main(["compare", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a finished edge-train fit run" in err[0]
