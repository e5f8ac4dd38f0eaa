"""edge.fleet.residents: dealing residents to hubs, and which windows a resident confirmed."""

from __future__ import annotations

import numpy as np
import pytest

from edge.fleet.residents import ResidentsError, assign_hubs, confirm_split


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
