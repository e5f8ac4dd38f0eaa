"""Window assembly: streams of raw samples -> normalized, validated, fixed-size windows.

:class:`WindowAssembler` is the streaming path the hub runs (chunk-invariant, bounded
memory, every drop counted); :func:`windows_from_streams` is the offline path training runs,
and it is the same assembler fed whole recordings, so train and serve cannot disagree. The
semantics other modules rely on (emission, margins, gaps, the stall cap) are in
``docs/signal.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from core.contract import InputContract, Modality
from core.errors import ContractError
from core.signal.beats import ContactSteps, beat_window
from core.signal.buffer import RawBuffer
from core.signal.calibration import Calibration
from core.signal.hops import HopCache, hop_layout
from core.signal.quality import (
    SEVERITY,
    InvalidReason,
    QualityThresholds,
    max_gap,
    median_spacing_of_times,
    quality_problems,
)
from core.signal.resample import (
    TIME_EPS,
    FloatArray,
    Stream,
    StreamLike,
    as_stream,
    coerce_chunk,
    decimation_factor,
    keep_increasing,
    resample_channels,
    resample_hop_grid,
    window_margin_s,
)

__all__ = [
    "OFFLINE_BLOCK_S",
    "RATE_SNAP",
    "STALL_HYSTERESIS",
    "STALL_SLACK_S",
    "AssemblerStats",
    "Window",
    "WindowAssembler",
    "windows_from_streams",
]

logger = logging.getLogger(__name__)

# Offline path: stream seconds pushed per modality before popping windows, so the raw buffer
# never holds more than about a minute of a 45-minute recording (and never hits the stall cap).
OFFLINE_BLOCK_S: Final = 60.0
# Default stall allowance beyond what one window needs: two minutes of one modality running
# ahead of another is far more than BLE delivery skew (seconds), so only a real stall hits it.
STALL_SLACK_S: Final = 120.0
# The stall cap is enforced only when exceeded by 10 %, so a stalled stream costs one
# buffer copy per ~0.1*max_buffer_s of data instead of one per pushed packet.
STALL_HYSTERESIS: Final = 0.1
# An estimated source rate within 15 % of the target rate is taken to be the target rate:
# with +-0.45-period jitter the median of a 4 Hz window's ~30 spacings wanders by ~10 %,
# while a device really 15 % off its declared rate would be a contract mismatch anyway.
RATE_SNAP: Final = 0.15


@dataclass(frozen=True, eq=False)
class Window:
    """One model input: every modality resampled onto its grid, validated, normalized."""

    start: float  # seconds, inclusive
    end: float  # seconds, exclusive
    index: int  # k: start = origin + k * hop_s
    data: dict[str, np.ndarray]  # name -> (C, T) float32, never NaN
    valid: bool
    reason: InvalidReason | None
    detail: str = ""
    reasons: tuple[InvalidReason, ...] = ()  # every problem found, most severe first
    coverage: dict[str, float] = field(default_factory=dict)  # name -> fraction of samples
    # beats modalities: heart rate (bpm) and RMSSD (ms) of the window's cleaned intervals,
    # derived values a decision may carry (core.signal.beats.DERIVED_KEYS)
    derived: dict[str, float] = field(default_factory=dict)


@dataclass
class AssemblerStats:
    """Counters: nothing is dropped silently."""

    windows_emitted: int = 0
    windows_invalid: dict[str, int] = field(default_factory=dict)  # reason -> count
    windows_skipped_empty: int = 0  # windows with no sample of any modality (device off)
    # modality windows made from hops carried over from earlier windows (the rest: whole)
    streamed: dict[str, int] = field(default_factory=dict)
    dropped_non_finite_time: dict[str, int] = field(default_factory=dict)
    dropped_out_of_order: dict[str, int] = field(default_factory=dict)  # t <= an earlier t
    dropped_before_origin: dict[str, int] = field(default_factory=dict)
    # samples a pending window still needed, discarded because another modality stalled
    discarded_stalled: dict[str, int] = field(default_factory=dict)


@dataclass
class _ModalityResult:
    data: FloatArray  # (C, T) un-normalized float64, or the final float32 when ``normalized``
    problems: list[tuple[InvalidReason, str]]
    coverage: float
    empty: bool = False  # no finite sample: data is zeros and stays zeros
    derived: dict[str, float] = field(default_factory=dict)  # beats modalities only
    normalized: bool = False  # from the hops: already normalized float32


def _bump(d: dict[str, int], key: str, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


class WindowAssembler:
    """Streaming, chunk-invariant windowing of multi-rate streams (semantics: docs/signal.md)."""

    def __init__(
        self,
        contract: InputContract,
        *,
        origin: float = 0.0,
        calibration: Calibration | None = None,
        source_rates: Mapping[str, float] | None = None,
        # data (seconds, gaps excluded) one modality may hold while waiting for the others;
        # -1: window + both margins + STALL_SLACK_S; None: no cap
        max_buffer_s: float | None = -1.0,
        quality: QualityThresholds | None = None,
        # carry resampled hops from window to window (core.signal.hops); False computes
        # every window whole: the same windows, bit for bit, at several times the cost
        streaming: bool = True,
    ) -> None:
        self.contract = contract
        self.origin = float(origin)
        self.calibration = calibration
        self.quality = quality or QualityThresholds()
        self.source_rates = dict(source_rates or {})
        norm = contract.normalization
        if calibration is not None:
            calibration.check(contract)
        if norm.kind == "global":
            for m in contract.modalities:
                c, s = norm.center.get(m.name), norm.scale.get(m.name)
                if c is None or s is None or len(c) != m.n_channels or len(s) != m.n_channels:
                    raise ContractError(
                        f"global normalization needs {m.n_channels} center/scale values",
                        field=f"normalization.{m.name}",
                    )
        self._margin = {m.name: window_margin_s(contract, m.name) for m in contract.modalities}
        self._n_out = {m.name: contract.samples(m.name) for m in contract.modalities}
        # per-modality normalization (center (C, 1), scale (C, 1), clip) or None: raw units
        self._norm: dict[str, tuple[FloatArray, FloatArray] | None] = {}
        for m in contract.modalities:
            if norm.kind == "subject_baseline" and calibration is not None:
                fixed = norm.scale.get(m.name)  # a contract-fixed scale wins over the measured
                cs = (calibration.center[m.name],
                      calibration.scale[m.name] if fixed is None else np.asarray(fixed, np.float64))
            elif norm.kind == "global":
                cs = (np.asarray(norm.center[m.name], np.float64),
                      np.asarray(norm.scale[m.name], np.float64))
            else:
                self._norm[m.name] = None
                continue
            self._norm[m.name] = (cs[0].reshape(-1, 1), cs[1].reshape(-1, 1))
        if max_buffer_s is not None and max_buffer_s < 0:
            max_buffer_s = contract.window_s + 2 * max(self._margin.values()) + STALL_SLACK_S
        self.max_buffer_s = max_buffer_s
        self._buf = {m.name: RawBuffer(m.n_channels, contract.max_gap_s)
                     for m in contract.modalities}
        # hops per window and target points per hop, where a window is whole hops: then a
        # target point's time is one expression of its index on the hop grid, in every window
        self._layout = {m.name: hop_layout(contract.window_s, contract.hop_s, m.rate_hz)
                        for m in contract.modalities if not m.beats}
        self._hops: dict[str, HopCache] = {}
        for m in contract.modalities:
            lay = self._layout.get(m.name)
            if streaming and lay is not None:
                cs = self._norm[m.name]
                self._hops[m.name] = HopCache(
                    m, origin=self.origin, hop_s=contract.hop_s, n_hops=lay[0],
                    per_hop=lay[1], margin=self._margin[m.name], max_gap_s=contract.max_gap_s,
                    norm=None if cs is None else (cs[0], cs[1], norm.clip))
        self._next_k = 0
        self.stats = AssemblerStats()
        self._contact = ContactSteps()  # the device's contact reports, for beats modalities
        self._has_beats = contract.has_beats

    # -- public ---------------------------------------------------------------------------
    def margin_s(self, name: str) -> float:
        """Fixed raw margin of modality ``name`` (also its emission latency), seconds."""
        return self._margin[name]

    def buffered_samples(self) -> dict[str, int]:
        """Raw samples held per modality (the assembler's memory)."""
        return {k: len(b) for k, b in self._buf.items()}

    @property
    def next_index(self) -> int:
        """Index k of the next window to be emitted."""
        return self._next_k

    def push(self, name: str, timestamps: ArrayLike, values: ArrayLike) -> None:
        """Append samples of modality ``name``: timestamps (N,) s, values (N, C) or (N,)."""
        try:
            buf = self._buf[name]
        except KeyError:
            raise ContractError(
                f"no modality {name!r} in {self.contract.modality_names}", field="modalities"
            ) from None
        t, x = coerce_chunk(name, buf.x.shape[1], timestamps, values)
        if t.size == 0:
            return
        keep, n_bad_time, n_order = keep_increasing(t, buf.last_t)
        _bump(self.stats.dropped_non_finite_time, name, n_bad_time)
        _bump(self.stats.dropped_out_of_order, name, n_order)
        if not keep.any():
            return
        if not keep.all():
            t, x = t[keep], x[keep]
        buf.last_t = float(t[-1])
        lo = self.origin - self._margin[name]
        if t[0] < lo:
            i = int(np.searchsorted(t, lo, side="left"))
            _bump(self.stats.dropped_before_origin, name, i)
            t, x = t[i:], x[i:]
            if not t.size:
                return
        buf.append(t, x)
        self._enforce_cap(name, buf)

    def push_contact(self, t: float, contact: bool) -> None:
        """A skin-contact report (device time ``t``): beats windows with too little contact
        are invalid (NO_CONTACT). A report holds until the next; before the first, a device
        is taken to say nothing about contact."""
        self._contact.push(t, contact)

    def pop_ready(self) -> list[Window]:
        """Windows whose end + margin every modality has passed, in time order."""
        # a window is final once every modality has a sample at or past its end + margin:
        # timestamps increase, so nothing can still arrive inside its span
        # (TIME_EPS: a sample exactly at end + margin, up to rounding, may not be the last one)
        horizon = min(b.last_t - self._margin[n] for n, b in self._buf.items()) - TIME_EPS
        return self._emit_until(horizon)

    def flush(self) -> list[Window]:
        """End of stream: every remaining window that ends by the last sample (+max_gap_s).

        Windows that some modality did not reach come out invalid (GAP/MISSING_MODALITY).
        """
        out = self.pop_ready()
        t_last = max(b.last_t for b in self._buf.values())
        if math.isfinite(t_last):
            out.extend(self._emit_until(t_last + self.contract.max_gap_s + TIME_EPS))
        return out

    # -- internals ------------------------------------------------------------------------
    def _bounds(self, k: int) -> tuple[float, float]:
        start = self.origin + k * self.contract.hop_s
        return start, start + self.contract.window_s

    def _needed_from(self, name: str) -> float:
        return self._bounds(self._next_k)[0] - self._margin[name]

    def _enforce_cap(self, name: str, buf: RawBuffer) -> None:
        cap = self.max_buffer_s
        if cap is None or buf.held_s <= cap * (1.0 + STALL_HYSTERESIS):
            return
        dropped = buf.drop_to_hold(cap)
        if dropped.size and name in self._hops:
            self._hops[name].reset()
        needed = int(dropped.size - np.searchsorted(dropped, self._needed_from(name), "left"))
        if needed:
            _bump(self.stats.discarded_stalled, name, needed)
            stalled = [n for n, b in self._buf.items()
                       if b.last_t < self._bounds(self._next_k)[1] + self._margin[n]]
            logger.warning(
                "discarded %d %s samples waiting for stalled modalities %s",
                needed, name, stalled,
            )

    def _consume(self) -> None:
        """Drop raw samples that no window from ``_next_k`` on can use."""
        for name, buf in self._buf.items():
            buf.drop_before(self._needed_from(name))
        if self._has_beats:
            self._contact.drop_before(self._bounds(self._next_k)[0])

    def _is_empty(self, start: float, end: float) -> bool:
        for name, buf in self._buf.items():
            t, _ = buf.arrays()
            mg = self._margin[name]
            i = np.searchsorted(t, start - mg, side="left")
            if i < t.size and t[i] < end + mg:
                return False
        return True

    def _emit_until(self, horizon: float) -> list[Window]:
        """Emit (or skip, if empty) every window from ``_next_k`` whose end is <= horizon."""
        out: list[Window] = []
        if not math.isfinite(horizon):
            return out
        c = self.contract
        # last window index whose end is <= horizon (all of them are final)
        k_last = math.floor((horizon - c.window_s - self.origin) / c.hop_s + TIME_EPS)
        while self._next_k <= k_last:
            k = self._next_k
            start, end = self._bounds(k)
            if end > horizon:  # float rounding of the floor above
                break
            if not self._is_empty(start, end):
                w = self._make_window(k, start, end)
                self.stats.windows_emitted += 1
                if w.reason is not None:
                    _bump(self.stats.windows_invalid, w.reason.value, 1)
                out.append(w)
                self._next_k = k + 1
            else:
                # no sample of any modality (device off): jump near the first window touching
                # a buffered sample, conservatively (then single steps), never past k_last
                first = min(
                    (b.first_t() - c.window_s - self._margin[n] - self.origin) / c.hop_s
                    for n, b in self._buf.items()
                )
                k_next = k + 1
                if math.isfinite(first):
                    k_next = max(k_next, math.floor(first) - 1)
                k_next = min(k_next, k_last + 1)
                self.stats.windows_skipped_empty += k_next - k
                self._next_k = k_next
            self._consume()
        return out

    def _make_window(self, k: int, start: float, end: float) -> Window:
        contract = self.contract
        norm = contract.normalization
        data: dict[str, np.ndarray] = {}
        problems: list[tuple[InvalidReason, str]] = []
        coverage: dict[str, float] = {}
        derived: dict[str, float] = {}
        for m in contract.modalities:
            r = self._beats(m, start, end) if m.beats else self._modality(m, k, start, end)
            problems.extend(r.problems)
            coverage[m.name] = float(r.coverage)
            derived.update(r.derived)
            cs = self._norm[m.name]
            if r.normalized:
                data[m.name] = r.data
            elif r.empty:
                data[m.name] = np.zeros(r.data.shape, np.float32)
            elif cs is None:
                data[m.name] = r.data.astype(np.float32)
            else:  # normalize() inlined on the owned (C, T) buffer: one allocation less
                y = r.data
                y -= cs[0]
                y /= cs[1]
                np.minimum(y, norm.clip, out=y)
                np.maximum(y, -norm.clip, out=y)
                data[m.name] = y.astype(np.float32)
        if norm.kind == "subject_baseline" and self.calibration is None:
            problems.append((InvalidReason.UNCALIBRATED,
                             "subject_baseline normalization needs a calibration"))
        problems.sort(key=lambda p: SEVERITY.index(p[0]))
        reasons = tuple(dict.fromkeys(p[0] for p in problems))
        return Window(
            start=start,
            end=end,
            index=k,
            data=data,
            valid=not problems,
            reason=reasons[0] if reasons else None,
            detail="; ".join(p[1] for p in problems),
            reasons=reasons,
            coverage=coverage,
            derived=derived,
        )

    def _beats(self, m: Modality, start: float, end: float) -> _ModalityResult:
        """A beats modality: the kernel's RR steps on the buffered intervals (core.signal.beats)."""
        mg = self._margin[m.name]
        tb, xb = self._buf[m.name].arrays()
        i0, i1 = np.searchsorted(tb, (start - mg, end + mg), side="left")
        r = beat_window(m, tb[i0:i1], xb[i0:i1, 0], start, end, self._n_out[m.name],
                        self.contract.beats, self._contact.samples(start, end))
        return _ModalityResult(r.data, r.problems, r.coverage, r.empty, r.derived)

    def _nominal(self, m: Modality, t_all: FloatArray) -> tuple[float, float]:
        """(source rate, nominal sample spacing) a window uses: declared, or estimated from
        its raw span ``t_all``."""
        src = self.source_rates.get(m.name)
        if src is not None:
            return src, 1.0 / src
        if t_all.size < 2:
            return m.rate_hz, math.inf
        dt_nom = median_spacing_of_times(t_all)
        src = 1.0 / dt_nom
        if abs(src / m.rate_hz - 1.0) <= RATE_SNAP:
            # a jittered source at the target rate: keep coverage and the no-filter
            # decision stable instead of following the noise of a median of few diffs
            return m.rate_hz, 1.0 / m.rate_hz
        return src, dt_nom

    def _modality(self, m: Modality, k: int, start: float, end: float) -> _ModalityResult:
        name = m.name
        contract = self.contract
        n_out = self._n_out[name]
        mg = self._margin[name]
        buf = self._buf[name]
        tb, xb = buf.arrays()
        i0, i1 = np.searchsorted(tb, (start - mg, end + mg), side="left")
        t_all = tb[i0:i1]  # (N,) everything this window may use
        if t_all.size == 0:
            return _ModalityResult(np.zeros((m.n_channels, n_out)), [
                (InvalidReason.MISSING_MODALITY, f"{name}: no samples in window")], 0.0, empty=True)
        src, dt_nom = self._nominal(m, t_all)
        dec = decimation_factor(src, m.rate_hz)
        hops = self._hops.get(name)
        if hops is not None:
            got = hops.window(k, tb, xb, int(i0), int(i1), start, end, dt_nom, dec,
                              contract.min_coverage, contract.window_s, self.quality)
            if got is not None:
                _bump(self.stats.streamed, name, 1)
                return _ModalityResult(got[0], got[1], got[2], normalized=True)
        xc_all = np.ascontiguousarray(xb[i0:i1].T)  # (C, N)
        finite = np.isfinite(xc_all).all(axis=0) if m.n_channels > 1 else np.isfinite(xc_all[0])
        all_finite = bool(finite.all())
        t, xc = (t_all, xc_all) if all_finite else (t_all[finite], xc_all[:, finite])
        if t.size == 0:
            return _ModalityResult(np.zeros((m.n_channels, n_out)), [
                (InvalidReason.NON_FINITE, f"{name}: all {t_all.size} samples non-finite")], 0.0,
                empty=True)

        d_all = np.diff(t_all)
        problems: list[tuple[InvalidReason, str]] = []
        if (all_finite and t[0] <= start and t[-1] >= end - contract.max_gap_s
                and d_all.max() <= contract.max_gap_s):
            gap, at = 0.0, start  # the usual case: no stretch can exceed max_gap_s
        else:
            gap, at = max_gap(t, start, end)
        if gap > contract.max_gap_s:
            cause = InvalidReason.GAP
            if not all_finite:
                gap_all, _ = max_gap(t_all, start, end)
                if gap_all <= contract.max_gap_s:
                    cause = InvalidReason.NON_FINITE
            what = "gap" if cause is InvalidReason.GAP else "gap from non-finite samples"
            problems.append((cause, f"{name}: {what} of {gap:.3f} s in window at {at:.3f} s "
                                    f"(max {contract.max_gap_s:g} s)"))

        j0, j1 = np.searchsorted(t, (start, end), side="left")
        cov = min(1.0, (j1 - j0) * dt_nom / contract.window_s) if math.isfinite(dt_nom) else 0.0
        if cov < contract.min_coverage:
            cause = InvalidReason.LOW_COVERAGE
            if not all_finite:
                a0, a1 = np.searchsorted(t_all, (start, end), side="left")
                if (a1 - a0) * dt_nom / contract.window_s >= contract.min_coverage:
                    cause = InvalidReason.NON_FINITE
            problems.append((cause, f"{name}: coverage {cov:.1%} < {contract.min_coverage:.0%}"))

        if j1 - j0 >= 2:
            problems.extend(quality_problems(m, xc[:, j0:j1], dt_nom, self.quality))

        lay = self._layout.get(name)
        if lay is None:
            data = resample_channels(t, xc, start, n_out, m.rate_hz, dec)
        else:
            data = resample_hop_grid(t, xc, self.origin, contract.hop_s, lay[1], k * lay[1],
                                     n_out, m.rate_hz, dec)[0]
        return _ModalityResult(data, problems, cov)


def windows_from_streams(
    streams: Mapping[str, StreamLike],
    contract: InputContract,
    *,
    origin: float = 0.0,
    calibration: Calibration | None = None,
    source_rates: Mapping[str, float] | None = None,
    quality: QualityThresholds | None = None,
) -> list[Window]:
    """Offline path (training): every window of a whole recording.

    Pushes the streams into a :class:`WindowAssembler` (in ``OFFLINE_BLOCK_S`` slices of
    stream time, which by chunk invariance equals pushing each whole, but keeps memory
    small) and flushes. Streams not in the contract are ignored; a contract modality with no
    stream makes every window invalid (MISSING_MODALITY). ``source_rates`` defaults to the
    streams' own ``rate_hz`` where given.
    """
    rates = dict(source_rates or {})
    picked: dict[str, Stream] = {}
    for name in contract.modality_names:
        if name in streams:
            s = as_stream(streams[name])
            picked[name] = s
            if s.rate_hz is not None:
                rates.setdefault(name, float(s.rate_hz))
    # no stall cap: offline every stream is complete, so a modality that ends early is not
    # a stall to recover from, and the result must equal pushing everything and flushing
    asm = WindowAssembler(contract, origin=origin, calibration=calibration,
                          source_rates=rates, quality=quality, max_buffer_s=None)
    if not picked:
        return []
    times = {n: np.asarray(s.timestamps, dtype=np.float64) for n, s in picked.items()}
    # block edges by a running max so an unsorted stream still splits into ordered slices
    mono = {n: np.maximum.accumulate(np.where(np.isnan(t), -np.inf, t)) if t.size else t
            for n, t in times.items()}
    t_min = min((float(np.nanmin(t)) for t in times.values() if np.isfinite(t).any()),
                default=0.0)
    t_max = max((float(np.nanmax(t)) for t in times.values() if np.isfinite(t).any()),
                default=0.0)
    out: list[Window] = []
    pos = dict.fromkeys(picked, 0)
    edge = t_min
    while True:
        edge += OFFLINE_BLOCK_S
        last = edge > t_max
        for n, s in picked.items():
            stop = times[n].size if last else int(np.searchsorted(mono[n], edge, side="left"))
            if stop > pos[n]:
                asm.push(n, times[n][pos[n]:stop], np.asarray(s.values)[pos[n]:stop])
                pos[n] = stop
        if last:
            break
        out.extend(asm.pop_ready())
    out.extend(asm.flush())
    return out
