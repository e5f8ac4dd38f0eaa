"""Writes synthetic WESAD: physiologically plausible recordings in exactly WESAD's on-disk format.

``generate_dataset(out_dir, n_subjects)`` writes ``S{n}/S{n}.pkl`` (ids S2, S3, ... skipping
S12 as WESAD does), each a dict ``{"subject", "signal": {"chest": {...}, "wrist": {...}},
"label"}``: chest RespiBAN ``ACC`` (N, 3) g, ``ECG``, ``EMG``, ``EDA``, ``Temp``, ``Resp``
(N, 1) at 700 Hz; wrist Empatica E4 ``ACC`` (M, 3) at 32 Hz in 1/64 g (integer counts),
``BVP`` 64 Hz, ``EDA`` 4 Hz (uS), ``TEMP`` 4 Hz (degC); ``label`` (N,) int32 at 700 Hz. The
one loader (``core.recording.load_wesad_subject``) reads real and synthetic files alike.
Arrays are float32 by default (WESAD's own are float64; pass ``dtype="float64"`` for that) to
halve disk use; every loader converts to float32 anyway.

How a subject is built
----------------------
1. A protocol (WESAD's two orders, chosen per subject): preparation (label 0), baseline (1)
   ~20 min, then amusement (3) ~6.5 min, meditation (4) ~7, stress (2) ~10, meditation ~7 (or
   stress first), each followed by a 0-labelled transition. ``minutes_scale`` shrinks all
   segments with floors: baseline >= 5.5 min (normalization calibrates on the first 300 s of
   a recording), conditions >= 1.5 min (>= 6 clean 60 s windows at a 5 s hop), transitions
   >= 30 s.
2. Per-person parameters (resting HR, HRV, respiration rate/depth, chest and wrist EDA level,
   skin temperatures, signal gains, reactivity, how strongly the wrist EDA follows the
   chest's, movement propensity, pulse transit time).
3. Slow "physiological state" curves on a 4 Hz control grid: each condition sets targets
   (table below) that the body approaches with first-order lags (HR 20 s, respiration 15 s,
   EDA tonic 60-90 s, skin temperature 150 s), so early windows of a condition look like
   the previous one, as in real data.
4. Waveforms from neurokit2's simulators, time-warped by the state curves: one
   ``ecg_simulate(method="simple")`` and one ``ppg_simulate`` beat train at a constant
   rate are warped by the same instantaneous-HR phase (so ECG R peaks and BVP pulses share
   beats, the pulse lagging by the transit time); ``rsp_simulate(method="breathmetrics")``
   warped by the respiration-rate phase drives chest Resp and respiratory sinus arrhythmia
   (RSA) in the heart rate; skin-conductance responses use ``eda_simulate``'s SCR shape on
   a Poisson event train; ``emg_simulate`` supplies the EMG bursts.
5. Sensor realism: wrist movement bursts (band-limited ACC) with correlated BVP motion
   artefacts, sensor noise, 50 Hz hum on ECG/EMG, E4 quantization (ACC counts), and short
   dropouts (flat BVP/ACC spans; wrist EDA falling towards 0 on contact loss). No NaN.

Condition effects (targets relative to the subject's baseline; arousal effects are
multiplied by a per-subject reactivity ~ LogNormal(0, 0.45) and a per-effect factor
~ N(1, 0.35), clipped at 0.05, so some people barely respond):

=============  ======  ========  =======  ======  ========  =======  ======  =====  ========
condition      HR      HRV amp   resp     resp    EDA tonic SCR      wrist   EMG    movement
               (bpm)   (x LF,HF) (br/min) depth   (x L/4)   (/min)   temp C  tone   (/min)
=============  ======  ========  =======  ======  ========  =======  ======  =====  ========
baseline (1)   0       1.0       0        1.0     0         1.0      0       1.0    0.4
stress (2)     +14     0.6       +3       0.8     +4.0 ramp 5.0      -0.5    1.45   1.5
amusement (3)  +4      0.9       +1.5     1.1     +0.5      2.0      -0.1    1.15   1.5 +laughs
meditation (4) -3      1.35      -5       1.5     -0.5      0.5      +0.15   0.8    0.1
transition (0) +5      0.8       +2       1.0     +0.1      1.5      0       1.2    4 (walking)
=============  ======  ========  =======  ======  ========  =======  ======  =====  ========

EDA tonic changes are multiples of the subject's chest EDA level L / 4 (bigger sweaters rise
more); the stress rise is a ramp over the segment (fast first, then levelling off:
sqrt-shaped, mean 2/3 of the end value). Stress also narrows the BVP pulse
amplitude (vasoconstriction, x0.75) and tilts the chest (standing for the talk; chest ACC
posture rotates 2-8 deg). Amusement adds laughter: 2-6 s bursts (~1/min) of fast shallow
respiratory flutter with wrist/chest movement.

What the chest knows that the wrist hardly does (so privileged teachers can teach): clean
ECG (HRV and HR exact) vs a BVP with motion artefacts and noise; respiration rate/depth and
laughter directly in Resp (the wrist sees them only through RSA); EMG tension in stress;
chest EDA follows arousal fully while wrist EDA follows it with a per-person coupling
U(0.1, 0.6) and more noise; chest posture change in stress.

How hard the task is on these data (a feature baseline per modality, measured) is recorded in
``train/RESULTS.md``; baseline vs amusement is the hard pair, as in the real data set.

``edge-train synth`` (``train.cli``) is the command line of this module.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from train.progress import ProgressEvent, ProgressFn, no_progress

__all__ = [
    "CONDITION_EFFECTS",
    "ConditionEffect",
    "SubjectParams",
    "generate_dataset",
    "generate_subject",
    "protocol",
    "subject_ids",
    "write_demo_recording",
]

log = logging.getLogger(__name__)

CHEST_HZ: Final = 700  # RespiBAN rate; WESAD labels share it
CTRL_HZ: Final = 4  # control grid of slow state curves: >= 2x the fastest RSA (0.5 Hz) x 4
ECG_TEMPLATE_HZ: Final = 350  # half the chest rate keeps the QRS shape, costs half the time
PPG_TEMPLATE_HZ: Final = 128  # 2x the E4's 64 Hz: warping compresses time by up to ~2x
RSP_TEMPLATE_HZ: Final = 25  # respiration has nothing above ~2 Hz
WRIST_HZ: Final = {"ACC": 32, "BVP": 64, "EDA": 4, "TEMP": 4}  # Empatica E4 as in WESAD
E4_ACC_PER_G: Final = 64  # E4 stores ACC as signed counts of 1/64 g
SKIPPED_IDS: Final = (12,)  # WESAD has no S12 (sensor failure); keep the ids familiar
MAINS_HZ: Final = 50.0  # WESAD was recorded in Germany


@dataclass(frozen=True)
class ConditionEffect:
    """Targets of one condition relative to the subject's baseline (see the module table)."""

    hr_bpm: float  # mean heart-rate shift
    hrv: float  # multiplier on LF and RSA heart-rate modulation
    resp_bpm: float  # respiration-rate shift, breaths/min
    resp_depth: float  # multiplier on respiration amplitude
    eda_tonic: float  # tonic EDA shift in units of (chest EDA level / 4)
    eda_ramp: bool  # tonic shift grows linearly over the segment (stress) instead of a step
    scr_per_min: float  # skin-conductance responses per minute
    temp_wrist_c: float  # peripheral (wrist) skin-temperature shift
    emg_tone: float  # multiplier on trapezius EMG tone
    moves_per_min: float  # wrist movement bursts per minute
    laughs_per_min: float = 0.0  # laughter bursts (resp flutter + movement)
    pulse_amp: float = 1.0  # multiplier on BVP pulse amplitude (vasoconstriction < 1)
    standing: bool = False  # chest posture change (TSST is given standing)
    walking: bool = False  # step-like ACC (moving between rooms)


