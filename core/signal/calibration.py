"""Calibration: one person's baseline (center, scale per channel) and normalization by it.

Holds the ONE robust-spread function (:func:`robust_spread`, IQR / 1.349 with a floor): the
hub's per-resident baseline and training's global normalization both call it, so they
cannot drift apart. Scale floors are per unit because a spread below sensor resolution is
not physiology; see ``docs/signal.md`` for the normalization policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike

from core.contract import InputContract, Modality
from core.errors import CalibrationError, ContractError
from core.signal.resample import FloatArray, StreamLike, as_stream, coerce_chunk, keep_increasing

__all__ = [
    "CALIBRATION_SCHEMA",
    "IQR_TO_SIGMA",
    "SCALE_FLOOR_BY_UNIT",
    "SCALE_FLOOR_DEFAULT",
    "Calibration",
    "CalibrationAccumulator",
    "compute_calibration",
    "normalize",
    "robust_spread",
    "scale_floor",
]

CALIBRATION_SCHEMA: Final = 1  # version of Calibration.to_dict(); bump on meaning changes
IQR_TO_SIGMA: Final = 1.349  # IQR of a unit normal: IQR/1.349 estimates sigma robustly

# Floor of a calibration scale, per unit, so a flat baseline cannot make normalization
# divide by ~0. Each is a spread below which differences are sensor resolution or drift,
# not physiology.
SCALE_FLOOR_BY_UNIT: Final[Mapping[str, float]] = {
    "uS": 0.01,  # 0.01 uS: the usual minimum amplitude of a skin-conductance response
    "degC": 0.1,  # 0.1 degC: within skin-temperature sensor drift over a session
    "g": 0.01,  # 0.01 g: below one LSB (1/64 g) of the E4's accelerometer
    "mV": 0.01,  # 0.01 mV: ECG/EMG amplifier noise floor
    "%": 0.1,  # 0.1 % of respiration-belt range: belt noise
    "bpm": 0.5,  # heart rate: half a beat per minute, below HR resolution of most straps
    "ms": 1.0,  # RR intervals: the 1/1024 s resolution of the BLE Heart Rate profile
    "s": 1e-3,  # RR intervals in seconds (the `rr` modality): the same resolution
    "a.u.": 1e-3,  # arbitrary units (BVP): only guards against an exactly constant channel
}
SCALE_FLOOR_DEFAULT: Final = 1e-3  # unknown unit: only guards against a constant channel


def scale_floor(unit: str) -> float:
    """Smallest calibration scale allowed for a channel in ``unit``."""
    return SCALE_FLOOR_BY_UNIT.get(unit, SCALE_FLOOR_DEFAULT)


def robust_spread(x: FloatArray, *, axis: int, floor: float | FloatArray) -> FloatArray:
    """Robust standard deviation along ``axis``: IQR / 1.349, at least ``floor``.

    The interquartile range ignores the minority of samples a movement or a loose electrode
    throws far out, where a standard deviation would follow them. ``floor`` keeps a flat
    channel from making normalization divide by ~0.
    """
    q75, q25 = np.percentile(x, [75.0, 25.0], axis=axis)
    return np.maximum((q75 - q25) / IQR_TO_SIGMA, floor)


def normalize(x: ArrayLike, center: ArrayLike, scale: ArrayLike, clip: float) -> np.ndarray:
    """``(x - center) / scale`` per channel, clipped to ``±clip``; ``x`` (C, T) -> float32."""
    xa = np.asarray(x, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64).reshape(-1, 1)  # (C, 1)
    s = np.asarray(scale, dtype=np.float64).reshape(-1, 1)  # (C, 1)
    y = xa - c
    y /= s
    np.minimum(y, clip, out=y)
    np.maximum(y, -clip, out=y)
    return y.astype(np.float32)


@dataclass(frozen=True, eq=False)
class Calibration:
    """One person's baseline: per modality, per channel center and scale (float64 (C,))."""

    center: Mapping[str, np.ndarray]
    scale: Mapping[str, np.ndarray]
    source: str = ""  # free text: who/when/which data ("enrollment 2024-05-01", "S2 baseline")

    def __post_init__(self) -> None:
        center = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.center.items()}
        scale = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in self.scale.items()}
        if set(center) != set(scale):
            raise CalibrationError(
                f"center has {sorted(center)} but scale has {sorted(scale)}"
            )
        for k in center:
            if center[k].shape != scale[k].shape:
                raise CalibrationError(f"{k}: center {center[k].shape} != scale {scale[k].shape}")
            if not (np.isfinite(center[k]).all() and np.isfinite(scale[k]).all()):
                raise CalibrationError(f"{k}: center/scale must be finite")
            if not (scale[k] > 0).all():
                raise CalibrationError(f"{k}: scale must be positive, got {scale[k].tolist()}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    def check(self, contract: InputContract) -> None:
        """Raise :class:`CalibrationError` unless it covers every modality of ``contract``."""
        for m in contract.modalities:
            if m.name not in self.center:
                raise CalibrationError(f"calibration has no modality {m.name!r}")
            if self.center[m.name].shape != (m.n_channels,):
                raise CalibrationError(
                    f"{m.name}: calibration has {self.center[m.name].shape[0]} channels, "
                    f"contract has {m.n_channels}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the daemon stores one per resident)."""
        return {
            "schema": CALIBRATION_SCHEMA,
            "source": self.source,
            "center": {k: [float(v) for v in a] for k, a in self.center.items()},
            "scale": {k: [float(v) for v in a] for k, a in self.scale.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; raises :class:`CalibrationError` when malformed."""
        try:
            schema = int(d.get("schema", CALIBRATION_SCHEMA))
            if schema != CALIBRATION_SCHEMA:
                raise CalibrationError(
                    f"calibration schema {schema} is not supported (this code reads "
                    f"{CALIBRATION_SCHEMA})"
                )
            return cls(
                center={str(k): np.asarray(v, np.float64) for k, v in d["center"].items()},
                scale={str(k): np.asarray(v, np.float64) for k, v in d["scale"].items()},
                source=str(d.get("source", "")),
            )
        except CalibrationError:
            raise
        # OverflowError: JSON allows 1e999 (inf) and 400-digit ints, which float()/int() refuse
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise CalibrationError(f"malformed calibration: {e!r}") from e


def _calibrate_modality(m: Modality, t: FloatArray, x: FloatArray, last_t: float,
                        calibration_s: float, min_coverage: float, *, stats: bool = True
                        ) -> tuple[FloatArray, FloatArray]:
    """Center/scale from the calibration period of one modality.

    ``t``, ``x``: the accepted samples with ``t < t[0] + calibration_s`` (any values);
    ``last_t``: the latest accepted timestamp of the modality so far. The period counts as
    complete when the samples reach its end (last sample + one median spacing), and it
    needs ``min_coverage`` of it in finite samples. ``stats=False`` only checks that.
    """
    if t.size < 2:
        raise CalibrationError(f"{m.name}: {t.size} samples, need {calibration_s:g} s of data")
    dt = float(np.median(np.diff(t)))
    elapsed = last_t + dt - t[0]
    if elapsed < calibration_s - 1e-6:
        raise CalibrationError(
            f"{m.name}: {elapsed:.1f} s of data, need {calibration_s:g} s"
        )
    finite = np.isfinite(x).all(axis=1)
    covered = np.count_nonzero(finite) * dt
    if covered < min_coverage * calibration_s:
        raise CalibrationError(
            f"{m.name}: only {covered:.1f} s of finite samples in the first {calibration_s:g} s "
            f"(need {min_coverage:.0%})"
        )
    if not stats:
        return np.zeros(0), np.zeros(0)
    med = np.percentile(x[finite], 50.0, axis=0)  # (C,)
    scale = robust_spread(x[finite], axis=0, floor=scale_floor(m.unit))  # (C,)
    return np.asarray(med, np.float64), np.asarray(scale, np.float64)


def compute_calibration(streams: Mapping[str, StreamLike], contract: InputContract, *,
                        source: str = "") -> Calibration:
    """Calibration from the first ``calibration_s`` seconds of each modality in ``contract``.

    Timestamps that are non-finite or not later than an earlier one are ignored (as the
    assembler does); NaN/inf values are left out of the statistics. Raises
    :class:`CalibrationError` naming the modality if it is absent, shorter than the period,
    or less than ``contract.min_coverage`` finite.
    """
    acc = CalibrationAccumulator(contract, source=source)
    for m in contract.modalities:
        if m.name not in streams:
            raise CalibrationError(f"{m.name}: no stream for this modality")
        s = as_stream(streams[m.name])
        acc.push(m.name, s.timestamps, s.values)
    return acc.result()


class CalibrationAccumulator:
    """Streaming calibration (hub enrollment). Keeps only the calibration period's samples.

    ``result()`` equals :func:`compute_calibration` on the concatenation of everything pushed.
    """

    def __init__(self, contract: InputContract, *, source: str = "") -> None:
        self.contract = contract
        self.source = source
        self._period = contract.normalization.calibration_s
        self._t: dict[str, list[FloatArray]] = {m.name: [] for m in contract.modalities}
        self._x: dict[str, list[FloatArray]] = {m.name: [] for m in contract.modalities}
        self._t0: dict[str, float] = {}
        self._last: dict[str, float] = {m.name: -math.inf for m in contract.modalities}
        self._ready: bool | None = False  # None: unknown until checked again

    def push(self, name: str, timestamps: ArrayLike, values: ArrayLike) -> None:
        if name not in self._t:
            raise ContractError(f"no modality {name!r} in {self.contract.modality_names}",
                                field="modalities")
        m = self.contract.modality(name)
        t, x = coerce_chunk(name, m.n_channels, timestamps, values)
        if t.size == 0:
            return
        keep, _, _ = keep_increasing(t, self._last[name])
        if not keep.any():
            return
        t, x = t[keep], x[keep]
        self._last[name] = float(t[-1])
        t0 = self._t0.setdefault(name, float(t[0]))
        n = int(np.searchsorted(t, t0 + self._period, side="left"))
        if n:
            self._t[name].append(t[:n])
            self._x[name].append(x[:n])
        self._ready = None

    def _arrays(self, name: str) -> tuple[FloatArray, FloatArray]:
        if len(self._t[name]) > 1:
            self._t[name] = [np.concatenate(self._t[name])]
            self._x[name] = [np.concatenate(self._x[name])]
        if not self._t[name]:
            c = self.contract.modality(name).n_channels
            return np.zeros(0, np.float64), np.zeros((0, c), np.float64)
        return self._t[name][0], self._x[name][0]

    def progress(self) -> float:
        """Fraction of the calibration period covered by the slowest modality (0..1)."""
        if self._ready:  # known ready: the period counts the last sample's spacing too
            return 1.0
        p = 1.0
        for m in self.contract.modalities:
            if m.name not in self._t0:
                return 0.0
            p = min(p, (self._last[m.name] - self._t0[m.name]) / self._period)
        return max(0.0, min(1.0, p))

    @property
    def ready(self) -> bool:
        """True when :meth:`result` will succeed (cheap: no percentiles)."""
        if self._ready is None:
            try:
                for m in self.contract.modalities:
                    t, x = self._arrays(m.name)
                    _calibrate_modality(m, t, x, self._last[m.name], self._period,
                                        self.contract.min_coverage, stats=False)
            except CalibrationError:
                self._ready = False
            else:
                self._ready = True
        return self._ready

    def result(self) -> Calibration:
        center: dict[str, np.ndarray] = {}
        scale: dict[str, np.ndarray] = {}
        for m in self.contract.modalities:
            t, x = self._arrays(m.name)
            center[m.name], scale[m.name] = _calibrate_modality(
                m, t, x, self._last[m.name], self._period, self.contract.min_coverage
            )
        return Calibration(center=center, scale=scale, source=self.source)

