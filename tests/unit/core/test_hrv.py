"""core.hrv: the Task Force features, by hand, on known spectra, and against neurokit2 on real RR.

The real RR comes from heartpy's bundled 11-minute finger-PPG recording (``data3.csv``),
peaks found by neurokit2 (``ppg_clean`` + ``ppg_peaks``). neurokit2 is called with
``hrv_time(peaks, sampling_rate)`` and ``hrv_frequency(peaks, sampling_rate,
interpolation_rate=4, normalize=False, psd_method="welch")``: the same 4 Hz tachogram rate
and ms² units as ours; the rest is neurokit2's own default (quadratic interpolation, no
detrend, Welch segments of half the series, trapezoid band integration), which is why LF
and HF are compared within 25 % and the time domain within 1 %.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from core.errors import ContractError
from core.hrv import HRV_KEYS, hrv_features, welch_psd
from core.rr import clean_rr

TIME_KEYS = ("MeanNN", "SDNN", "RMSSD", "SDSD", "pNN50")
FREQ_KEYS = ("LF", "HF", "LFHF")


@pytest.fixture(scope="module")
def real_peaks() -> tuple[np.ndarray, int]:
    """Peak sample indices of heartpy's long PPG example, and its sampling rate."""
    nk = pytest.importorskip("neurokit2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # heartpy imports the deprecated pkg_resources
        hp = pytest.importorskip("heartpy")
        ppg, stamps = hp.load_exampledata(2)
    t = (np.asarray(stamps, "datetime64[us]") - np.datetime64(stamps[0])).astype(np.float64) / 1e6
    fs = round((t.size - 1) / t[-1])  # the logger's clock: 100 Hz
    _, info = nk.ppg_peaks(nk.ppg_clean(ppg, sampling_rate=fs), sampling_rate=fs)
    peaks = np.asarray(info["PPG_Peaks"])
    assert peaks.size > 1000 and fs == 100  # about 11 minutes of beats
    return peaks, fs


def neurokit_reference(peaks: np.ndarray, fs: int) -> dict[str, float]:
    import neurokit2 as nk

    time_ = nk.hrv_time(peaks, sampling_rate=fs).iloc[0]
    freq = nk.hrv_frequency(
        peaks, sampling_rate=fs, interpolation_rate=4, normalize=False, psd_method="welch"
    ).iloc[0]
    ref = {k: float(time_[f"HRV_{k}"]) for k in TIME_KEYS}
    ref |= {k: float(freq[f"HRV_{k}"]) for k in FREQ_KEYS}
    return ref


def assert_agrees(ours: dict[str, float], ref: dict[str, float]) -> None:
    for k in TIME_KEYS:
        assert ours[k] == pytest.approx(ref[k], rel=0.01), k
    for k in FREQ_KEYS:
        assert ours[k] == pytest.approx(ref[k], rel=0.25), k


def test_real_rr_as_detected_agrees_with_neurokit2(real_peaks: tuple[np.ndarray, int]) -> None:
    peaks, fs = real_peaks
    ours = hrv_features(np.diff(peaks) / fs)
    assert_agrees(ours, neurokit_reference(peaks, fs))


def test_real_rr_cleaned_by_neurokit2_agrees_with_neurokit2(real_peaks: tuple[np.ndarray, int]) -> None:
    import neurokit2 as nk

    peaks, fs = real_peaks
    _, fixed = nk.signal_fixpeaks(peaks, sampling_rate=fs, method="kubios")
    fixed = np.asarray(fixed)
    ours = hrv_features(np.diff(fixed) / fs)
    ref = neurokit_reference(fixed, fs)
    assert_agrees(ours, ref)
    assert ref["RMSSD"] < 0.5 * hrv_features(np.diff(peaks) / fs)["RMSSD"]  # cleaning mattered


def test_our_cleaning_of_real_rr_corrects_a_few_percent(real_peaks: tuple[np.ndarray, int]) -> None:
    peaks, fs = real_peaks
    raw = np.diff(peaks) / fs
    cleaned = clean_rr(raw)
    assert 0 < cleaned.corrected_fraction < 0.08  # a finger PPG: some artefacts, not a mess
    assert cleaned.t_s[-1] == pytest.approx(raw.sum())  # the beats stay on the clock
    before, after = hrv_features(raw), hrv_features(cleaned.rr_s)
    assert after["RMSSD"] < 0.6 * before["RMSSD"]  # artefacts inflate beat-to-beat variability


# -- known answers ------------------------------------------------------------------------------
def test_time_domain_by_hand() -> None:
    f = hrv_features([0.8, 0.9, 0.85, 0.7])  # ms: 800 900 850 700; diffs 100 -50 -150
    assert f["MeanNN"] == pytest.approx(812.5)
    assert f["SDNN"] == pytest.approx(math.sqrt(21875 / 3))  # ddof = 1
    assert f["RMSSD"] == pytest.approx(math.sqrt(35000 / 3))
    assert f["SDSD"] == pytest.approx(math.sqrt(31666.666666 / 2))  # ddof = 1
    assert f["pNN50"] == pytest.approx(50.0)  # 2 of 4 intervals: |50| is not > 50
    assert set(f) == set(HRV_KEYS) and list(f) == list(HRV_KEYS)
    assert all(math.isnan(f[k]) for k in FREQ_KEYS)  # 2.5 s cannot hold 0.04 Hz


@pytest.mark.parametrize(("f0", "band"), [(0.25, "HF"), (0.10, "LF")])
def test_a_pure_modulation_puts_its_power_in_its_band(f0: float, band: str) -> None:
    # RR = 850 ms ± 40 ms at f0 for 5 minutes: the band holds the sine's variance, 40²/2 ms²
    t, beats = 0.0, []
    while t < 300:
        t += 0.85 + 0.040 * math.sin(2 * math.pi * f0 * t)
        beats.append(t)
    rr = np.diff(np.array([0.0, *beats]))
    f = hrv_features(rr)
    other = "LF" if band == "HF" else "HF"
    assert f[band] == pytest.approx(800.0, rel=0.1)
    assert f[other] < 0.02 * f[band]


def test_welch_is_scipys_welch() -> None:
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(1).normal(size=1000)
    f, p = welch_psd(x, 4.0, segment=256, nfft=1024)
    f2, p2 = signal.welch(x, fs=4.0, window="hann", nperseg=256, noverlap=128, nfft=1024,
                          detrend="constant", scaling="density")
    np.testing.assert_allclose(f, f2)
    np.testing.assert_allclose(p, p2, rtol=1e-10, atol=1e-15)


def test_features_use_exactly_the_intervals_given() -> None:
    rr = np.full(100, 0.8)
    rr[50] = 1.6  # a missed beat stays in: cleaning is the caller's explicit step
    f = hrv_features(rr)
    assert f["MeanNN"] == pytest.approx(808.0) and f["pNN50"] == pytest.approx(2.0)


def test_bad_input_is_refused() -> None:
    for bad in ([0.8, 0.8], [0.8, -0.8, 0.8], [0.8, float("inf"), 0.8], [[0.8, 0.8, 0.8]]):
        with pytest.raises(ContractError, match="rr"):
            hrv_features(bad)