CONDITION_EFFECTS: Final[dict[int, ConditionEffect]] = {
    1: ConditionEffect(0.0, 1.0, 0.0, 1.0, 0.0, False, 1.0, 0.0, 1.0, 0.4),
    2: ConditionEffect(14.0, 0.6, 3.0, 0.8, 4.0, True, 5.0, -0.5, 1.45, 1.5,
                       pulse_amp=0.75, standing=True),
    3: ConditionEffect(4.0, 0.9, 1.5, 1.1, 0.5, False, 2.0, -0.1, 1.15, 1.5, laughs_per_min=1.0),
    4: ConditionEffect(-3.0, 1.35, -5.0, 1.5, -0.5, False, 0.5, 0.15, 0.8, 0.1),
    0: ConditionEffect(5.0, 0.8, 2.0, 1.0, 0.1, False, 1.5, 0.0, 1.2, 4.0, walking=True),
}

# Protocol segment lengths in minutes (WESAD paper: baseline ~20, amusement ~6.5, stress
# ~10, meditation ~7) and floors that keep a shrunken protocol usable.
SEGMENT_MIN: Final = {1: 20.0, 2: 10.0, 3: 6.5, 4: 7.0}
PREP_MIN: Final = 1.0  # sensor fitting before the baseline (label 0)
TRANSITION_MIN: Final = 1.5  # walking, questionnaires (label 0)
BASELINE_FLOOR_S: Final = 330  # >= 300 s calibration + a margin for the preparation period
CONDITION_FLOOR_S: Final = 90  # >= 6 pure 60 s windows at a 5 s hop
TRANSITION_FLOOR_S: Final = 30  # enough for the body to start changing state
ORDERS: Final = ((3, 4, 2, 4), (2, 4, 3, 4))  # WESAD protocol versions A and B


