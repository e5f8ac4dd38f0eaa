"""edge.fleet.residents: dealing residents to hubs, which windows a resident confirmed, and the
embeddings file (with the coordinator's public windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.fleet.residents import Residents, ResidentsError, assign_hubs, confirm_split


def test_hubs_get_every_resident_once_in_near_equal_shares() -> None:
    subjects = [f"S{i}" for i in range(2, 11)]
    hubs = assign_hubs(subjects, 4, seed=0)
    assert sorted(s for h in hubs for s in h) == sorted(subjects)
    assert sorted(len(h) for h in hubs) == [2, 2, 2, 3]
    assert assign_hubs(subjects, 4, seed=0) == hubs
    with pytest.raises(ResidentsError, match="cannot fill"):
        assign_hubs(subjects[:3], 4, seed=0)


def test_each_episode_is_cut_in_time_order_and_later_windows_never_overlap() -> None:
    hop, window = 5.0, 60.0
    y = np.array([0] * 40 + [1] * 30 + [2] * 24)
    start = np.arange(y.size) * hop
    confirmed, later = confirm_split(y, start, fraction=0.5, window_s=window, hop_s=hop)
    assert not (confirmed & later).any()
    for k, n in ((0, 40), (1, 30), (2, 24)):
        rows = np.flatnonzero(y == k)
        c, lt = rows[confirmed[rows]], rows[later[rows]]
        assert len(c) == n // 2 and (c < lt.min()).all()  # every state confirmed, earlier first
        # no later window shares a sample with a confirmed one
        assert start[lt].min() >= start[c].max() + window
    # a gap in time starts a new episode even with the same state
    y2 = np.zeros(40, int)
    s2 = np.concatenate([np.arange(20) * hop, 1000 + np.arange(20) * hop])
    c2, _ = confirm_split(y2, s2, fraction=0.5, window_s=window, hop_s=hop)
    assert c2[:10].all() and c2[20:30].all() and not c2[10:20].any()


def residents(public: np.ndarray) -> Residents:
    rng = np.random.default_rng(0)
    return Residents(
        emb=rng.normal(0, 1, (6, 4)).astype(np.float32),
        y=np.array([0, 1, 2, 0, 1, 2]),
        subject=np.array(["S2"] * 3 + ["S3"] * 3),
        start=np.arange(6) * 5.0,
        W=np.zeros((4, 3), np.float32),
        b=np.zeros(3, np.float32),
        class_names=("baseline", "stress", "amusement"),
        pretrain_subjects=("S9",),
        window_s=60.0,
        hop_s=5.0,
        public_emb=public,
    )


def test_the_public_windows_round_trip_and_older_files_have_none(tmp_path: Path) -> None:
    public = np.arange(20, dtype=np.float32).reshape(5, 4)
    residents(public).save(tmp_path / "r.npz")
    back = Residents.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.public_emb, public)
    # a file written before the public windows were kept
    with np.load(tmp_path / "r.npz") as z:
        old = {k: z[k] for k in z.files if k != "public_emb"}
    np.savez(tmp_path / "old.npz", **old)
    older = Residents.load(tmp_path / "old.npz")
    assert older.public_emb.shape == (0, 4)
