"""Model updates survive a restart of the hub, end to end: `edge-daemon --device sim` takes a
signed head update, is stopped (a power cut, a `systemctl restart`) and started again on the
same configuration, and decides with the updated head from its first window; a head rolled
back stays rolled back; a head tampered with while the hub was off is refused in one line
and the bundle's own head decides.

Who decided a window is read from its probabilities, recomputed from its cached embedding
with each candidate head. A restarted simulation's clock starts again near the wall clock,
so each run's rows are told apart by the order they were written in, not by their times.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.decisions import softmax
from edge.personal.head import Head
from edge.personal.service import shared_head
from edge.personal.store import PersonalStore
from export.head_update import write_head_update
from export.signing import DEMO_PRIVATE_KEY
from tests.fakes.daemon import db_rows, stop_cli, toy_bundle, wait_for
from tests.fakes.updates import (
    cached_embeddings,
    decision_count,
    hub_events,
    new_version,
    start_hub,
)

# the toy bundle's export is part of this test's setup: on a loaded machine it alone can
# take the suite's default timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WEARERS = 2
TIMEOUT_S = 300.0  # a loaded CI machine runs the simulator far below its nominal speed
SPAN_S = 4.0  # the toy contract's window length (s)
MIN_LABELS = 8  # personal.rollback_min_labels of the rollback run


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def _probs(head: Head, emb: np.ndarray) -> np.ndarray:
    return softmax(head.logits(emb[None]))[0]


def _heads_of_run(
    db: Path, n_rows: int, n_emb: int, classes: list[str], heads: dict[str, Head]
) -> list[str]:
    """The head that decided each window of the run that began after ``n_rows`` decisions
    and ``n_emb`` cached embeddings: its name in ``heads``, or "other"."""
    emb = {(r, t): e for r, t, _v, e in cached_embeddings(db)[n_emb:]}
    out = []
    for row in db_rows(db)[n_rows:]:
        e = emb.get((row["resident"], row["t"]))
        if e is None:  # its embedding not written before a stop
            continue
        p = np.array([row["p_instant"][c] for c in classes])
        out.append(
            next((n for n, h in heads.items() if np.allclose(p, _probs(h, e), atol=1e-4)), "other")
        )
    return out


def _run(
    config: Path, running: Path, state: Path, tmp_path: Path, until: int, sig: int
) -> tuple[int, int, str]:
    """Start the hub, wait for ``until`` more decisions, stop it with ``sig``; the decisions
    and embeddings before this run, and its stderr."""
    db = state / "edge.db"
    n_rows, n_emb = decision_count(db), len(cached_embeddings(db))
    proc = start_hub(config, running, db, state, tmp_path, WEARERS)
    try:
        wait_for(lambda: decision_count(db) >= n_rows + until, TIMEOUT_S, "decisions")
    finally:
        _out, err = stop_cli(proc, sig)
    assert "Traceback" not in err
    return n_rows, n_emb, err


def test_a_head_update_survives_a_restart_and_a_tampered_one_does_not(
    bundle: Path, tmp_path: Path
) -> None:
    running = new_version(bundle, tmp_path / "running", "v0")
    state, db = tmp_path / "state", tmp_path / "state" / "edge.db"
    updates = state / "updates"
    config = tmp_path / "hub.toml"
    config.write_text("[personal]\nupdate_poll_s = 0.5\n[sinks]\ncommit_interval_s = 0.5\n")
    with load_bundle(running) as b:
        shared = shared_head(b)
        assert shared is not None
        classes = list(b.class_names)
        sharper = Head(3.0 * shared.W, 3.0 * shared.b)  # same choices, other probabilities
        write_head_update(
            tmp_path / "round-1", sharper.W, sharper.b, bundle=b, version="round-1",
            sign_key=DEMO_PRIVATE_KEY,
        )  # fmt: skip
    heads = {"round-1": sharper, "bundle": shared}

    # 1. the head update taken while running, then a power cut
    proc = start_hub(config, running, db, state, tmp_path, WEARERS)
    try:
        wait_for(lambda: decision_count(db) > 2 * WEARERS, TIMEOUT_S, "first decisions")
        shutil.move(str(tmp_path / "round-1"), str(updates / "round-1"))
        wait_for(lambda: len(hub_events(db, "model_swapped")) >= 1, TIMEOUT_S, "the head swap")
    finally:
        stop_cli(proc, signal.SIGKILL)

    # 2. started again: the updated head decides from the first window
    n_rows, n_emb, err = _run(config, running, state, tmp_path, 4 * WEARERS, signal.SIGTERM)
    served = _heads_of_run(db, n_rows, n_emb, classes, heads)
    assert served and set(served) == {"round-1"}
    (restored,) = hub_events(db, "model_restored")
    assert restored["detail"]["head_version"] == "round-1"
    assert "refused" not in restored["detail"]
    lines = [ln for ln in err.splitlines() if "model updates restored at start" in ln]
    assert len(lines) == 1 and "head round-1 (applied/round-1)" in lines[0]
    assert len(hub_events(db, "model_swapped")) == 1  # restored, not swapped again

    # 3. the applied head changed while the hub was off: refused, the bundle's head decides
    npz = updates / "applied" / "round-1" / "head.npz"
    data = bytearray(npz.read_bytes())
    data[-40] ^= 0x01
    npz.write_bytes(bytes(data))
    n_rows, n_emb, err = _run(config, running, state, tmp_path, 4 * WEARERS, signal.SIGTERM)
    served = _heads_of_run(db, n_rows, n_emb, classes, heads)
    assert served and set(served) == {"bundle"}
    (refused,) = hub_events(db, "update_refused")
    assert refused["detail"]["reason"] == "hash" and refused["detail"]["path"] == "round-1"
    restored = hub_events(db, "model_restored")[-1]["detail"]
    assert restored["bundle"] == "configured" and "head" not in restored
    assert restored["refused"] == refused["detail"]["message"]
    assert len([ln for ln in err.splitlines() if "edge.updates: update refused" in ln]) == 1
    assert (updates / "refused" / "round-1").is_dir()


def _confirm(
    db: Path, windows: list[tuple[str, float, str, np.ndarray]], states: list[str]
) -> None:
    """A carer's confirmed labels, one per window, written into the live hub database (as in
    tests/e2e/test_model_updates.py)."""
    with PersonalStore(db) as store:
        for (resident, t_end, _v, _e), state in zip(windows, states, strict=True):
            mid = t_end - SPAN_S / 2
            store.add_label(resident, mid - 0.2, mid + 0.2, state, "manual")


def test_a_rolled_back_head_stays_rolled_back_after_a_restart(bundle: Path, tmp_path: Path) -> None:
    running = new_version(bundle, tmp_path / "running", "v0")
    state, db = tmp_path / "state", tmp_path / "state" / "edge.db"
    updates = state / "updates"
    config = tmp_path / "hub.toml"
    # judged every half second; no personal heads (they would stand in for the shared one)
    config.write_text(
        "[personal]\nupdate_poll_s = 0.5\nrefit_interval_s = 0.5\n"
        f"rollback_min_labels = {MIN_LABELS}\nmin_labels = 1000000\n"
        "[sinks]\ncommit_interval_s = 0.5\n"
    )
    with load_bundle(running) as b:
        shared = shared_head(b)
        assert shared is not None
        classes = list(b.class_names)
        round1 = Head(2.0 * shared.W, 2.0 * shared.b)  # kept
        rotated = Head(np.roll(shared.W, 1, axis=1), np.roll(shared.b, 1))  # worse
        for name, head in (("round-1", round1), ("round-2", rotated)):
            write_head_update(
                tmp_path / name, head.W, head.b, bundle=b, version=name, sign_key=DEMO_PRIVATE_KEY
            )
    heads = {"round-1": round1, "round-2": rotated, "bundle": shared}

    proc = start_hub(config, running, db, state, tmp_path, WEARERS)
    try:
        wait_for(lambda: len(cached_embeddings(db)) >= 2 * MIN_LABELS, TIMEOUT_S, "windows")
        before = cached_embeddings(db)
        _confirm(db, before, [classes[int(shared.predict(e[None])[0])] for *_, e in before])
        shutil.move(str(tmp_path / "round-1"), str(updates / "round-1"))
        wait_for(lambda: len(hub_events(db, "model_swapped")) >= 1, TIMEOUT_S, "round 1")
        shutil.move(str(tmp_path / "round-2"), str(updates / "round-2"))
        wait_for(lambda: len(hub_events(db, "model_rolled_back")) >= 1, TIMEOUT_S, "rollback")
    finally:
        _out, err = stop_cli(proc)
    assert proc.returncode == 0, err
    (rb,) = hub_events(db, "model_rolled_back")
    assert (rb["detail"]["from_version"], rb["detail"]["to_version"]) == ("round-2", "round-1")

    n_rows, n_emb, err = _run(config, running, state, tmp_path, 4 * WEARERS, signal.SIGTERM)
    served = _heads_of_run(db, n_rows, n_emb, classes, heads)
    assert served and set(served) == {"round-1"}  # never round 2 again
    (restored,) = hub_events(db, "model_restored")
    assert restored["detail"]["head_version"] == "round-1"
    assert len(hub_events(db, "model_swapped")) == 2 and len(hub_events(db, "update_refused")) == 0
    assert (updates / "applied" / "round-2").is_dir()  # kept, never taken again