# -------------------------------------------------------------------------------------------
# protocol and people
# -------------------------------------------------------------------------------------------
def subject_ids(n: int) -> list[int]:
    """WESAD-like ids: 2, 3, ..., skipping 12."""
    out, i = [], 2
    while len(out) < n:
        if i not in SKIPPED_IDS:
            out.append(i)
        i += 1
    return out


def protocol(order: Sequence[int], minutes_scale: float = 1.0) -> list[tuple[int, int]]:
    """``[(label, seconds), ...]``: preparation, baseline, then ``order`` with transitions."""

    def sec(minutes: float, floor: int) -> int:
        return max(floor, round(minutes * 60.0 * minutes_scale))

    segs = [(0, sec(PREP_MIN, TRANSITION_FLOOR_S)), (1, sec(SEGMENT_MIN[1], BASELINE_FLOOR_S))]
    for cond in order:
        segs.append((0, sec(TRANSITION_MIN, TRANSITION_FLOOR_S)))
        segs.append((cond, sec(SEGMENT_MIN[cond], CONDITION_FLOOR_S)))
    segs.append((0, sec(TRANSITION_MIN, TRANSITION_FLOOR_S)))
    return segs


@dataclass(frozen=True)
class SubjectParams:
    """One person: resting physiology, sensor gains and how strongly they react."""

    hr0: float  # resting heart rate, bpm
    lf_bpm: float  # SD of the ~0.1 Hz (Mayer wave) heart-rate oscillation at rest
    rsa_bpm: float  # respiratory sinus arrhythmia amplitude at rest, bpm
    rr0: float  # resting respiration rate, breaths/min
    resp_amp: float  # chest Resp amplitude, %
    eda_chest0: float  # chest EDA level, uS
    eda_wrist0: float  # wrist EDA level, uS (E4 wrist EDA is usually low)
    wrist_eda_coupling: float  # fraction of the chest EDA response seen at the wrist
    scr_amp: float  # mean SCR amplitude as a fraction of the chest EDA level
    temp_wrist0: float  # wrist skin temperature, degC
    temp_chest0: float  # chest skin temperature, degC
    reactivity: float  # global multiplier on arousal effects
    effect_gain: tuple[float, ...]  # per-effect multipliers (hr, hrv, resp, eda, temp, emg)
    bvp_gain: float  # BVP pulse amplitude, a.u.
    ecg_gain: float  # R-peak amplitude, mV
    emg_tone: float  # resting EMG amplitude, mV
    movement: float  # multiplier on movement-burst rates
    ptt_s: float  # pulse transit time heart -> wrist, s
    posture_tilt_deg: float  # chest tilt when standing
    order: tuple[int, ...]  # protocol version

    @classmethod
    def draw(cls, rng: np.random.Generator) -> SubjectParams:
        return cls(
            hr0=float(np.clip(rng.normal(72.0, 9.0), 52.0, 98.0)),
            lf_bpm=float(rng.lognormal(math.log(2.5), 0.35)),
            rsa_bpm=float(rng.lognormal(math.log(3.5), 0.4)),
            rr0=float(np.clip(rng.normal(15.0, 2.5), 9.0, 22.0)),
            resp_amp=float(rng.lognormal(math.log(8.0), 0.3)),
            eda_chest0=float(rng.lognormal(math.log(4.0), 0.6)),
            eda_wrist0=float(rng.lognormal(math.log(0.8), 0.8)),
            wrist_eda_coupling=float(rng.uniform(0.1, 0.6)),
            scr_amp=float(rng.lognormal(math.log(0.05), 0.4)),
            temp_wrist0=float(rng.normal(32.5, 1.2)),
            temp_chest0=float(rng.normal(34.3, 0.5)),
            reactivity=float(rng.lognormal(0.0, 0.45)),
            effect_gain=tuple(float(v) for v in np.clip(rng.normal(1.0, 0.35, 6), 0.05, None)),
            bvp_gain=float(rng.lognormal(math.log(60.0), 0.4)),
            ecg_gain=float(rng.lognormal(math.log(1.2), 0.2)),
            emg_tone=float(rng.lognormal(math.log(0.01), 0.3)),
            movement=float(rng.lognormal(0.0, 0.5)),
            ptt_s=float(rng.uniform(0.18, 0.32)),
            posture_tilt_deg=float(rng.uniform(2.0, 8.0)),
            order=ORDERS[int(rng.integers(len(ORDERS)))],
        )


