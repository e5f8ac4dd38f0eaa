"""``edge-bench mutation``: mutation testing of the core with mutmut 3 (a benchmark, not CI).

A mutant is a small change to one function (a ``<`` made ``<=``, a constant changed, a call
dropped); the tests of its module run against it and should fail. What they let through says
where they trust the code instead of checking it. Per module, mutmut runs in a private copy
of the repository (nothing under ``mutants/`` in the tree), with only the module's own test
files, each mutant under mutmut's timeout, at ``nice`` priority; then this writes
``benchmarks/results/mutation/results.json`` and ``results.md``: mutants made, killed,
survived, timed out, the equivalent ones by name with the reason, the score
(killed / non-equivalent mutants) and every survivor, with the command and the wall time.

    make mutate                                    # every module below (hours on 2 cores)
    edge-bench mutation --modules framing,decisions --max-children 2

Needs the ``mutation`` extra (``pip install -e '.[mutation]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["EQUIVALENT", "MODULES", "Target", "apply_equivalents", "main", "summarize",
           "write_results"]

REPO: Final = Path(__file__).resolve().parents[1]
OUT_DIR: Final = REPO / "benchmarks" / "results" / "mutation"
# Copied into each private run directory: every package a test may import, and the tests.
PACKAGES: Final = ("core", "edge", "firmware_bridge", "export", "train", "benchmarks", "tests")
# The goal for every module (equivalent mutants excluded).
GOAL: Final = 0.85
# mutmut's own exit codes per mutant (mutmut.stats.status_by_exit_code, 3.x)
_KILLED: Final = {1, 3}
_SURVIVED: Final = {0}
_TIMEOUT: Final = {36, -24, 24, 152, 255}
_NO_TESTS: Final = {5, 33}


@dataclass(frozen=True)
class Target:
    """One module (or a pair that is tested together) and the tests that are its judges."""

    files: tuple[str, ...]
    tests: tuple[str, ...]


MODULES: Final[dict[str, Target]] = {
    "framing": Target(("firmware_bridge/framing.py",),
                      ("tests/unit/firmware_bridge/test_framing.py",)),
    "protocol": Target(("firmware_bridge/protocol.py",),
                       ("tests/unit/firmware_bridge/test_protocol.py",
                        "tests/unit/firmware_bridge/test_framing.py")),
    "decisions": Target(("edge/decisions.py",), ("tests/unit/edge/test_decisions.py",)),
    # test_beats.py: the assembler's beats path (_beats, push_contact) is tested there
    "windows": Target(("core/signal/windows.py",), ("tests/unit/core/signal/test_windows.py",
                                                    "tests/unit/core/signal/test_windows_reference.py",
                                                    "tests/unit/core/signal/test_beats.py")),
    "resample": Target(("core/signal/resample.py",),
                       ("tests/unit/core/signal/test_resample.py",
                        "tests/unit/core/signal/test_windows.py")),
    "quality": Target(("core/signal/quality.py",), ("tests/unit/core/signal/test_quality.py",
                                                    "tests/unit/core/signal/test_quality_reference.py")),
    "calibration": Target(("core/signal/calibration.py",),
                          ("tests/unit/core/signal/test_calibration.py",
                           "tests/unit/core/signal/test_calibration_reference.py")),
    "hrv": Target(("core/hrv.py",), ("tests/unit/core/test_hrv.py",)),
    "rhythm": Target(("core/actigraphy/rhythm.py",), ("tests/unit/core/test_actigraphy_rhythm.py",)),
    "outbox": Target(("edge/sinks/mqtt/outbox.py",), ("tests/unit/edge/sinks/test_mqtt_outbox.py",)),
    "bundle": Target(("edge/bundle.py",), ("tests/unit/edge/test_bundle.py",
                                           "tests/unit/edge/test_bundle_reference.py",
                                           "tests/unit/edge/test_bundle_outputs.py")),
    "signing": Target(("edge/bundle_signature.py",),
                      ("tests/unit/edge/test_bundle_signature.py",
                       "tests/unit/edge/test_bundle.py", "tests/unit/edge/test_signing.py")),
}

# Mutants that cannot change behaviour, by mutmut's name, each with the reason. A mutant is
# listed here only after reading it; names change when the function they mutate changes, so
# a stale entry simply stops matching (it is reported as unmatched).
_BOTH_NONE = ("update() restarts the EMA when either _smoothed or _last_t is None; the two are "
              "None together until the first window sets both, so testing one suffices")
_STRICT = "both sides of zip() have the same length by construction: strict never fires"
_FALSY = "None instead of False where the value is only tested for truth"
_PATH = ("only which internal path decodes changes (every path gives decode_frame's answer): "
         "speed, not behaviour")
_DROPPED = ("the initial value is overwritten by _enforce_bound inside the transaction, and "
            "an exception there skips the return")
_EPOCH = "epoch is set by open(), before anything (peek builds ids) can read it"
_HELLO = ("the cached HELLO (packet, message) is only used after a HELLO set both; a SAMPLES "
          "or other packet never equals the initial placeholder (its type byte differs)")
EQUIVALENT: Final[dict[str, str]] = {
    # core/hrv.py
    **dict.fromkeys(("core.hrv.x__spectral__mutmut_11", "core.hrv.x__spectral__mutmut_13"),
                    "np.polyfit converts its integer abscissa to float64 itself"),
    "core.hrv.x__spectral__mutmut_32":
        "segment 2 vs 3 differs only below 8 tachogram samples (2 s); the spectrum needs 25 s",
    "core.hrv.x__spectral__mutmut_48":
        "1 >> n is 0 and max() picks MIN_NFFT = 1024, which covers every segment (<= 1024)",
    "core.hrv.x__spectral__mutmut_51":
        "segment is even: (segment - 2) and (segment - 1) have the same bit length",
    "core.hrv.x__spectral__mutmut_8": "rate_hz=fs is the tachogram's default rate",
    **dict.fromkeys(("core.hrv.x_band_power__mutmut_8", "core.hrv.x_band_power__mutmut_10"),
                    "with nfft = 1024 at 4 Hz the bins are k/256 Hz: none falls on 0.04, 0.15 "
                    "or 0.40 Hz, so open and closed band edges select the same bins"),
    "core.hrv.x_band_power__mutmut_3": "freqs[0] is 0 Hz: freqs[1] + freqs[0] == freqs[1] - freqs[0]",
    **dict.fromkeys(("core.hrv.x_hrv_features__mutmut_35", "core.hrv.x_hrv_features__mutmut_37"),
                    "HF is never exactly 0 after the spline and detrend (a metronome leaves "
                    "~1e-28 ms²), so the NaN branch only guards a division by zero"),
    **dict.fromkeys(("core.hrv.x_welch_psd__mutmut_100", "core.hrv.x_welch_psd__mutmut_102"),
                    "np.fft.rfftfreq returns float64 already"),
    "core.hrv.x_welch_psd__mutmut_76": "axis=-1, rfft's default, is axis 1 of the 2-D segments",
    **dict.fromkeys(("core.hrv.x_welch_psd__mutmut_81", "core.hrv.x_welch_psd__mutmut_83"),
                    "the spectrum of float64 segments is float64 already"),
    # edge/decisions.py
    "edge.decisions.xǁDecisionLogicǁ__init____mutmut_7": _BOTH_NONE,
    "edge.decisions.xǁDecisionLogicǁ__init____mutmut_8": _BOTH_NONE,
    "edge.decisions.xǁDecisionLogicǁupdate__mutmut_14": _BOTH_NONE,
    "edge.decisions.xǁDecisionLogicǁ__init____mutmut_10":
        "_state_since is written by the first window's _enter() before anything reads it",
    "edge.decisions.xǁDecisionLogicǁ__init____mutmut_11":
        "_state_since is written by the first window's _enter() before anything reads it",
    "edge.decisions.xǁDecisionLogicǁupdate__mutmut_8":
        "reshape(-2): NumPy takes any negative size as the one inferred dimension, as -1",
    **{f"edge.decisions.xǁDecisionLogicǁupdate__mutmut_{n}": _STRICT
       for n in (101, 104, 109, 113, 116, 121)},
    # core/signal/quality.py: max_gap's edge checks and the start index only add stretches
    # of zero or negative length, which never beat the best (a strict >); the pre-checks of
    # FLAT, SATURATED-by-range and the pinned suspects may only widen (the exact test after
    # them decides), so a wider pre-check is the same verdict, slower
    **dict.fromkeys(("core.signal.quality.x_max_gap__mutmut_4",
                     "core.signal.quality.x_max_gap__mutmut_16"),
                    "a sample exactly at the window edge makes a stretch of length 0, which "
                    "never beats best (>= 0) under the strict >"),
    **dict.fromkeys(("core.signal.quality.x_max_gap__mutmut_45",
                     "core.signal.quality.x_max_gap__mutmut_48"),
                    "starting one interval earlier only adds one ending at or before the "
                    "window start: clipped length <= 0, never the maximum over best"),
    "core.signal.quality.x_quality_problems__mutmut_109":
        "the fallback run length goes through max(pinned_min_run_samples, .); a run of "
        "length >= 0 and >= 1 selects the same runs (every run has at least one sample)",
    **dict.fromkeys(tuple(f"core.signal.quality.x_quality_problems__mutmut_{n}"
                          for n in (27, 30)),
                    "the FLAT pre-check only widens (a bound var >= ptp^2 / 2n); the std test "
                    "after it decides"),
    **dict.fromkeys(tuple(f"core.signal.quality.x_quality_problems__mutmut_{n}"
                          for n in (52, 54, 55, 57)),
                    "the out-of-range pre-check only widens; the count of samples outside "
                    "the valid range after it decides"),
    **dict.fromkeys(tuple(f"core.signal.quality.x_quality_problems__mutmut_{n}"
                          for n in (71, 73, 78, 80, 88, 96)),
                    "a wider set of pinned suspects: a suspect is reported only when its "
                    "own pinned runs (<= its samples at the rail) exceed the limit"),
    "core.signal.quality.x_run_samples__mutmut_5":
        "a float64 mask gives +1.0 / -1.0 edges, equal to the int8 ones under ==",
    # firmware_bridge/framing.py: FrameDecoder's internal paths (Python / numpy COBS, views /
    # one ndarray per packet, the cached fast path) are chosen for speed and all give what
    # decode_frame gives (tests/unit/firmware_bridge/test_framing.py forces every path); a
    # mutant that only changes which path runs is the same behaviour, slower
    **{f"firmware_bridge.framing.{f}__mutmut_{n}": _PATH
       for f, ns in (("xǁFrameDecoderǁ_parse", (16, 17, 18, 19, 46, 47, 60, 61)),
                     ("xǁFrameDecoderǁfeed", (50, 51)),
                     ("xǁFrameDecoderǁ_unstuff_few", (33,)),
                     ("xǁFrameDecoderǁ_unstuff_many", (50, 56)),
                     ("xǁFrameDecoderǁ_remember", (11,)))
       for n in ns},
    **{f"firmware_bridge.framing.{f}__mutmut_{n}": _STRICT
       for f, ns in (("xǁFrameDecoderǁ_parse", (22, 25, 26)),
                     ("xǁFrameDecoderǁ_unstuff_many", (72, 75, 76)))
       for n in ns},
    **{f"firmware_bridge.framing.{f}__mutmut_{n}": _FALSY
       for f, ns in (("xǁFrameDecoderǁ__init__", (9,)), ("xǁFrameDecoderǁreset", (3,)),
                     ("xǁFrameDecoderǁ_unstuff_few", (61,)), ("xǁFrameDecoderǁfeed", (31,)))
       for n in ns},
    **{f"firmware_bridge.framing.xǁFrameDecoderǁfeed__mutmut_{n}":
       "the bytes after the last 0x00 (kept in the buffer either way) may or may not be "
       "passed on: both COBS passes only look at bytes up to a delimiter"
       for n in (42, 43, 44, 45, 46, 48)},
    "firmware_bridge.framing.xǁFrameDecoderǁfeed__mutmut_8": "b'' + data == data",
    "firmware_bridge.framing.xǁFrameDecoderǁfeed__mutmut_63":
        "_parse of no packets returns [] and adds 0 frames",
    "firmware_bridge.framing.x_encode_packet__mutmut_16":
        "int.to_bytes's byteorder defaults to 'big' (Python >= 3.11, the floor)",
    "firmware_bridge.framing.x_decode_packet__mutmut_28":
        "int.from_bytes's byteorder defaults to 'big' (Python >= 3.11, the floor)",
    "firmware_bridge.framing.x__row_views__mutmut_21":
        "a view with no row is never made: views are built only for 128+ packets in a read",
    "firmware_bridge.framing.xǁFrameDecoderǁ_remember__mutmut_1":
        "the cache bound 256 vs 257 keys: memory only, what is decoded is the same",
    "firmware_bridge.framing.xǁFrameDecoderǁ__init____mutmut_4": _HELLO,
    "firmware_bridge.framing.xǁFrameDecoderǁ__init____mutmut_5": _HELLO,
    "firmware_bridge.framing.xǁFrameDecoderǁ__init____mutmut_6": _HELLO,
    "firmware_bridge.framing.xǁFrameDecoderǁ_finish__mutmut_2":
        "bytes(uint8 ndarray) == ndarray.tobytes()",
    "firmware_bridge.framing.xǁFrameDecoderǁ_unstuff_few__mutmut_39":
        "a long frame's start is overwritten by _finish (or the frame dropped) before use",
    "firmware_bridge.framing.xǁFrameDecoderǁ_unstuff_many__mutmut_27":
        "-2 or -1: any negative length is outside every mask (empty, short, mid, long)",
    **{f"firmware_bridge.framing.xǁFrameDecoderǁ_unstuff_many__mutmut_{n}":
       "np.asarray of a list of Python ints is int64, the dtype of ends"
       for n in (87, 89)},
    # edge/sinks/mqtt/outbox.py
    **{f"edge.sinks.mqtt.outbox.xǁOutboxǁ{f}__mutmut_{n}":
       "SQL text in another letter case: SQLite keywords and identifiers ignore case, and "
       "LIKE compares ASCII without case"
       for f, ns in (("_enforce_bound", (5, 6, 21, 22, 24, 25, 38, 39, 41)), ("ack", (10, 11)),
                     ("count", (5, 6)), ("dropped", (5, 6)), ("open", (10, 11, 29, 30)),
                     ("peek", (7, 8, 10, 11)),
                     ("put", (14, 15, 17, 38, 39, 41, 42, 44, 46, 53, 54)),
                     ("reported", (6, 7, 9)), ("wearer", (7, 8, 10, 11)), ("wearers", (4, 5)))
       for n in ns},
    "edge.sinks.mqtt.outbox.xǁOutboxǁ_with_id__mutmut_16": "'UTF-8' and 'utf-8' name one codec",
    "edge.sinks.mqtt.outbox.x__json__mutmut_7": _FALSY,
    "edge.sinks.mqtt.outbox.xǁOutboxǁput__mutmut_29":
        "only the second item of the default pair is read",
    "edge.sinks.mqtt.outbox.xǁOutboxǁput__mutmut_7": _DROPPED,
    "edge.sinks.mqtt.outbox.xǁOutboxǁput__mutmut_8": _DROPPED,
    "edge.sinks.mqtt.outbox.xǁOutboxǁ__init____mutmut_6": _EPOCH,
    "edge.sinks.mqtt.outbox.xǁOutboxǁ__init____mutmut_7": _EPOCH,
    "edge.sinks.mqtt.outbox.xǁOutboxǁ_enforce_bound__mutmut_12":
        "with no excess the loop deletes LIMIT 0 rows: nothing, as breaking out does",
    # core/actigraphy/rhythm.py
    **{f"core.actigraphy.rhythm.{f}__mutmut_{n}": "float('NAN') is the same NaN as float('nan')"
       for f, ns in (("x__extreme", (14, 17)), ("x_interdaily_stability", (9, 20)),
                     ("x_intradaily_variability", (18, 28)), ("x_relative_amplitude", (12,)))
       for n in ns},
    **{f"core.actigraphy.rhythm.x_daily_profile__mutmut_{n}":
       "the division is by max(counts, 1): no warning for errstate to silence"
       for n in (18, 19, 20, 21)},
    **{f"core.actigraphy.rhythm.x__window_means__mutmut_{n}":
       "sums / cnts never divides a non-zero sum by zero (an empty window sums to 0): "
       "divide= has nothing to silence"
       for n in (35, 37)},
    "core.actigraphy.rhythm.x__window_means__mutmut_16": "astype(None) is float64, as float",
    "core.actigraphy.rhythm.x__window_means__mutmut_44":
        "None stored in a float array is NaN",
    "core.actigraphy.rhythm.x_hourly_values__mutmut_19":
        "seconds of day are >= 0: truncating a quotient is flooring it",
    "core.actigraphy.rhythm.x_hourly_values__mutmut_23": "np.arange of ints is int64 already",
    "core.actigraphy.rhythm.x_hourly_values__mutmut_25": "np.arange of ints is int64 already",
    "core.actigraphy.rhythm.x_hourly_values__mutmut_31":
        "with no epochs, first offsets an empty index array: nothing changes",
    "core.actigraphy.rhythm.x_most_active__mutmut_6": _FALSY,
    # core/signal/windows.py
    **dict.fromkeys(("core.signal.windows.xǁWindowAssemblerǁ_beats__mutmut_9",
                     "core.signal.windows.xǁWindowAssemblerǁ_modality__mutmut_13"),
                    "side='left' is np.searchsorted's default"),
    "core.signal.windows.xǁWindowAssemblerǁ_modality__mutmut_96":
        "for one channel isfinite(x).all(axis=0) is isfinite(x[0])",
    **dict.fromkeys(tuple(f"core.signal.windows.xǁWindowAssemblerǁ_modality__mutmut_{n}"
                          for n in (104, 105, 107)),
                    "all_finite only picks shortcuts: with every sample finite the filtered "
                    "arrays equal the originals, max_gap gives what the shortcut assumes (<= "
                    "max_gap_s), and the NON_FINITE re-checks count the same samples"),
    **dict.fromkeys(tuple(f"core.signal.windows.xǁWindowAssemblerǁ_modality__mutmut_{n}"
                          for n in (128, 129, 130, 131, 132, 133, 134)),
                    "a stricter condition for the no-gap shortcut: max_gap then computes the "
                    "gap, which is <= max_gap_s whenever the shortcut applied"),
    "core.signal.windows.xǁWindowAssemblerǁ_nominal__mutmut_17":
        "|src/rate - 1| is never exactly RATE_SNAP: the subtraction is exact, so it is a "
        "multiple of 2**-53, and float 0.15 is an odd multiple of 2**-55",
    # core/signal/resample.py
    "core.signal.resample.x_sliding_window_starts__mutmut_17":
        "with n == 0 the general return is an empty float64 array too",
    **dict.fromkeys((*(f"core.signal.resample.x_sliding_window_starts__mutmut_{n}"
                       for n in (20, 22)),
                     *(f"core.signal.resample.x_find_gaps__mutmut_{n}" for n in (9, 11)),
                     *(f"core.signal.resample.x_resample_to_grid__mutmut_{n}" for n in (63, 65))),
                    "np.zeros' default dtype is float64"),
    **dict.fromkeys((*(f"core.signal.resample.x_sliding_window_starts__mutmut_{n}"
                       for n in (27, 29)),
                     *(f"core.signal.resample.x_resample_channels__mutmut_{n}"
                       for n in (7, 9, 30, 32))),
                    "an integer arange times or over a float is the float64 arange's values "
                    "(integers below 2**53 convert exactly)"),
    **dict.fromkeys(tuple(f"core.signal.resample.x_keep_increasing__mutmut_{n}" for n in (8, 11)),
                    "the shortcut for an ordered chunk is never taken: the general rule then "
                    "gives the same mask and counts"),
    "core.signal.resample.x_fir_taps__mutmut_11":
        "reshape(-2): NumPy takes any negative size as the one inferred dimension, as -1",
    **dict.fromkeys(("core.signal.resample.x_resample_channels__mutmut_64",
                     "core.signal.resample.x_resample_hop_grid__mutmut_84"),
                    "einsum labels are case-sensitive letters: CTMQ,QM->CT is the same "
                    "contraction"),
    **dict.fromkeys(tuple(f"core.signal.resample.x__interp_channels__mutmut_{n}"
                          for n in (12, 14)),
                    "np.empty's default dtype is float64"),
    **dict.fromkeys(tuple(f"core.signal.resample.x_hop_grid_times__mutmut_{n}" for n in (8, 11)),
                    "np.arange of Python ints is int64 already (NumPy 2's default integer)"),
    **dict.fromkeys(tuple(f"core.signal.resample.x_resample_to_grid__mutmut_{n}"
                          for n in (8, 10, 13, 15)),
                    "values and grid are only read by np.interp and float64 arithmetic, which "
                    "promote any real dtype to float64 exactly"),
    # edge/bundle.py
    "edge.bundle.x__extract_archive__mutmut_4":
        "tarfile.open's default mode 'r' is 'r:*' (transparent decompression)",
    **dict.fromkeys(tuple(f"edge.bundle.x__extract_archive__mutmut_{n}" for n in (70, 73, 78, 80)),
                    "members=None extracts every member, and every member passed the checks "
                    "(any other raised before extraction): the same list"),
    "edge.bundle.x_sha256_file__mutmut_8":
        "read(None) hashes the file in one block: the same digest, only more memory",
    "edge.bundle.x__parse_manifest__mutmut_5": "'UTF-8' and 'utf-8' name one codec",
    "edge.bundle.x__check_outputs__mutmut_46":
        "entry is None exactly when dim is None (head is read only with an embedding size)",
    "edge.bundle_signature.x__key_bytes__mutmut_8": "'ASCII' and 'ascii' name one codec",
    "edge.bundle_signature.x_check_signature__mutmut_40": "'UTF-8' and 'utf-8' name one codec",
    # core/signal/calibration.py
    "core.signal.calibration.xǁCalibrationAccumulatorǁ__init____mutmut_10":
        "_ready None means 'check again': with nothing pushed the check says False, the "
        "initial value",
    **dict.fromkeys(tuple(f"core.signal.calibration.xǁCalibrationǁfrom_dict__mutmut_{n}"
                          for n in (19, 21, 26, 28)),
                    "__post_init__ converts every value to float64 again: converting here "
                    "first gives the same array, or the same error type"),
    **dict.fromkeys(tuple(f"core.signal.calibration.x__calibrate_modality__mutmut_{n}"
                          for n in (29, 31)),
                    "with stats=False the caller (ready) only checks that nothing is raised; "
                    "the arrays returned are discarded"),
    **dict.fromkeys(tuple(f"core.signal.calibration.x__calibrate_modality__mutmut_{n}"
                          for n in (51, 53, 55, 57)),
                    "np.percentile of float64 samples (coerce_chunk made them float64) is "
                    "float64 already"),
    "core.signal.calibration.xǁCalibrationAccumulatorǁprogress__mutmut_3":
        "the result is min(1.0, p): a running minimum started at 2.0 instead of 1.0 gives "
        "the same",
    "core.signal.calibration.xǁCalibrationAccumulatorǁprogress__mutmut_22":
        "p starts at 1.0 and only decreases: min(2.0, p) is min(1.0, p)",
    "core.signal.calibration.xǁCalibrationAccumulatorǁ_arrays__mutmut_1":
        "concatenating a list of one array gives an equal array",
    **dict.fromkeys(tuple(f"core.signal.calibration.xǁCalibrationAccumulatorǁ_arrays__mutmut_{n}"
                          for n in (11, 13, 16, 18)),
                    "np.zeros' default dtype is float64"),
    "core.signal.calibration.xǁCalibrationAccumulatorǁ_arrays__mutmut_19":
        "with no time stamp the values are never read: fewer than 2 samples raise first",
    "core.signal.calibration.xǁCalibrationAccumulatorǁpush__mutmut_46":
        "side='left' is np.searchsorted's default",
    **dict.fromkeys(tuple(f"core.signal.calibration.x_normalize__mutmut_{n}"
                          for n in (3, 5, 12, 14, 24, 26)),
                    "x - center with one float64 operand promotes the other (int, bool, "
                    "float16/32) exactly to float64: converting first gives the same bits"),
    **dict.fromkeys((*(f"core.signal.calibration.x_normalize__mutmut_{n}" for n in (16, 28)),
                     *(f"core.signal.calibration.xǁCalibrationǁ__post_init____mutmut_{n}"
                       for n in (8, 16))),
                    "reshape(-2, 1): NumPy takes any negative size as the one inferred "
                    "dimension, as -1"),
    "edge.decisions.xǁDeviceEventsǁon_battery__mutmut_5":
        "_battery_armed = None instead of False: only ever read as `not armed` / `armed`, "
        "where None and False agree",
}


def _mutmut_config(target: Target) -> str:
    roots = sorted({f.split("/")[0] for f in target.files})
    return "\n".join([
        "",
        "[tool.mutmut]",
        f"source_paths = {json.dumps(roots)}",
        f"only_mutate = {json.dumps(list(target.files))}",
        f"also_copy = {json.dumps([p for p in PACKAGES if p not in roots])}",
        f"pytest_add_cli_args_test_selection = {json.dumps(list(target.tests))}",
        # -x: one failing test kills the mutant; no cache in a throwaway copy
        'pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]',
        # a mutant that loops is stopped at 10x the tests' clean time + 5 s
        "timeout_multiplier = 10.0",
        "timeout_constant = 5.0",
        "use_git_change_detection = false",
        "",
    ])


def _prepare(workdir: Path, target: Target) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, workdir / pkg, ignore=ignore)
    pyproject = (REPO / "pyproject.toml").read_text()
    (workdir / "pyproject.toml").write_text(pyproject + _mutmut_config(target))


def _read_meta(workdir: Path) -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    for meta in sorted((workdir / "mutants").rglob("*.meta")):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def _diff(workdir: Path, name: str, env: dict[str, str]) -> str:
    p = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir, env=env,
                       capture_output=True, text=True, timeout=120)
    lines = [x for x in p.stdout.splitlines() if x.startswith(("+", "-"))
             and not x.startswith(("+++", "---"))]
    return "\n".join(lines)


def summarize(name: str, codes: dict[str, int | None],
              equivalent: dict[str, str] | None = None, *, stopped: bool = False
              ) -> dict[str, Any]:
    """Counts and score of one module from mutmut's exit code per mutant.

    ``stopped``: the run was stopped before mutmut ran every mutant (time); the mutants
    without a verdict are then counted as ``not_run`` and left out of the score, which is
    over the mutants run. Otherwise a mutant without a verdict counts against the score."""
    eq = {k: v for k, v in (equivalent if equivalent is not None else EQUIVALENT).items()
          if k in codes}
    killed = [k for k, c in codes.items() if c in _KILLED]
    timed_out = [k for k, c in codes.items() if c in _TIMEOUT]
    survived = [k for k, c in codes.items() if c in _SURVIVED and k not in eq]
    no_tests = [k for k, c in codes.items() if c in _NO_TESTS and k not in eq]
    not_run = [k for k, c in codes.items() if stopped and c is None and k not in eq]
    other = [k for k, c in codes.items() if k not in eq and k not in not_run
             and c not in _KILLED | _TIMEOUT | _SURVIVED | _NO_TESTS]
    # a timeout is a kill (the tests did not pass); a mutant no test reaches is a survivor
    scored = len(codes) - len(eq) - len(not_run)
    caught = len(killed) + len([k for k in timed_out if k not in eq])
    row = {
        "name": name,
        "made": len(codes),
        "killed": len(killed),
        "survived": len(survived) + len(no_tests),
        "timed_out": len(timed_out),
        "not_checked": len(other),
        "equivalent": [{"mutant": k, "reason": v} for k, v in sorted(eq.items())],
        "score": round(caught / scored, 4) if scored else None,
        "survivors": sorted(survived + no_tests + other),
    }
    if not_run:
        # the score is then over the mutants that were run, a sample of the module
        row["not_run"] = len(not_run)
    return row


def apply_equivalents(row: dict[str, Any]) -> dict[str, Any]:
    """A saved row with :data:`EQUIVALENT` as it is now: survivors read since the run was
    made move to ``equivalent`` and the score is recomputed."""
    known = {e["mutant"]: e["reason"] for e in row["equivalent"]}
    known.update({k: EQUIVALENT[k] for k in row["survivors"] if k in EQUIVALENT})
    survivors = [k for k in row["survivors"] if k not in known]
    moved = len(row["survivors"]) - len(survivors)
    scored = row["made"] - len(known) - row.get("not_run", 0)
    out = dict(row)
    out["equivalent"] = [{"mutant": k, "reason": v} for k, v in sorted(known.items())]
    out["survivors"] = survivors
    out["survived"] = row["survived"] - moved
    out["survivor_diffs"] = {k: v for k, v in row.get("survivor_diffs", {}).items()
                             if k in survivors}
    out["score"] = round((row["killed"] + row["timed_out"]) / scored, 4) if scored else None
    # survivors of this run that tests written since kill, each checked by applying the
    # mutant to a scratch copy and running the module's tests (until the module is rerun)
    later = [k for k in row.get("killed_by_new_tests", []) if k in survivors]
    if later:
        out["killed_by_new_tests"] = later
        out["survivors"] = [k for k in survivors if k not in later]
        out["survivor_diffs"] = {k: v for k, v in out["survivor_diffs"].items()
                                 if k not in later}
        out["score_with_new_tests"] = round(
            (row["killed"] + row["timed_out"] + len(later)) / scored, 4)
    return out


def run_module(name: str, target: Target, *, max_children: int, keep: Path | None
               ) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    workdir = base / "repo"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYPOTHESIS_PROFILE")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        _prepare(workdir, target)
        cmd = ["nice", "-n", "15", sys.executable, "-m", "mutmut", "run",
               "--max-children", str(max_children)]
        t0 = time.monotonic()
        p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        codes = _read_meta(workdir)
        if not codes:
            raise RuntimeError(f"mutmut made no mutants for {name}:\n{p.stdout[-3000:]}\n"
                               f"{p.stderr[-3000:]}")
        row = summarize(name, codes)
        row["files"] = list(target.files)
        row["tests"] = list(target.tests)
        row["wall_s"] = round(wall, 1)
        row["survivor_diffs"] = {k: _diff(workdir, k, env) for k in row["survivors"]}
        return row
    finally:
        if keep is not None:
            shutil.copytree(workdir / "mutants", keep / name, dirs_exist_ok=True)
        shutil.rmtree(base, ignore_errors=True)


def render(doc: dict[str, Any]) -> str:
    lines = [
        "# Mutation testing of the core",
        "",
        f"Command: `{doc['command']}` (mutmut {doc['mutmut']}, {doc['machine']}); "
        f"wall time {doc['wall_s'] / 60:.1f} min. Score = killed (timeouts included) / "
        f"non-equivalent mutants; goal {GOAL:.0%} per module.",
        "",
        "| module | files | made | killed | survived | timed out | equivalent | score | "
        "with tests since | wall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in doc["modules"]:
        score = "–" if m["score"] is None else f"{m['score']:.1%}"
        # survivors killed by tests written after the run (checked on a scratch copy)
        since = f"{m['score_with_new_tests']:.1%}" if m.get("score_with_new_tests") else "–"
        lines.append(f"| {m['name']} | {', '.join(m['files'])} | {m['made']} | {m['killed']} | "
                     f"{m['survived']} | {m['timed_out']} | {len(m['equivalent'])} | {score} | "
                     f"{since} | {m['wall_s'] / 60:.1f} min |")
    for m in doc["modules"]:
        if m.get("not_run"):
            lines += ["", f"{m['name']}: the run was stopped after {m['made'] - m['not_run']} of "
                          f"{m['made']} mutants (time); its score is over the mutants run."]
    commands = sorted({m.get("command", doc["command"]) for m in doc["modules"]})
    lines += ["", "Modules were measured by: " + "; ".join(f"`{c}`" for c in commands) + "."]
    for m in doc["modules"]:
        if not (m["survivors"] or m["equivalent"]):
            continue
        lines += ["", f"## {m['name']}", ""]
        if m.get("killed_by_new_tests"):
            lines.append(f"Score with the tests written since this run: "
                         f"{m['score_with_new_tests']:.1%} ({len(m['killed_by_new_tests'])} "
                         "survivors now killed, each checked by applying it to a scratch copy; "
                         "a rerun will count them). Now killed: "
                         + ", ".join(f"`{k.split('.')[-1]}`" for k in m["killed_by_new_tests"]))
            lines.append("")
        for e in m["equivalent"]:
            lines.append(f"- equivalent `{e['mutant']}`: {e['reason']}")
        for k in m["survivors"]:
            diff = m.get("survivor_diffs", {}).get(k, "")
            lines.append(f"- survived `{k}`")
            if diff:
                lines += ["", "  ```diff", *("  " + x for x in diff.splitlines()), "  ```"]
    return "\n".join(lines) + "\n"


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="edge-bench mutation",
        description="Mutation testing (mutmut 3) of the core modules, each against its own "
                    "tests; writes benchmarks/results/mutation/results.{json,md}.")
    ap.add_argument("--modules", default=",".join(MODULES),
                    help=f"comma-separated, from {', '.join(MODULES)} (default: all)")
    ap.add_argument("--max-children", type=int, default=1,
                    help="mutants tested at once (default 1: the machine is shared)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--keep", type=Path, default=None,
                    help="copy mutmut's mutants/ directories here for `mutmut show`")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RESULTS_JSON",
                    help="only combine these results.json files (later ones win per module) "
                         "into --out, re-reading the equivalent mutants; nothing is run")
    args = ap.parse_args(argv)
    if args.merge:
        merged: dict[str, dict[str, Any]] = {}
        for f in args.merge:
            merged.update({m["name"]: m for m in json.loads(f.read_text())["modules"]})
        args.out.mkdir(parents=True, exist_ok=True)
        doc = write_results(args.out, merged, command="edge-bench mutation --merge ...",
                            this_run_s=0.0)
        for m in doc["modules"]:
            print(f"mutation: {m['name']}: score {m['score']}")
        return 0
    names = [n.strip() for n in args.modules.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        ap.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    # modules run earlier stay in the file: runs of a few modules at a time add up
    old = json.loads(path.read_text()) if path.is_file() else {"modules": []}
    rows = {m["name"]: m for m in old.get("modules", [])}
    t0 = time.monotonic()
    command = "edge-bench mutation " + shlex.join(
        [*(argv if argv is not None else sys.argv[1:])])
    for name in names:
        print(f"mutation: {name} ...", flush=True)
        row = run_module(name, MODULES[name], max_children=args.max_children, keep=args.keep)
        row["command"] = command
        rows[name] = row
        score = "–" if row["score"] is None else f"{row['score']:.1%}"
        print(f"mutation: {name}: {row['killed']}/{row['made']} killed, {row['survived']} "
              f"survived, score {score} ({row['wall_s'] / 60:.1f} min)", flush=True)
        # written after every module: a long run stopped half way keeps what it measured
        write_results(args.out, rows, command=command, this_run_s=time.monotonic() - t0)
    print(f"mutation: wrote {path} and results.md")
    return 0


def write_results(out: Path, rows: dict[str, dict[str, Any]], *, command: str,
                  this_run_s: float) -> dict[str, Any]:
    """``results.json`` and ``results.md`` of every module measured so far."""
    ordered = [apply_equivalents(rows[n]) for n in MODULES if n in rows]
    doc = {
        "command": command,
        "mutmut": _mutmut_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "wall_s": round(sum(m["wall_s"] for m in ordered), 1),
        "this_run_wall_s": round(this_run_s, 1),
        "goal": GOAL,
        "modules": ordered,
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "results.md").write_text(render(doc))
    return doc


if __name__ == "__main__":
    raise SystemExit(main())
