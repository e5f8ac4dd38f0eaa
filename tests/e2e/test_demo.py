"""The demo is self-contained (issue 17): `edge-daemon --device sim` keeps its state in a
temporary folder, so two demo runs print the same decisions and leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.daemon import run_cli


def _decisions(stdout: str) -> tuple[list[tuple[object, ...]], list[str]]:
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    decisions = [(r["device"], r["window_index"], r["state"], round(r["probabilities"][r["state"]], 6))
                 for r in records if r["type"] == "decision"]
    return decisions, [r["kind"] for r in records if r["type"] == "event"]


def test_two_demo_runs_print_the_same_decisions_and_keep_no_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state")}
    runs = [run_cli(["--device", "sim", "--duration", "8", "--speed", "400", "--json"], env=env)
            for _ in range(2)]
    for p in runs:
        assert p.returncode == 0, p.stderr
        assert "demo state in " in p.stderr
    (first, first_events), (second, second_events) = (_decisions(p.stdout) for p in runs)
    n = min(len(first), len(second))
    assert n > 100
    assert first[:n] == second[:n]
    # each run enrolled its own baseline: the second did not reuse the first one's
    assert "calibrated" in first_events and "calibrated" in second_events
    state = home / ".local" / "state"  # where the demo kept its baseline before
    assert not state.exists(), sorted(state.rglob("*"))


def test_state_dir_keeps_the_demo_state(tmp_path: Path) -> None:
    p = run_cli(["--device", "sim", "--duration", "3", "--speed", "400",
                 "--state-dir", str(tmp_path)])
    assert p.returncode == 0, p.stderr
    assert "demo state in" not in p.stderr
    assert (tmp_path / "edge.db").is_file()