# -------------------------------------------------------------------------------------------
# signal helpers
# -------------------------------------------------------------------------------------------
def _band_noise(rng: np.random.Generator, n: int, fs: float, lo: float, hi: float) -> np.ndarray:
    """Unit-SD Gaussian noise limited to [lo, hi] Hz (FFT mask)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    sd = x.std()
    return x / sd if sd > 0 else x


def _lag(x: np.ndarray, fs: float, tau_s: float) -> np.ndarray:
    """First-order low-pass (the body approaching a target with time constant tau)."""
    from scipy.signal import lfilter

    a = 1.0 - math.exp(-1.0 / (fs * tau_s))
    y, _ = lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * x[0]])
    return y


def _upsample(x: np.ndarray, src_hz: float, n: int, dst_hz: float) -> np.ndarray:
    """Linear interpolation of a slow curve onto a faster grid of ``n`` samples."""
    return np.interp(np.arange(n) / dst_hz, np.arange(x.shape[0]) / src_hz, x)


def _events(rng: np.random.Generator, rate_per_min: np.ndarray, fs: float) -> np.ndarray:
    """Indices of a Poisson process with time-varying rate sampled at ``fs``."""
    p = np.clip(rate_per_min / 60.0 / fs, 0.0, 1.0)
    return np.flatnonzero(rng.random(rate_per_min.shape[0]) < p)


def _bursts(rng: np.random.Generator, starts: np.ndarray, n: int, fs: float,
            dur_s: tuple[float, float]) -> np.ndarray:
    """Smooth 0..1 envelope that is on for a random duration after each start index."""
    env = np.zeros(n)
    for s in starts:
        d = int(rng.uniform(*dur_s) * fs)
        env[s:s + d] = 1.0
    return _lag(env, fs, 0.3)


def _warp(template: np.ndarray, template_hz: float, tau_s: np.ndarray) -> np.ndarray:
    """Read a constant-rate template at warped times ``tau_s`` (seconds of template time)."""
    return np.interp(tau_s * template_hz, np.arange(template.shape[0]), template)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


# -------------------------------------------------------------------------------------------
# one subject
# -------------------------------------------------------------------------------------------
def generate_subject(
    subject_id: int, seed: int = 0, *, minutes_scale: float = 1.0, dtype: str = "float32"
) -> dict[str, Any]:
    """One WESAD-format dict for subject ``S{subject_id}`` (deterministic for the pair)."""
    import neurokit2 as nk

    rng = np.random.default_rng(np.random.SeedSequence([seed, subject_id]))
    p = SubjectParams.draw(rng)
    segs = protocol(p.order, minutes_scale)
    total_s = sum(d for _, d in segs)
    n_ctrl = total_s * CTRL_HZ
    n_chest = total_s * CHEST_HZ
    g_hr, g_hrv, g_resp, g_eda, g_temp, g_emg = p.effect_gain
    react = p.reactivity

    # ---- step targets of every state curve on the control grid ----------------------------
    lab_ctrl = np.concatenate([np.full(d * CTRL_HZ, lab, np.int64) for lab, d in segs])
    fields = ("hr_bpm", "hrv", "resp_bpm", "resp_depth", "scr_per_min", "temp_wrist_c",
              "emg_tone", "moves_per_min", "laughs_per_min", "pulse_amp")
    tgt = {f: np.empty(n_ctrl) for f in fields}
    eda_tgt = np.empty(n_ctrl)
    standing = np.zeros(n_ctrl)
    walking = np.zeros(n_ctrl)
    i0 = 0
    for k, (lab, d) in enumerate(segs):
        eff = CONDITION_EFFECTS[lab]
        sl = slice(i0, i0 + d * CTRL_HZ)
        for f in fields:
            tgt[f][sl] = getattr(eff, f)
        if k == 0:  # preparation: sitting still, being wired up
            tgt["hr_bpm"][sl], tgt["moves_per_min"][sl] = 2.0, 2.0
        ramp = np.sqrt(np.linspace(0.0, 1.0, d * CTRL_HZ)) if eff.eda_ramp else 1.0
        eda_tgt[sl] = eff.eda_tonic * ramp
        standing[sl] = float(eff.standing)
        walking[sl] = float(eff.walking and k > 0)
        i0 += d * CTRL_HZ
    arousal = react  # multiplier on effects that grow with arousal
    hr_t = _lag(p.hr0 + tgt["hr_bpm"] * arousal * g_hr, CTRL_HZ, 20.0)
    hrv_t = _lag(1.0 + (tgt["hrv"] - 1.0) * min(arousal * g_hrv, 1.6), CTRL_HZ, 30.0)
    hrv_t = np.clip(hrv_t, 0.3, None)  # even a strong responder keeps some variability
    rr_t = _lag(p.rr0 + tgt["resp_bpm"] * g_resp * min(arousal, 1.8), CTRL_HZ, 15.0)
    rr_t = np.clip(rr_t + 1.3 * _band_noise(rng, n_ctrl, CTRL_HZ, 0.002, 0.05), 5.0, 35.0)
    depth_t = _lag(1.0 + (tgt["resp_depth"] - 1.0) * g_resp, CTRL_HZ, 15.0)
    eda_tonic_t = _lag(eda_tgt * arousal * g_eda * p.eda_chest0 / 4.0, CTRL_HZ, 75.0)
    temp_w_t = _lag(tgt["temp_wrist_c"] * arousal * g_temp, CTRL_HZ, 150.0)
    tone_t = _lag(1.0 + (tgt["emg_tone"] - 1.0) * arousal * g_emg, CTRL_HZ, 10.0)
    tone_t = np.clip(tone_t, 0.3, None)
    pulse_t = _lag(1.0 + (tgt["pulse_amp"] - 1.0) * arousal, CTRL_HZ, 30.0)
    pulse_t = np.clip(pulse_t, 0.3, None)
    stand_t = _lag(standing, CTRL_HZ, 3.0)

    # ---- respiration: breathmetrics template warped by the respiration-rate phase ---------
    rr_ref = 15.0
    resp_phase_s = np.cumsum(rr_t / rr_ref) / CTRL_HZ  # template seconds elapsed
    rsp = nk.rsp_simulate(
        duration=int(resp_phase_s[-1]) + 5, sampling_rate=RSP_TEMPLATE_HZ,
        respiratory_rate=rr_ref, method="breathmetrics", noise=0.0, random_state=_seed(rng),
    )
    rsp = (rsp - rsp.mean()) / (rsp.std() + 1e-9)
    # talking (the TSST speech) breaks the rhythm: slow random modulation of breath depth
    talk = _lag((lab_ctrl == 2).astype(np.float64), CTRL_HZ, 5.0)
    irregular = 1.0 + 0.35 * talk * _band_noise(rng, n_ctrl, CTRL_HZ, 0.05, 0.4)
    resp_ctrl = _warp(rsp, RSP_TEMPLATE_HZ, resp_phase_s) * depth_t * irregular  # (n_ctrl,)
    laugh_on = _events(rng, tgt["laughs_per_min"] * p.movement ** 0.5, CTRL_HZ)
    laugh_env = _bursts(rng, laugh_on, n_ctrl, CTRL_HZ, (2.0, 6.0))

    # ---- heart rate: level + LF (Mayer) + RSA driven by the actual breathing --------------
    lf = p.lf_bpm * _band_noise(rng, n_ctrl, CTRL_HZ, 0.04, 0.15)
    vlf = 1.5 * _band_noise(rng, n_ctrl, CTRL_HZ, 0.003, 0.04)
    rsa_scale = np.clip(12.0 / rr_t, 0.4, 2.0)  # RSA shrinks as breathing gets faster
    hr_inst = hr_t + vlf + hrv_t * (lf + p.rsa_bpm * rsa_scale * resp_ctrl / 1.4)
    hr_inst = np.clip(hr_inst, 40.0, 180.0)
    hr_ref = 60.0
    beat_phase_s = np.cumsum(hr_inst / hr_ref) / CTRL_HZ  # template seconds elapsed (1 beat/s)
    t_ctrl = np.arange(n_ctrl) / CTRL_HZ

    # ---- ECG (chest, 700 Hz) ---------------------------------------------------------------
    ecg_tpl = nk.ecg_simulate(
        duration=int(beat_phase_s[-1]) + 5, sampling_rate=ECG_TEMPLATE_HZ, heart_rate=hr_ref,
        method="simple", noise=0.0, random_state=_seed(rng),
    )
    ecg_tpl = ecg_tpl / np.percentile(ecg_tpl, 99.9)
    t_chest = np.arange(n_chest) / CHEST_HZ
    tau_chest = np.interp(t_chest, t_ctrl, beat_phase_s)
    ecg = p.ecg_gain * _warp(ecg_tpl, ECG_TEMPLATE_HZ, tau_chest)
    resp_chest = _upsample(resp_ctrl, CTRL_HZ, n_chest, CHEST_HZ)
    ecg += 0.05 * p.ecg_gain * resp_chest  # baseline wander with breathing
    ecg += 0.01 * np.sin(2 * np.pi * MAINS_HZ * t_chest + rng.uniform(0, 2 * np.pi))
    ecg += rng.normal(0.0, 0.012, n_chest)

    # ---- chest Resp (%) with laughter flutter ------------------------------------------------
    resp = p.resp_amp * resp_chest
    flutter = _band_noise(rng, n_chest // 7, CHEST_HZ / 7, 3.0, 6.0)  # 100 Hz is plenty
    flutter = _upsample(flutter, CHEST_HZ / 7, n_chest, CHEST_HZ)
    resp += 0.25 * p.resp_amp * flutter * _upsample(laugh_env, CTRL_HZ, n_chest, CHEST_HZ)
    resp += rng.normal(0.0, 0.02 * p.resp_amp, n_chest)

    # ---- movement: wrist bursts (ACC + BVP artefacts), walking in transitions --------------
    move_on = _events(rng, tgt["moves_per_min"] * p.movement, CTRL_HZ)
    move_env = np.maximum(_bursts(rng, move_on, n_ctrl, CTRL_HZ, (1.0, 6.0)), laugh_env)
    move_amp = move_env * rng.lognormal(math.log(0.15), 0.5)
    n_acc = total_s * WRIST_HZ["ACC"]
    w_env = _upsample(move_amp, CTRL_HZ, n_acc, WRIST_HZ["ACC"])
    w_walk = _upsample(walking, CTRL_HZ, n_acc, WRIST_HZ["ACC"])
    w_dyn = np.stack([_band_noise(rng, n_acc, WRIST_HZ["ACC"], 0.3, 6.0) for _ in range(3)], 1)
    steps = np.sin(2 * np.pi * 1.8 * np.arange(n_acc) / WRIST_HZ["ACC"])  # gait at ~1.8 Hz
    w_dyn = w_dyn * w_env[:, None] + 0.25 * (w_walk * steps)[:, None] * np.array([1.0, 0.3, 0.5])
    # arm orientation: re-drawn at each movement burst, otherwise slowly wandering
    rest_arm = np.array([-0.25, 0.15, 0.95])
    poses = np.vstack([rest_arm, rest_arm + rng.normal(0.0, 0.35, (move_on.size, 3))])
    pose_idx = np.searchsorted(move_on, np.arange(n_ctrl), side="right")  # 0 = before any
    wander = np.stack([_band_noise(rng, n_ctrl, CTRL_HZ, 0.001, 0.02) for _ in range(3)], 1)
    g_dir = np.stack([_lag(poses[pose_idx, c], CTRL_HZ, 0.5) for c in range(3)], 1)
    g_dir += 0.05 * wander
    g_dir /= np.linalg.norm(g_dir, axis=1, keepdims=True)
    grav_w = np.stack([_upsample(g_dir[:, c], CTRL_HZ, n_acc, WRIST_HZ["ACC"]) for c in range(3)], 1)
    wrist_acc = grav_w + w_dyn + rng.normal(0.0, 0.006, (n_acc, 3))
    wrist_acc_counts = np.clip(np.round(wrist_acc * E4_ACC_PER_G), -128, 127)

    # chest ACC: posture (sitting vs standing), breathing motion, damped wrist movement
    sit = np.array([0.95, -0.05, -0.30])
    tilt = math.radians(p.posture_tilt_deg)
    stand = np.array([math.cos(tilt) * 0.95 + 0.3 * math.sin(tilt), -0.05,
                      -0.30 * math.cos(tilt) + 0.95 * math.sin(tilt)])
    # people shift in the chair at each movement burst: small posture jumps in every condition
    fidget = np.vstack([np.zeros(3), rng.normal(0.0, 0.04, (move_on.size, 3))])
    shift = np.stack([_lag(fidget[pose_idx, c], CTRL_HZ, 1.0) for c in range(3)], 1)
    post = sit[None, :] + stand_t[:, None] * (stand - sit)[None, :] + shift
    post /= np.linalg.norm(post, axis=1, keepdims=True)
    c_acc = np.stack([_upsample(post[:, c], CTRL_HZ, n_chest, CHEST_HZ) for c in range(3)], 1)
    c_dyn = np.stack([_upsample(0.2 * w_dyn[:, c], WRIST_HZ["ACC"], n_chest, CHEST_HZ)
                      for c in range(3)], 1)
    c_acc += c_dyn
    c_acc[:, 0] += 0.004 * resp_chest
    c_acc += rng.normal(0.0, 0.002, (n_chest, 3))

    # ---- BVP (wrist, 64 Hz): same beats as the ECG, delayed by the transit time ------------
    n_bvp = total_s * WRIST_HZ["BVP"]
    ppg_tpl = nk.ppg_simulate(
        duration=int(beat_phase_s[-1]) + 5, sampling_rate=PPG_TEMPLATE_HZ, heart_rate=hr_ref,
        frequency_modulation=0.0, ibi_randomness=0.0, drift=0.0, motion_amplitude=0.0,
        powerline_amplitude=0.0, burst_number=0, random_state=_seed(rng),
    )
    ppg_tpl = (ppg_tpl - ppg_tpl.mean()) / (ppg_tpl.std() + 1e-9)
    t_bvp = np.arange(n_bvp) / WRIST_HZ["BVP"]
    tau_bvp = np.interp(t_bvp - p.ptt_s, t_ctrl, beat_phase_s)
    amp_bvp = p.bvp_gain * _upsample(pulse_t, CTRL_HZ, n_bvp, WRIST_HZ["BVP"])
    bvp = amp_bvp * _warp(ppg_tpl, PPG_TEMPLATE_HZ, tau_bvp)
    acc64 = np.stack([_upsample(w_dyn[:, c], WRIST_HZ["ACC"], n_bvp, WRIST_HZ["BVP"])
                      for c in range(3)], 1)
    proj = rng.normal(0.0, 1.0, 3)
    bvp += 8.0 * p.bvp_gain * (acc64 @ proj)  # motion artefact tracks the arm's movement
    bvp += 0.15 * p.bvp_gain * _band_noise(rng, n_bvp, WRIST_HZ["BVP"], 0.01, 0.3)
    bvp += rng.normal(0.0, 0.05 * p.bvp_gain, n_bvp)

    # ---- EDA: tonic level + SCRs (neurokit2 SCR shape on a Poisson train) ------------------
    eda_fs = 8  # SCR rise time ~1 s: 8 Hz resolves it, then 4 Hz wrist / 700 Hz chest
    n_eda = total_s * eda_fs
    kernels = [
        nk.eda_simulate(duration=20, sampling_rate=eda_fs // 2, scr_number=1, drift=0.0,
                        noise=0.0, random_state=_seed(rng)) - 1.0
        for _ in range(4)
    ]  # sampled at eda_fs/2 and read at eda_fs: stretches the decay to a wrist-like ~4 s half-life
    scr_rate = _upsample(1.0 + (tgt["scr_per_min"] - 1.0) * arousal * g_eda, CTRL_HZ, n_eda, eda_fs)
    scr_rate = np.clip(scr_rate, 0.1, None)
    imp = np.zeros(n_eda)
    ev = _events(rng, scr_rate, eda_fs)
    imp[ev] = rng.lognormal(math.log(p.scr_amp * p.eda_chest0), 0.5, ev.size)
    kind = rng.integers(0, len(kernels), ev.size)
    phasic = np.zeros(n_eda)
    for j, kern in enumerate(kernels):
        sel = np.zeros(n_eda)
        sel[ev[kind == j]] = imp[ev[kind == j]]
        phasic += np.convolve(sel, kern / max(kern.max(), 1e-9), mode="full")[:n_eda]
    tonic = _upsample(eda_tonic_t, CTRL_HZ, n_eda, eda_fs)
    drift_c = 0.06 * p.eda_chest0 * _band_noise(rng, n_eda, eda_fs, 0.0003, 0.003)
    chest_eda8 = np.clip(p.eda_chest0 + tonic + phasic + drift_c, 0.05, None)
    c_eda = _upsample(chest_eda8, eda_fs, n_chest, CHEST_HZ) + rng.normal(0, 0.003, n_chest)
    ratio = p.eda_wrist0 / p.eda_chest0
    drift_w = 0.10 * p.eda_wrist0 * _band_noise(rng, n_eda, eda_fs, 0.0003, 0.005)
    wrist_eda8 = p.eda_wrist0 + p.wrist_eda_coupling * ratio * (tonic + phasic) + drift_w
    n_w4 = total_s * WRIST_HZ["EDA"]
    w_eda = wrist_eda8[:: eda_fs // WRIST_HZ["EDA"]][:n_w4]
    w_eda = w_eda + rng.normal(0.0, 0.01 + 0.02 * p.eda_wrist0, n_w4)
    w_eda += 0.3 * p.eda_wrist0 * _upsample(move_env, CTRL_HZ, n_w4, 4) * rng.standard_normal(n_w4)
    w_eda = np.clip(w_eda, 0.0, None)

    # ---- skin temperature --------------------------------------------------------------------
    slow_w = 0.12 * _band_noise(rng, n_ctrl, CTRL_HZ, 0.0002, 0.002)
    w_temp = p.temp_wrist0 + temp_w_t + slow_w
    w_temp = np.round((w_temp + rng.normal(0, 0.01, n_ctrl)) / 0.02) * 0.02  # E4 resolution
    slow_c = 0.06 * _band_noise(rng, n_ctrl, CTRL_HZ, 0.0002, 0.002)
    c_temp = _upsample(p.temp_chest0 - 0.2 * temp_w_t + slow_c, CTRL_HZ, n_chest, CHEST_HZ)
    c_temp += rng.normal(0.0, 0.005, n_chest)

    # ---- EMG (trapezius): neurokit2 bursts on a tone that rises with tension ----------------
    emg = np.empty(n_chest)
    i0 = 0
    for lab, d in segs:
        n_b = int(rng.poisson(d / 60.0 * (2.0 + 1.5 * (lab == 2)) * p.movement ** 0.5))
        n_b = min(n_b, int(d // 2))
        part = nk.emg_simulate(duration=d, sampling_rate=CHEST_HZ, burst_number=n_b,
                               burst_duration=float(rng.uniform(0.3, 1.0)), noise=0.0,
                               random_state=_seed(rng))
        emg[i0:i0 + d * CHEST_HZ] = part[: d * CHEST_HZ] - 0.08  # remove nk's DC offset
        i0 += d * CHEST_HZ
    carrier = rng.standard_normal(n_chest)
    # posture shifts wander the tone; arm movement recruits the trapezius
    tone_wander = np.exp(0.2 * _band_noise(rng, n_ctrl, CTRL_HZ, 0.002, 0.02))
    tone_ctrl = tone_t * tone_wander + 0.6 * move_env
    tone_chest = _upsample(tone_ctrl, CTRL_HZ, n_chest, CHEST_HZ)
    emg = p.emg_tone * tone_chest * (3.0 * carrier + 4.0 * emg)
    emg += 0.2 * p.emg_tone * np.sin(2 * np.pi * MAINS_HZ * t_chest)
    emg += 0.004 * ecg  # cardiac crosstalk on the trapezius electrodes

    # ---- dropouts: short flat spans (WESAD has no NaN) ---------------------------------------
    n_drop = int(rng.poisson(total_s / 600.0)) + 1
    for _ in range(n_drop):
        t0 = float(rng.uniform(0.0, total_s - 10.0))
        dur = float(rng.uniform(1.0, 6.0))
        b0, b1 = int(t0 * WRIST_HZ["BVP"]), int((t0 + dur) * WRIST_HZ["BVP"])
        bvp[b0:b1] = bvp[max(b0 - 1, 0)]
        a0, a1 = int(t0 * WRIST_HZ["ACC"]), int((t0 + dur) * WRIST_HZ["ACC"])
        wrist_acc_counts[a0:a1] = wrist_acc_counts[max(a0 - 1, 0)]
        e0, e1 = int(t0 * 4), int((t0 + dur) * 4)
        w_eda[e0:e1] = np.linspace(w_eda[e0], 0.01, max(e1 - e0, 0))  # contact lost

    labels = np.concatenate([np.full(d * CHEST_HZ, lab, np.int32) for lab, d in segs])
    f = np.dtype(dtype)
    col = lambda x: np.asarray(x, f).reshape(-1, 1)  # noqa: E731
    return {
        "subject": f"S{subject_id}",
        "signal": {
            "chest": {
                "ACC": c_acc.astype(f),
                "ECG": col(ecg),
                "EMG": col(emg),
                "EDA": col(c_eda),
                "Temp": col(c_temp),
                "Resp": col(resp),
            },
            "wrist": {
                "ACC": wrist_acc_counts.astype(f),
                "BVP": col(bvp),
                "EDA": col(w_eda),
                "TEMP": col(w_temp),
            },
        },
        "label": labels,
    }


# -------------------------------------------------------------------------------------------
# data set
# -------------------------------------------------------------------------------------------
def generate_dataset(
    out_dir: str | Path,
    n_subjects: int = 10,
    seed: int = 0,
    *,
    minutes_scale: float = 1.0,
    progress: ProgressFn = no_progress,
    dtype: str = "float32",
) -> list[Path]:
    """Write ``n_subjects`` synthetic WESAD subjects under ``out_dir``; returns the pickles.

    Subject ``S{k}`` depends only on ``(seed, k)``, so a larger ``n_subjects`` adds people
    without changing the first ones. ``progress`` hears of every subject written.
    """
    if n_subjects < 1:
        raise ValueError("n_subjects must be >= 1")
    if minutes_scale <= 0:
        raise ValueError("minutes_scale must be positive")
    out = Path(out_dir)
    paths = []
    ids = subject_ids(n_subjects)
    t_start = time.perf_counter()
    progress(ProgressEvent("subjects", "synth WESAD", 0, len(ids)))
    for sid in ids:
        data = generate_subject(sid, seed, minutes_scale=minutes_scale, dtype=dtype)
        path = out / f"S{sid}" / f"S{sid}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".pkl.tmp")
        with tmp.open("wb") as fh:
            # protocol 4 writes arrays as raw bytes (protocol 2 would go through latin-1
            # text, 1.5x larger and slow); pickle.load(f, encoding="latin1") reads it.
            pickle.dump(data, fh, protocol=4)
        tmp.replace(path)
        paths.append(path)
        progress(ProgressEvent("subjects", "synth WESAD", len(paths), len(ids)))
    log.info("wrote %d subjects to %s in %.1f s", len(paths), out, time.perf_counter() - t_start)
    return paths


def write_demo_recording(
    pkl: str | Path,
    out_npz: str | Path,
    *,
    max_minutes: float | None = None,
    dtype: str = "float16",
) -> Path:
    """The hub's demo recording: one subject's wrist signals (and labels) as compact .npz."""
    from core.recording import load_wesad_subject, save_recording

    rec = load_wesad_subject(pkl).wrist_only()
    if max_minutes is not None:
        rec = rec.crop(0.0, max_minutes * 60.0)
    return save_recording(rec, out_npz, dtype=dtype)
