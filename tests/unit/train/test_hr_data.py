"""train.hr_data: RR intervals from ECG and BVP peaks (neurokit2), cached per subject."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.recording import Recording, Signal
from train.errors import DataError
from train.hr_data import beats_from_bvp, beats_from_ecg, subject_beats, with_subject_beats


def _beats_at(rate_hz: float, seconds: float, seed: int) -> np.ndarray:
    """Beat times of a heart that varies around 72 bpm (RSA-like), known exactly."""
    rng = np.random.default_rng(seed)
    rr = 60.0 / 72.0 * (1 + 0.05 * np.sin(np.arange(200) * 2 * np.pi / 4.3)) + rng.normal(0, 0.01, 200)
    t = 0.5 + np.cumsum(rr)
    return t[t < seconds - 0.5]


def _pulse_train(t_beats: np.ndarray, rate_hz: float, seconds: float, width_s: float) -> np.ndarray:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    x = np.zeros_like(t)
    for tb in t_beats:
        x += np.exp(-0.5 * ((t - tb) / width_s) ** 2)
    return x


def test_ecg_r_peaks_give_the_true_intervals() -> None:
    import neurokit2 as nk

    ecg = nk.ecg_simulate(duration=120, sampling_rate=700, heart_rate=70, random_state=3,
                          method="simple")
    b = beats_from_ecg(ecg, 700.0)
    assert 130 < b.n_beats < 150  # 70 bpm for two minutes
    assert abs(60.0 / np.median(b.rr_s) - 70.0) < 2.0
    np.testing.assert_allclose(b.t_s[1:] - b.t_s[:-1], b.rr_s[1:], atol=1e-9)


def test_bvp_peaks_are_refined_below_the_64_hz_sample_period() -> None:
    truth = _beats_at(64.0, 120.0, seed=1)
    bvp = _pulse_train(truth, 64.0, 120.0, width_s=0.12)
    b = beats_from_bvp(bvp, 64.0)
    # every true beat found; the refined times are far closer than the 15.6 ms sample period
    near = np.abs(b.t_s[:, None] - truth[None, :]).min(axis=1)
    assert b.n_beats >= truth.size - 3 and np.median(near) < 0.004


def test_beats_are_cached_beside_the_subject_and_redone_when_it_changes(tmp_path: Path) -> None:
    truth = _beats_at(64.0, 300.0, seed=2)
    sig = Signal(64.0, _pulse_train(truth, 64.0, 300.0, 0.12)[:, None].astype(np.float32), "a.u.",
                 ("bvp",))
    rec = Recording("S9", {"bvp": sig})
    pkl = tmp_path / "S9" / "S9.pkl"
    pkl.parent.mkdir()
    pkl.write_bytes(b"stand-in for the subject file")
    first = subject_beats(rec, pkl, "bvp")
    cache = tmp_path / "S9" / "S9.rr-bvp.npz"
    assert cache.is_file()
    # read back, not detected again: a recording without its BVP still gets the cached beats
    again = subject_beats(Recording("S9", {}), pkl, "bvp")
    np.testing.assert_array_equal(again.t_s, first.t_s)
    os.utime(pkl, ns=(1, 1))  # the subject file changed: the cache no longer applies
    with pytest.raises(DataError, match="no bvp signal"):
        subject_beats(Recording("S9", {}), pkl, "bvp")
    assert with_subject_beats(rec, pkl, "bvp").beats["rr"].n_beats == first.n_beats
    with pytest.raises(DataError, match="unknown RR source"):
        subject_beats(rec, pkl, "ppg")


def test_wesad_with_rr_windows_the_beats_by_the_hubs_path(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from core.signal import compute_calibration, windows_from_streams
    from tests.fakes.recordings import cached_synth_root
    from train.data import load_wesad, wesad_contract

    root = cached_synth_root(tmp_path_factory, n_subjects=3, minutes_scale=0.25)
    ds = load_wesad(root, modalities=["bvp", "rr"], rr_source="ecg")
    assert ds.modalities["rr"].shape[1:] == (1, 240) and ds.contract.modality("rr").beats
    assert ds.info["rr_source"] == "ecg" and (root / "S2" / "S2.rr-ecg.npz").is_file()
    assert len(np.unique(ds.y)) == 3
    # a window is exactly what the hub's assembler makes of that subject's beats
    from core.recording import load_wesad_subject

    pkl = root / "S3" / "S3.pkl"
    rec = with_subject_beats(load_wesad_subject(pkl), pkl, "ecg")
    b = rec.beats["rr"]
    c = wesad_contract(modalities=["rr"])
    cal = compute_calibration({"rr": (b.t_s[b.t_s < 320], b.rr_s[b.t_s < 320])}, c)
    hub = {w.start: w for w in windows_from_streams({"rr": (b.t_s, b.rr_s)}, c, calibration=cal)}
    i = int(np.flatnonzero(ds.groups == "S3")[5])
    np.testing.assert_allclose(ds.modalities["rr"][i], hub[float(ds.start[i])].data["rr"],
                               atol=1e-5)
