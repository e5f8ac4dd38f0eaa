"""train.synth: WESAD format, determinism, protocol floors and physiological sanity."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import find_peaks

from core.recording import load_recording, load_wesad_subject
from tests.fakes.recordings import cached_synth_root
from train.synth import (
    BASELINE_FLOOR_S,
    CONDITION_FLOOR_S,
    generate_subject,
    protocol,
    subject_ids,
    write_demo_recording,
)

N_SUBJECTS = 3


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_synth_root(tmp_path_factory, n_subjects=N_SUBJECTS, minutes_scale=0.25)


@pytest.fixture(scope="session")
def raw_subjects(synth_root: Path) -> list[dict[str, Any]]:
    out = []
    for sid in subject_ids(N_SUBJECTS):
        with (synth_root / f"S{sid}" / f"S{sid}.pkl").open("rb") as f:
            out.append(pickle.load(f, encoding="latin1"))  # how WESAD's readme loads it
    return out


def test_subject_ids_skip_12() -> None:
    assert subject_ids(12) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]


def test_files_have_the_wesad_layout(synth_root: Path, raw_subjects: list[dict[str, Any]]) -> None:
    assert sorted(p.name for p in synth_root.glob("S*/S*.pkl")) == ["S2.pkl", "S3.pkl", "S4.pkl"]
    d = raw_subjects[0]
    assert set(d) == {"subject", "signal", "label"} and d["subject"] == "S2"
    assert set(d["signal"]) == {"chest", "wrist"}
    chest, wrist = d["signal"]["chest"], d["signal"]["wrist"]
    assert set(chest) == {"ACC", "ECG", "EMG", "EDA", "Temp", "Resp"}
    assert set(wrist) == {"ACC", "BVP", "EDA", "TEMP"}
    n = d["label"].shape[0]
    assert d["label"].ndim == 1 and n % 700 == 0
    seconds = n // 700
    assert chest["ACC"].shape == (n, 3)
    for k in ("ECG", "EMG", "EDA", "Temp", "Resp"):
        assert chest[k].shape == (n, 1)
    assert wrist["ACC"].shape == (seconds * 32, 3)
    assert wrist["BVP"].shape == (seconds * 64, 1)
    assert wrist["EDA"].shape == wrist["TEMP"].shape == (seconds * 4, 1)
    # E4 ACC is integer counts of 1/64 g; gravity makes |a| ~ 64 counts at rest
    acc = wrist["ACC"]
    assert np.array_equal(acc, np.round(acc))
    assert 50 < np.median(np.linalg.norm(acc, axis=1)) < 80
    assert set(np.unique(d["label"]).tolist()) == {0, 1, 2, 3, 4}
    for sig in list(chest.values()) + list(wrist.values()):
        assert np.isfinite(sig).all()  # WESAD has no NaN; dropouts are flat spans


def test_loader_reads_synthetic_files(synth_root: Path) -> None:
    rec = load_wesad_subject(synth_root / "S3" / "S3.pkl")
    assert rec.subject == "S3"
    assert rec.signals["acc"].unit == "g"
    assert 0.8 < np.median(np.linalg.norm(rec.signals["acc"].values, axis=1)) < 1.2
    assert 0.8 < np.median(np.linalg.norm(rec.signals["c_acc"].values, axis=1)) < 1.2


def test_deterministic_for_a_seed() -> None:
    a = generate_subject(5, seed=3, minutes_scale=0.05)
    b = generate_subject(5, seed=3, minutes_scale=0.05)
    c = generate_subject(5, seed=4, minutes_scale=0.05)
    for grp in ("chest", "wrist"):
        for k in a["signal"][grp]:
            np.testing.assert_array_equal(a["signal"][grp][k], b["signal"][grp][k])
    np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(a["signal"]["wrist"]["BVP"], c["signal"]["wrist"]["BVP"])


@pytest.mark.parametrize("scale", [1.0, 0.25, 0.01])
def test_protocol_floors(scale: float) -> None:
    for order in ((3, 4, 2, 4), (2, 4, 3, 4)):
        segs = protocol(order, scale)
        assert segs[1][0] == 1 and segs[1][1] >= BASELINE_FLOOR_S
        # baseline covers the 300 s calibration period from the recording start
        assert segs[0][1] + segs[1][1] >= 300 + 60
        for lab, d in segs:
            if lab in (2, 3, 4):
                assert d >= CONDITION_FLOOR_S  # >= 2 full 60 s windows (6 at a 5 s hop)
        assert [lab for lab, _ in segs if lab] == [1, *order]
    full = dict((lab, d) for lab, d in protocol((3, 4, 2, 4), 1.0) if lab in (1, 2, 3))
    assert full == {1: 1200, 2: 600, 3: 390}  # WESAD: 20, 10, 6.5 minutes


def _segment(d: dict[str, Any], label: int, rate: float, tail_s: float) -> slice:
    """The last ``tail_s`` seconds of the first segment with ``label`` (responses lag)."""
    idx = np.flatnonzero(d["label"] == label)
    end = idx[np.flatnonzero(np.diff(idx) > 1)[0]] + 1 if np.any(np.diff(idx) > 1) else idx[-1] + 1
    end_s = end / 700.0
    return slice(int((end_s - tail_s) * rate), int(end_s * rate))


def _heart_rate(x: np.ndarray, rate: float) -> float:
    x = x - np.median(x)
    peaks, _ = find_peaks(x, distance=int(0.33 * rate), height=np.percentile(x, 90) * 0.5)
    return 60.0 / float(np.median(np.diff(peaks))) * rate


def _rmssd_ms(x: np.ndarray, rate: float) -> float:
    x = x - np.median(x)
    peaks, _ = find_peaks(x, distance=int(0.33 * rate), height=np.percentile(x, 90) * 0.5)
    rr = np.diff(peaks) / rate * 1000.0
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)))


def _resp_rate(x: np.ndarray, rate: float) -> float:
    """Breaths/min at the spectral peak (zero crossings would count sensor noise)."""
    step = int(rate // 20)  # 20 Hz is plenty for breathing
    xs = x[::step] - x[::step].mean()
    spec = np.abs(np.fft.rfft(xs))
    f = np.fft.rfftfreq(xs.size, step / rate)
    band = (f > 0.08) & (f < 0.8)
    return float(f[band][spec[band].argmax()] * 60.0)


def test_stress_is_physiologically_visible(raw_subjects: list[dict[str, Any]]) -> None:
    hits: dict[str, int] = dict.fromkeys(
        ("hr_ecg", "hr_bvp", "rmssd_lower", "eda_chest", "resp_faster"), 0
    )
    resting_hr = []
    for d in raw_subjects:
        chest, wrist = d["signal"]["chest"], d["signal"]["wrist"]
        b7, s7 = _segment(d, 1, 700, 120), _segment(d, 2, 700, 90)
        b64, s64 = _segment(d, 1, 64, 120), _segment(d, 2, 64, 90)
        ecg = chest["ECG"][:, 0]
        hr_b, hr_s = _heart_rate(ecg[b7], 700), _heart_rate(ecg[s7], 700)
        resting_hr.append(hr_b)
        hits["hr_ecg"] += hr_s > hr_b
        bvp = wrist["BVP"][:, 0]
        hits["hr_bvp"] += _heart_rate(bvp[s64], 64) > _heart_rate(bvp[b64], 64)
        hits["rmssd_lower"] += _rmssd_ms(ecg[s7], 700) < _rmssd_ms(ecg[b7], 700)
        eda = chest["EDA"][:, 0]
        hits["eda_chest"] += eda[s7].mean() > eda[b7].mean()
        resp = chest["Resp"][:, 0]
        hits["resp_faster"] += _resp_rate(resp[s7], 700) > _resp_rate(resp[b7], 700)
        assert 45 < hr_b < 110 and 45 < hr_s < 160  # physiological ranges
    for k, v in hits.items():
        assert v >= 2, f"{k}: stress > baseline in only {v} of {len(raw_subjects)} subjects"
    # people differ at rest (a per-subject baseline, not one shared template)
    assert np.ptp(resting_hr) > 3.0


def test_demo_recording_is_wrist_only(synth_root: Path, tmp_path: Path) -> None:
    out = write_demo_recording(synth_root / "S2" / "S2.pkl", tmp_path / "demo.npz", max_minutes=8)
    rec = load_recording(out)
    assert set(rec.signals) == {"bvp", "eda", "temp", "acc"}
    assert rec.duration_s == pytest.approx(480.0)
    assert rec.labels is not None and rec.subject == "S2"
