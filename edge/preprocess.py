"""Shared preprocessing: multi-rate streams -> normalized, validated, fixed-size windows.

The ONE implementation used by training (``train/``) and by the hub (``edge-daemon``).
numpy only. Train/serve skew is a bug: never re-implement any of this elsewhere.

API (stable; other modules code against it):

- ``Calibration``: per-modality per-channel ``center``/``scale`` (float64 arrays, shape (C,))
  plus ``source`` text; ``to_dict``/``from_dict``; ``compute_calibration(streams, contract)``
  computes it from the first ``contract.normalization.calibration_s`` seconds of each
  modality (median, and a robust spread: IQR/1.349 with a floor so a flat channel cannot
  divide by ~0). Raises ``CalibrationError`` when a modality has too little data.
- ``Stream``: ``timestamps`` (N,) float64 seconds (hub or recording time, increasing) and
  ``values`` (N, C) float32/float64 in the contract's unit.
- ``WindowAssembler(contract, *, origin=0.0, calibration=None)``: streaming, chunk-invariant.
  ``push(name, timestamps, values)`` appends samples of one modality (any chunk size, any
  interleaving of modalities); ``pop_ready() -> list[Window]`` returns windows whose end
  (plus the resampling margin) is covered by every modality, in time order; ``flush()``
  returns the remaining complete-or-invalid windows at end of stream. Window k spans
  ``[origin + k*hop_s, origin + k*hop_s + window_s)``. Data of a window is computed only from
  the raw samples inside its span (plus a fixed margin), so the result does not depend on how
  the stream was chunked. Old raw samples are discarded once no future window needs them
  (bounded memory).
- ``Window``: ``start``, ``end`` (seconds), ``index`` (k), ``data: dict[name, (C, T) float32]``
  (resampled to the contract's rates, gaps ≤ max_gap_s interpolated, normalized), ``valid:
  bool``, ``reason: InvalidReason | None``, ``detail: str``.
- ``InvalidReason`` (str Enum): ``GAP``, ``LOW_COVERAGE``, ``MISSING_MODALITY``,
  ``NON_FINITE``, ``FLAT``, ``SATURATED``, ``UNCALIBRATED``.
- Pure helpers (tested with hypothesis): ``resample_to_grid(t, x, grid, src_hz, dst_hz)``
  (anti-aliasing low-pass when downsampling, then interpolation on the grid),
  ``find_gaps(t, max_gap_s)``, ``normalize(x, center, scale, clip)``,
  ``sliding_window_starts(t0, t1, window_s, hop_s)``.
- ``windows_from_streams(streams, contract, *, origin, calibration) -> list[Window]``: the
  offline path used by training; pushes everything to a ``WindowAssembler`` and flushes.
"""
