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


def _reference_lf_hf(rr_s: np.ndarray) -> tuple[float, float]:
    """LF and HF written from the documented method with scipy alone: natural cubic spline
    of (beat time, RR ms) at 4 Hz from the first to the last beat, linear detrend, Welch
    (Hann, half overlap, segment = min(256 s, an even half of the series), nfft the next
    power of two >= 1024), band power = density summed over [lo, hi) times the bin width."""
    from scipy import signal
    from scipy.interpolate import CubicSpline

    t = np.cumsum(rr_s)
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * 4.0 + 1e-9)) + 1) / 4.0
    x = signal.detrend(CubicSpline(t, rr_s * 1000.0, bc_type="natural")(grid), type="linear")
    seg = max(2, min(2 * (x.size // 4), 1024))
    nfft = max(1024, 2 ** math.ceil(math.log2(seg)))
    f, p = signal.welch(x, fs=4.0, window="hann", nperseg=seg, noverlap=seg // 2, nfft=nfft,
                        detrend="constant", scaling="density")
    df = f[1] - f[0]
    lf = p[(f >= 0.04) & (f < 0.15)].sum() * df
    hf = p[(f >= 0.15) & (f < 0.40)].sum() * df
    return float(lf), float(hf)


@pytest.mark.parametrize(("minutes", "seed"), [(0.5, 0), (1.0, 1), (2.2, 2), (5.0, 3), (11.0, 4)])
def test_lf_hf_equal_an_independent_scipy_computation(minutes: float, seed: int) -> None:
    # realistic RR: a respiratory and a Mayer-wave rhythm, a slow drift and noise, at lengths
    # where the segment is an even half of the series and where it is 256 s
    rng = np.random.default_rng(seed)
    t, rr = 0.0, []
    while t < minutes * 60:
        r = (0.85 + 0.03 * math.sin(2 * math.pi * 0.25 * t) + 0.02 * math.sin(2 * math.pi * 0.1 * t)
             + 0.0004 * t + rng.normal(0, 0.01))
        rr.append(r)
        t += r
    rr_s = np.array(rr)
    f = hrv_features(rr_s)
    if np.cumsum(rr_s)[-1] - rr_s[0] < 25.0:  # shorter than one LF cycle: no spectrum
        assert math.isnan(f["LF"]) and math.isnan(f["HF"]) and math.isnan(f["LFHF"])
        return
    lf, hf = _reference_lf_hf(rr_s)
    assert f["LF"] == pytest.approx(lf, rel=1e-9) and f["HF"] == pytest.approx(hf, rel=1e-9)
    assert f["LFHF"] == pytest.approx(lf / hf, rel=1e-9)


def test_spectrum_needs_one_whole_lf_cycle() -> None:
    # 0.04 Hz is a 25 s cycle: 24.9 s of beats give no LF/HF, 25.1 s do
    short, long = np.full(84, 0.3), np.full(85, 0.3)  # beats span 24.9 s and 25.2 s
    short[0] = long[0] = 0.2
    assert math.isnan(hrv_features(short)["LF"])
    assert not math.isnan(hrv_features(long)["LF"])


def test_exactly_one_lf_cycle_is_enough() -> None:
    rr = np.array([0.5] + [0.25] * 100)  # beats span exactly 25.0 s (exact in binary)
    assert np.cumsum(rr)[-1] - rr[0] == 25.0
    assert not math.isnan(hrv_features(rr)["LF"])


def test_a_metronome_has_no_band_power_and_a_little_hf_still_gives_lfhf() -> None:
    flat = hrv_features(np.full(200, 0.8))  # a metronome: no variability at all
    assert flat["LF"] < 1e-20 and flat["HF"] < 1e-20
    t, beats = 0.0, []
    while t < 160:  # a 0.25 Hz ripple of 0.5 ms: HF well below 1 ms²
        t += 0.8 + 0.0005 * math.sin(2 * math.pi * 0.25 * t)
        beats.append(t)
    f = hrv_features(np.diff(np.array([0.0, *beats])))
    assert 0.0 < f["HF"] < 1.0 and math.isfinite(f["LFHF"])


def test_welch_edge_arguments() -> None:
    x = np.arange(8.0)
    f, p = welch_psd(x, 1.0, segment=8)  # one segment, nfft defaults to the segment
    assert f.size == 5 and p.size == 5
    f1, _ = welch_psd(x, 1.0, segment=1)  # the smallest segment is allowed
    assert f1.size == 1
    with pytest.raises(ContractError, match=r"segment 9 must be in 1\.\.8") as e:
        welch_psd(x, 1.0, segment=9)
    assert e.value.field == "segment"
    with pytest.raises(ContractError, match="segment 0") as e:
        welch_psd(x, 1.0, segment=0)
    with pytest.raises(ContractError, match="nfft 4 < segment 8") as e:
        welch_psd(x, 1.0, segment=8, nfft=4)
    assert e.value.field == "nfft"
    with pytest.raises(ContractError):
        welch_psd(np.zeros((2, 8)), 1.0, segment=4)


def test_bad_input_messages_name_the_problem() -> None:
    with pytest.raises(ContractError, match="at least 3 intervals, got shape \\(2,\\)") as e:
        hrv_features([0.8, 0.8])
    assert e.value.field == "rr"
    with pytest.raises(ContractError) as e:
        hrv_features([0.8, 0.0, 0.8])  # zero is not a positive interval
    assert str(e.value) == "rr: RR intervals must be finite and positive seconds"
    assert hrv_features([0.8, 0.8, 0.8])["MeanNN"] == pytest.approx(800.0)  # 3 is enough


def test_float32_input_is_computed_in_float64() -> None:
    # a wearable's float32 buffer must give the features of the same values in float64
    rng = np.random.default_rng(5)
    rr32 = (0.8 + 0.05 * rng.standard_normal(400)).astype(np.float32)
    a, b = hrv_features(rr32), hrv_features(rr32.astype(np.float64))
    assert all(a[k] == b[k] for k in HRV_KEYS), {k: (a[k], b[k]) for k in HRV_KEYS}
    x32 = rng.standard_normal(512).astype(np.float32)
    np.testing.assert_array_equal(welch_psd(x32, 4.0, segment=128)[1],
                                  welch_psd(x32.astype(np.float64), 4.0, segment=128)[1])
