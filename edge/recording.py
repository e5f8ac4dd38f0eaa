"""Recorded wearable sessions: the WESAD on-disk format and our own compact ``.npz``.

numpy + the standard library only: the hub's ``replay`` device and the simulator read
recordings with this module, and training's WESAD loader (``train/data.py``) is built on it.

API (stable; other modules code against it):

- ``Signal(rate_hz, values, unit, channels)``: ``values`` (N, C) float32 in ``unit``
  (after conversion: WESAD wrist ACC /64 -> g); ``timestamps(t0=0.0)`` -> (N,) float64.
- ``Recording(subject, signals: dict[str, Signal], labels: Signal | None, meta: dict)``:
  ``signals`` keyed by modality name as in ``edge.contract`` (wrist: bvp, eda, temp, acc;
  chest: ecg, resp, emg, c_eda, c_temp, c_acc); ``labels`` the raw WESAD codes at 700 Hz
  (0 undefined, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 ignore), shape (N, 1).
  ``duration_s``; ``streams(names, t0=0.0) -> dict[str, (timestamps, values)]`` for
  ``edge.preprocess``; ``wrist_only()``.
- ``load_wesad_subject(path) -> Recording``: reads ``S{n}.pkl`` (Python-2 latin-1 pickle)
  through a restricted unpickler that only admits numpy arrays and builtin containers (a
  pickle from the internet cannot run code on the hub). A missing/malformed file raises
  ``RecordingError`` naming the file and what is wrong (missing key, wrong shape, ...).
- ``load_recording(path)``: ``.pkl`` (WESAD) or ``.npz`` (ours); ``save_recording(rec, path)``
  writes the compact ``.npz`` (used for the demo recording shipped with the demo bundle).
"""
