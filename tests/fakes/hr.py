"""Heart-rate (RR) fakes: a toy RR bundle, a recording with beats, a strap's notifications.

:func:`toy_hr_bundle` trains the toy student on the ``rr`` beats modality under a short
contract (8 s windows, 2 s hop, 20 s enrollment, 3 s cleaning context) and exports it with
the real pipeline (ONNX fp32 + int8, TFLite fp32), once per session like
:func:`tests.fakes.daemon.toy_bundle`: a strap played in real time (the BLE end-to-end test)
then gets decisions within half a minute. :func:`beats_recording` is a labelled recording
with an ``rr`` beat series (simulated, with ectopic and missed beats), saved as our ``.npz``;
:func:`strap_values` lays its beats out as a strap's Heart Rate Measurement values;
:func:`rr_runs_in` is the privacy tests' search for RR intervals in what a hub wrote.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import numpy as np

from core.contract import BeatRules, InputContract, Modality, Normalization
from core.recording import Beats, Recording, Signal, save_recording
from firmware_bridge import gatt
from firmware_bridge.sim.rr import RRPerson, heart_rate_notifications, simulate_rr

__all__ = ["beats_recording", "rr_runs_in", "strap_values", "toy_hr_bundle", "toy_hr_contract"]

TOY_HR_FORMATS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32")


def toy_hr_contract() -> InputContract:
    """rr beats at 4 Hz over 8 s windows (L = 32), 2 s hop, 20 s enrollment, 3 s context."""
    return InputContract(
        modalities=(Modality("rr", "s", 4.0, ("rr",), valid_range=(0.25, 2.0), kind="beats"),),
        class_names=("baseline", "stress", "amusement"),
        window_s=8.0,
        hop_s=2.0,
        normalization=Normalization(kind="subject_baseline", calibration_s=20.0, clip=10.0),
        beats=BeatRules(context_s=3.0),
    )


def toy_hr_bundle(base: Path) -> Path:
    """The session's exported toy RR bundle directory (built on first use)."""
    root = base / "hr-toy-bundle"
    bundle = root / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    from export.pipeline import ExportOptions, export_run
    from tests.fakes.runs import build_run

    run = build_run(root / "run", contract=toy_hr_contract())
    from export.signing import DEMO_PRIVATE_KEY

    # signed with the demo key, which a hub trusts by default: the daemon requires a signature
    export_run(run.path, bundle, ExportOptions(formats=TOY_HR_FORMATS, latency_runs=5,
                                               plots=False, compare_methods=False,
                                               sign_key=DEMO_PRIVATE_KEY))
    return bundle


def beats_recording(path: Path, duration_s: float = 240.0, *, seed: int = 0,
                    resting_hr_bpm: float = 75.0) -> Path:
    """A labelled recording (baseline, stress, baseline) with only an ``rr`` beat series."""
    rate = 10.0  # labels need no 700 Hz here: the beats carry the physiology
    n = round(duration_s * rate)
    codes = np.ones(n, np.int8)
    codes[n // 3: 2 * n // 3] = 2
    sim = simulate_rr(codes, rate, seed=seed, person=RRPerson(resting_hr_bpm=resting_hr_bpm),
                      ectopic_per_min=0.3, missed_per_min=0.1)
    rec = Recording("rr-toy", {}, Signal(rate, codes[:, None], "code", ("label",)),
                    {"source": "tests/fakes/hr.py"}, {"rr": Beats(sim.t_s, sim.rr_s)})
    return save_recording(rec, path)


def strap_values(duration_s: float, *, seed: int = 0, resting_hr_bpm: float = 110.0,
                 contact_losses: tuple[tuple[float, float], ...] = ()
                 ) -> list[tuple[float, bytes, tuple[float, ...]]]:
    """A strap's notifications over ``duration_s`` of baseline: ``(time s, Heart Rate
    Measurement bytes, the RR intervals in it)``, one a second. A fast resting rate packs
    more beats into a short real-time test."""
    rate = 10.0
    codes = np.ones(round(duration_s * rate), np.int8)
    sim = simulate_rr(codes, rate, seed=seed, person=RRPerson(resting_hr_bpm=resting_hr_bpm))
    out = []
    for t, m in heart_rate_notifications(sim, contact_losses=contact_losses):
        out.append((t, gatt.encode_heart_rate_measurement(m), m.rr_s))
    return out


def rr_runs_in(data: bytes, rr: np.ndarray, run: int = 4) -> bool:
    """Whether ``data`` holds ``run`` consecutive intervals of ``rr`` (s): as text in seconds
    (3 or 4 places) or milliseconds (0 or 1 place), as float32/float64, or as the wire's
    uint16 in 1/1024 s."""
    nums = np.asarray([float(m) for m in re.findall(rb"-?\d+(?:\.\d+)?", data)])
    for scale, dec in ((1.0, 3), (1.0, 4), (1000.0, 0), (1000.0, 1)):
        want = {tuple(np.round(rr[i:i + run] * scale, dec)) for i in range(rr.size - run)}
        got = np.round(nums, dec)
        if any(tuple(got[i:i + run]) in want for i in range(got.size - run + 1)):
            return True
    wire = np.rint(rr * 1024.0).astype(np.uint16)
    for a in (rr.astype(np.float32), rr.astype(np.float64), wire):
        if any(a[i:i + run].tobytes() in data for i in range(a.size - run)):
            return True
    return False
