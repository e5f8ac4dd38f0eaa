"""firmware_bridge.sim.rr: a simulated strap's RR stream follows its label timeline."""

from __future__ import annotations

import numpy as np
import pytest

from core.hrv import hrv_features
from firmware_bridge.errors import SimulatorError
from firmware_bridge.gatt import encode_heart_rate_measurement, parse_heart_rate_measurement
from firmware_bridge.sim.rr import RRPerson, heart_rate_notifications, simulate_rr

LABELS = np.repeat(np.array([1, 2, 1, 4], np.int8), [300 * 700, 300 * 700, 120 * 700, 300 * 700])


def features_of(sim, code: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    sel = np.flatnonzero(sim.labels == code)
    return hrv_features(sim.rr_s[sel[60:]])  # past the lag into the condition


def test_stress_raises_heart_rate_and_lowers_rmssd_meditation_the_reverse() -> None:
    sim = simulate_rr(LABELS, seed=0)
    base, stress, calm = features_of(sim, 1), features_of(sim, 2), features_of(sim, 4)
    assert 60_000 / base["MeanNN"] == pytest.approx(68, abs=3)  # the resting heart rate
    assert 60_000 / stress["MeanNN"] > 60_000 / base["MeanNN"] + 10
    assert stress["RMSSD"] < 0.7 * base["RMSSD"] and calm["RMSSD"] > base["RMSSD"]
    assert 20 < base["RMSSD"] < 80  # a plausible healthy adult at rest
    assert base["HF"] > 0.5 * base["LF"]  # breathing shows up where it should


def test_beats_are_consistent_and_reproducible() -> None:
    a, b = simulate_rr(LABELS, seed=3), simulate_rr(LABELS, seed=3)
    np.testing.assert_array_equal(a.rr_s, b.rr_s)
    np.testing.assert_allclose(np.diff(a.t_s), a.rr_s[1:], atol=1e-12)  # times tile
    assert a.t_s[-1] == pytest.approx(LABELS.size / 700, abs=2.0)
    assert not np.array_equal(a.rr_s[:100], simulate_rr(LABELS, seed=4).rr_s[:100])


def test_artefacts_sit_where_they_are_reported() -> None:
    clean = simulate_rr(LABELS, seed=5)
    sim = simulate_rr(LABELS, seed=5, ectopic_per_min=1.0, missed_per_min=0.5)
    assert sim.ectopic.size > 5 and sim.missed.size > 3
    before = sim.rr_s[sim.ectopic - 1]  # premature by 25-35 %, then the compensatory pause
    assert np.all(sim.rr_s[sim.ectopic] < 0.8 * before)
    assert np.all(sim.rr_s[sim.ectopic + 1] > 1.15 * before)
    assert np.all(sim.rr_s[sim.missed] > 1.7 * sim.rr_s[sim.missed - 1])
    assert sim.rr_s.size == clean.rr_s.size - sim.missed.size


def test_notifications_carry_the_intervals_and_contact() -> None:
    sim = simulate_rr(LABELS[: 120 * 700], seed=1)
    notes = heart_rate_notifications(sim, contact_losses=[(30.0, 40.0)])
    assert len(notes) == int(sim.t_s[-1]) + 1
    for t, m in notes:
        assert parse_heart_rate_measurement(encode_heart_rate_measurement(m)).contact == m.contact
        if 30.0 <= t < 40.0:
            assert m.contact is False and m.rr_s == ()
        else:
            assert m.contact is True and (40 < m.bpm < 120 or t < sim.t_s[0])
    sent = np.concatenate([m.rr_s for _, m in notes if m.rr_s])
    # the notifications at 30..39 s, which would carry the beats of (29, 39] s, are lost
    kept = sim.rr_s[(sim.t_s <= 29.0) | (sim.t_s > 39.0)]
    np.testing.assert_allclose(sent, kept)


def test_bad_arguments_raise_the_simulators_error() -> None:
    with pytest.raises(SimulatorError):
        simulate_rr([], 700.0)
    with pytest.raises(SimulatorError):
        simulate_rr(LABELS[:700], 700.0)  # one second: too few beats
    with pytest.raises(SimulatorError):
        simulate_rr(LABELS, ectopic_per_min=-1.0)
    assert simulate_rr(LABELS[: 60 * 700], person=RRPerson(resting_hr_bpm=50)).rr_s.mean() > 1.1
