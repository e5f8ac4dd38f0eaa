"""edge-train fit --out: a non-empty run folder is refused unless --force (issue 17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _fit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "train.cli", "fit", "--dataset", "arrays",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)


def test_fit_refuses_an_existing_run_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    run.mkdir()
    (run / "metrics.json").write_text('{"f1": 0.9}')
    p = _fit("--data", str(tmp_path / "none.npz"), "--out", str(run))
    assert p.returncode == 2
    assert "is not empty: choose another --out, or add --force" in p.stderr
    assert [x.name for x in run.iterdir()] == ["metrics.json"]


def test_a_failed_fit_with_force_puts_the_old_run_back_and_a_new_folder_is_not_left(
        tmp_path: Path) -> None:
    run = tmp_path / "run1"
    run.mkdir()
    (run / "metrics.json").write_text('{"f1": 0.9}')
    p = _fit("--data", str(tmp_path / "none.npz"), "--out", str(run), "--force")
    assert p.returncode == 2, p.stderr  # the data does not exist: fit fails
    assert (run / "metrics.json").read_text() == '{"f1": 0.9}'
    p = _fit("--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "new"))
    assert p.returncode == 2
    assert not (tmp_path / "new").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["run1"]
