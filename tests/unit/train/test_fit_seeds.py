"""train.fit with --seeds and the default split: a small in-process run end to end.

One run of two seeds on an arrays file that carries its own train/test split and no
subject ids: the default ``cv.kind = "auto"`` evaluates on that split, the ``seeds`` block
aggregates both seeds, the further seed's document is kept, the run record lists every
artifact, and the quick profile's report says its acceptance figures are not meant to pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from train.config import load_config
from train.fit import fit

OVERRIDES = [
    "workers=1",
    "teachers.steps=20",
    "student.steps=30",
    "student.variants=alone,kd_ca",
    "report.plots=false",
]


def _npz(path: Path, *, split: bool = True) -> Path:
    rng = np.random.default_rng(0)
    n, t = 60, 40
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 1, t)).astype(np.float32) + 2.5 * y[:, None, None]
    arrays = {"X": X, "y": y, "channels": np.array(["a"]), "sample_rate_hz": np.array(4.0)}
    if split:
        arrays["split"] = np.where(np.arange(n) % 5 == 0, "test", "train")  # both classes
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("seeds")
    cfg = load_config(overrides=[*OVERRIDES, "seed=3", "report.profile=quick"])
    res = fit("arrays", _npz(tmp / "a.npz"), tmp / "run", cfg, seeds=2)
    return tmp / "run", res.metrics


def test_the_files_split_is_the_default_evaluation(run: tuple[Path, dict]) -> None:
    _, m = run
    assert m["cv"]["kind"] == "fixed"
    assert [f["name"] for f in m["cv"]["folds"]] == ["fixed"]
    assert m["cv"]["folds"][0]["n_test"] == 12
    assert m["student"]["holdout_subjects"] == ["split=test"]


def test_no_split_and_no_subjects_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = load_config(overrides=OVERRIDES)
    with pytest.raises(ConfigError, match="neither a train/test split nor subject ids") as e:
        fit("arrays", _npz(tmp_path / "b.npz", split=False), tmp_path / "run", cfg)
    assert "\n" not in str(e.value) and e.value.key == "cv.kind"


def test_seeds_are_aggregated_and_kept(run: tuple[Path, dict]) -> None:
    root, m = run
    block = m["seeds"]
    assert block["seeds"] == [3, 4]
    per_seed = [m["models"]["student_alone"]["macro_f1"]]
    other = json.loads((root / "seeds" / "seed_4" / "metrics.json").read_text())
    assert other["seed"] == 4 and other["student"] == {}  # evaluated, nothing deployed
    per_seed.append(other["models"]["student_alone"]["macro_f1"])
    alone = block["models"]["student_alone"]
    assert alone["macro_f1_per_seed"] == pytest.approx(per_seed)
    assert alone["macro_f1_mean"] == pytest.approx(np.mean(per_seed))
    (paired,) = block["paired"]
    assert paired["model"] == "student_kd_ca" and paired["n_pairs"] == 2
    assert [r["seed"] for r in paired["per_seed"]] == [3, 4]
    assert m["acceptance"] == block["acceptance"]  # conclusions use the mean
    variant = m["student"]["variant"]
    means = {k: v["macro_f1_mean"] for k, v in block["models"].items() if "student_" in k}
    assert means[f"student_{variant}"] == max(means.values())


def test_every_run_is_recorded(run: tuple[Path, dict]) -> None:
    root, m = run
    rec = json.loads((root / "run.json").read_text())
    assert rec["config"]["seed"] == 3 and rec["config"]["loop"]["val_by"] == "time"
    assert len(rec["data"]["sha256"]) == 64 and len(rec["data"]["windows_sha256"]) == 64
    assert rec["data"]["n_windows"] == 60
    paths = {a["path"] for a in rec["artifacts"]}
    assert {"metrics.json", "report.md", "config.toml", "student.pt",
            "seeds/seed_4/metrics.json"} <= paths  # fmt: skip
    assert "run.json" not in paths
    assert rec["metrics"]["student_alone.macro_f1_mean"] == pytest.approx(
        m["seeds"]["models"]["student_alone"]["macro_f1_mean"]
    )


def test_the_report_speaks_to_its_reader(run: tuple[Path, dict]) -> None:
    root, _ = run
    text = (root / "report.md").read_text()
    assert "quick profile" in text and "not meant to pass" in text
    assert "## Over 2 seeds" in text and "student_kd_ca vs student_alone" in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert not any("issue" in h.lower() for h in headings)
    assert text.count("Why not") <= 1


def test_a_missed_acceptance_explains_itself_once(tmp_path: Path) -> None:
    # two student steps cannot reach the teacher: the verdict says why, once, nowhere else
    cfg = load_config(overrides=[*OVERRIDES, "teachers.steps=40", "student.steps=2"])
    m = fit("arrays", _npz(tmp_path / "a.npz"), tmp_path / "run", cfg).metrics
    assert "Why not" in m["acceptance"]["verdict"]
    assert not any("Why not" in n for n in m["notes"])
    text = (tmp_path / "run" / "report.md").read_text()
    assert text.count("Why not") == 1
    assert "quick profile" not in text
