"""Signal processing shared by training and the hub: multi-rate streams -> model windows.

The ONE implementation: training (``train/``) and the hub (``edge-daemon``) both call it, and
a second copy anywhere would be train/serve skew. numpy only. One module per job:

- :mod:`core.signal.resample`: streams, input hygiene, anti-aliased resampling onto a grid.
- :mod:`core.signal.calibration`: a person's baseline, the one robust spread, normalization.
- :mod:`core.signal.quality`: why a window is invalid (gaps, coverage, flat, saturated).
- :mod:`core.signal.windows`: the streaming window assembler and the offline path over it.

The public names below are the stable API; ``docs/signal.md`` states the semantics other
modules rely on (margins, resampling, gaps, quality, the stall cap).
"""

from __future__ import annotations

from core.signal.calibration import (
    CALIBRATION_SCHEMA,
    Calibration,
    CalibrationAccumulator,
    compute_calibration,
    normalize,
    robust_spread,
    scale_floor,
)
from core.signal.quality import InvalidReason, QualityThresholds
from core.signal.resample import (
    DOWNSAMPLE_TOLERANCE,
    FIR_CUTOFF,
    FIR_HALF_PERIODS,
    Stream,
    find_gaps,
    fir_taps,
    resample_to_grid,
    sliding_window_starts,
    window_margin_s,
)
from core.signal.windows import AssemblerStats, Window, WindowAssembler, windows_from_streams

__all__ = [
    "CALIBRATION_SCHEMA",
    "DOWNSAMPLE_TOLERANCE",
    "FIR_CUTOFF",
    "FIR_HALF_PERIODS",
    "AssemblerStats",
    "Calibration",
    "CalibrationAccumulator",
    "InvalidReason",
    "QualityThresholds",
    "Stream",
    "Window",
    "WindowAssembler",
    "compute_calibration",
    "find_gaps",
    "fir_taps",
    "normalize",
    "resample_to_grid",
    "robust_spread",
    "scale_floor",
    "sliding_window_starts",
    "window_margin_s",
    "windows_from_streams",
]
