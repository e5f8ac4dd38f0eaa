"""Device clocks to hub time, and packet sequence bookkeeping.

:class:`ClockMapper` maps a device's microsecond clock to hub seconds as
``t_hub = offset + t_device / (1 + drift)``, fitted by robust least squares (fit, drop
points beyond 3 robust sigmas, refit) over the most recent TIME_SYNC pairs. **Sign
convention:** ``drift`` (``ClockMapper.drift_ppm``) is the device clock's rate error
against the hub, *positive when the device clock runs fast*: a device at +80 ppm counts
1.00008 s per hub second. A crystal drifts 20-100 ppm, i.e. up to 0.36 s an hour, which
matters for aligning a wearable with a chest strap.

A device clock that jumps, forwards or backwards (reboot, firmware resync), is detected when
``confirm_jumps`` consecutive pairs agree with each other but not with the fit; the fit then
restarts from them and ``stats["jumps"]`` counts it. What a lossy link does to TIME_SYNC is
never a jump: a single late pair (a stalled link, or a packet held back and delivered after
the next one, even with its device time going backwards) is only an ``outlier``; a pair
older than the last one that still fits is counted ``reordered`` and used; a repeated
device time is counted ``duplicates`` and ignored. (A rebooted device is thus confirmed by
its second TIME_SYNC; ``edge.ingest`` resets the mapper on a clock regression anyway.)

:class:`SequenceTracker` follows each sensor's u16 sequence numbers (wrapping) and says
for every packet whether it is in order, after a gap (``lost`` counts the missing ones),
a duplicate or a late arrival (``reordered``; a late packet is no longer counted lost).
Call :meth:`SequenceTracker.reset` on HELLO: a rebooted device restarts its counters.
"""

from __future__ import annotations

import collections
import enum
import itertools
import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final, overload

import numpy as np

from firmware_bridge.errors import BridgeError, ClockError
from firmware_bridge.protocol import SEQ_MODULO, TimeSync

__all__ = [
    "ClockMapper",
    "ClockMapperConfig",
    "SeqCounts",
    "SeqStatus",
    "SequenceTracker",
]

_MAD_TO_SIGMA: Final = 1.4826  # MAD of a normal distribution times this is its sigma
_MIN_SIGMA_S: Final = 200e-6  # residual floor: below a serial/BLE latency jitter, no point trimming


@dataclass(frozen=True)
class ClockMapperConfig:
    # pairs kept; at one TIME_SYNC per 5 s this is ~5 min, long enough for tens of ppm to
    # stand out of ~ms latency jitter, short enough to follow temperature-driven drift
    window: int = 64
    # a residual this large is a clock jump or a stalled link, not latency jitter (serial and
    # BLE connection-interval latencies stay well under it)
    jump_threshold_s: float = 0.5
    # consecutive, mutually consistent outliers needed to accept a jump: one late pair is not
    confirm_jumps: int = 2
    # below this many pairs only the offset is fitted (slope 1): 2-3 points over a few
    # seconds would turn jitter into hundreds of ppm
    min_pairs_for_drift: int = 4
    # quartz is ±100 ppm at worst; a fitted slope beyond this is noise over a short span
    max_drift_ppm: float = 1000.0


@dataclass
class _Fit:
    ref_dev_us: int  # device time of the reference pair (keeps float arithmetic precise)
    ref_hub_s: float
    intercept_s: float  # hub - ref_hub at the reference device time
    slope: float  # hub seconds per device second: 1 / (1 + drift), < 1 for a fast device


class ClockMapper:
    """Device µs -> hub seconds from TIME_SYNC pairs; see the module docstring."""

    def __init__(self, config: ClockMapperConfig | None = None) -> None:
        self.config = config or ClockMapperConfig()
        self.stats: Counter[str] = Counter()
        self._pairs: collections.deque[tuple[int, float]] = collections.deque(
            maxlen=self.config.window
        )
        self._pending: list[tuple[int, float]] = []
        self._fit: _Fit | None = None

    @property
    def synced(self) -> bool:
        return self._fit is not None

    @property
    def drift_ppm(self) -> float:
        """Device clock rate error in ppm: **positive when the device clock runs fast** vs
        the hub (device seconds per hub second minus 1); 0.0 before a drift is fitted."""
        return 0.0 if self._fit is None else (1.0 / self._fit.slope - 1.0) * 1e6

    @property
    def offset_s(self) -> float:
        """Hub time at device time 0 under the current fit."""
        if self._fit is None:
            raise ClockError("no TIME_SYNC pair yet")
        f = self._fit
        return f.ref_hub_s + f.intercept_s - f.slope * f.ref_dev_us * 1e-6

    def reset(self) -> None:
        """Forget every pair (a new connection to a device that may have rebooted)."""
        self._pairs.clear()
        self._pending.clear()
        self._fit = None
        self.stats["resets"] += 1

    def observe(self, msg: TimeSync, received_at: float) -> None:
        """A TIME_SYNC received at hub time ``received_at`` (seconds).

        One-way (``t_hub_us == 0``): paired with the reception time. Two-way: the device
        echoed the hub time of a request, which is used as is.
        """
        self.add(msg.t_device_us, received_at if msg.t_hub_us == 0 else msg.t_hub_us * 1e-6)

    def add(self, t_device_us: int, t_hub_s: float) -> None:
        """One (device µs, hub seconds) pair."""
        t_device_us = int(t_device_us)
        t_hub_s = float(t_hub_s)
        self.stats["pairs"] += 1
        if self._fit is None:
            self._restart([(t_device_us, t_hub_s)])
            return
        if any(d == t_device_us for d, _ in self._pairs):
            # the same device instant again: a duplicated packet, no new information
            self.stats["duplicates"] += 1
            return
        residual = t_hub_s - self._predict(t_device_us)
        if abs(residual) <= self.config.jump_threshold_s:
            if self._pending:
                self.stats["outliers"] += len(self._pending)
                self._pending.clear()
            if t_device_us < self._pairs[-1][0]:
                # sent before the last pair but delivered after it (a reordering link);
                # it still fits, so it is as good a pair as any (the fit ignores order)
                self.stats["reordered"] += 1
            self._pairs.append((t_device_us, t_hub_s))
            self._refit()
            return
        # An outlier: a late pair, or the first of a jumped (or rebooted, gone backwards)
        # clock. Only consecutive outliers that agree among themselves (device time moving
        # forward, one offset) confirm a jump; a late pair followed by a fitting one, or by
        # one that disagrees with it, was a one-off.
        self._pending.append((t_device_us, t_hub_s))
        while len(self._pending) > 1 and not self._agree(self._pending):
            self.stats["outliers"] += 1
            self._pending.pop(0)
        if len(self._pending) >= self.config.confirm_jumps:
            self.stats["jumps"] += 1
            self._restart(self._pending)

    def _agree(self, pairs: list[tuple[int, float]]) -> bool:
        """Pairs of one clock: device time increasing, offsets within the jump threshold."""
        offsets = [h - d * 1e-6 for d, h in pairs]
        return max(offsets) - min(offsets) <= self.config.jump_threshold_s and all(
            a[0] < b[0] for a, b in itertools.pairwise(pairs)
        )

    @overload
    def to_hub(self, t_device_us: int) -> float: ...
    @overload
    def to_hub(self, t_device_us: np.ndarray) -> np.ndarray: ...

    def to_hub(self, t_device_us: int | np.ndarray) -> float | np.ndarray:
        """Device µs (scalar or array) -> hub seconds; :class:`ClockError` before any pair."""
        if isinstance(t_device_us, np.ndarray):
            if self._fit is None:
                raise ClockError("no TIME_SYNC pair yet")
            f = self._fit
            dx = (t_device_us.astype(np.int64) - f.ref_dev_us).astype(np.float64) * 1e-6
            return f.ref_hub_s + f.intercept_s + f.slope * dx
        return self._predict(int(t_device_us))

    def _predict(self, t_device_us: int) -> float:
        if self._fit is None:
            raise ClockError("no TIME_SYNC pair yet")
        f = self._fit
        return f.ref_hub_s + f.intercept_s + f.slope * ((t_device_us - f.ref_dev_us) * 1e-6)

    def _restart(self, pairs: list[tuple[int, float]]) -> None:
        self._pairs.clear()
        self._pairs.extend(pairs)
        self._pending = []
        self._fit = None
        self._refit()

    def _refit(self) -> None:
        ref_dev, ref_hub = self._pairs[0]
        x = np.array([(d - ref_dev) * 1e-6 for d, _ in self._pairs])  # (P,) device s
        y = np.array([h - ref_hub for _, h in self._pairs])  # (P,) hub s
        cfg = self.config
        if len(x) < cfg.min_pairs_for_drift or np.ptp(x) <= 0:
            self._fit = _Fit(ref_dev, ref_hub, float(np.median(y - x)), 1.0)
            return
        keep = np.ones(len(x), bool)
        a, b = 0.0, 1.0
        for _ in range(3):  # fit, trim beyond 3 robust sigmas, refit
            b, a = np.polyfit(x[keep], y[keep], 1)
            r = y - (a + b * x)
            mad = float(np.median(np.abs(r[keep] - np.median(r[keep]))))
            sigma = max(_MAD_TO_SIGMA * mad, _MIN_SIGMA_S)
            new_keep = np.abs(r) <= 3 * sigma
            if new_keep.sum() < cfg.min_pairs_for_drift or (new_keep == keep).all():
                break
            keep = new_keep
        max_slope = cfg.max_drift_ppm * 1e-6
        if not (math.isfinite(b) and abs(b - 1.0) <= max_slope):
            b = 1.0 + float(np.clip(b - 1.0, -max_slope, max_slope)) if math.isfinite(b) else 1.0
            a = float(np.median(y[keep] - b * x[keep]))
        self._fit = _Fit(ref_dev, ref_hub, float(a), float(b))


class SeqStatus(enum.Enum):
    """What one packet's sequence number says."""

    FIRST = "first"  # first packet of this key since creation/reset
    IN_ORDER = "in_order"
    GAP = "gap"  # in order, after missing packets (counted lost)
    DUPLICATE = "duplicate"  # already seen: the caller should drop it
    REORDERED = "reordered"  # a packet counted lost arrived late: deliver it, it is no longer lost
    RESTART = "restart"  # a jump too large to be loss: the stream restarted (counted)


@dataclass
class SeqCounts:
    received: int = 0
    lost: int = 0  # missing now (late arrivals are subtracted)
    duplicated: int = 0
    reordered: int = 0
    restarts: int = 0


@dataclass
class _SeqState:
    last: int  # highest unwrapped sequence number seen
    seen: collections.deque[int]
    seen_set: set[int]
    missing: set[int] = field(default_factory=set)
    counts: SeqCounts = field(default_factory=SeqCounts)


class SequenceTracker:
    """Lost / duplicated / reordered packet counts per key (e.g. ``(device, sensor_id)``)."""

    def __init__(self, *, history: int = 256, max_gap: int = 4096, modulo: int = SEQ_MODULO) -> None:
        # history: how far back a late packet is still recognised (and a duplicate caught);
        # 256 packets is a minute of a 4-sensor wearable, far longer than any BLE retry.
        # max_gap: a forward jump beyond this is a restart, not loss (4096 packets is
        # ~17 min of one sensor at 4 packets/s).
        if not 0 < history < modulo // 2 or not 0 < max_gap < modulo // 2:
            raise BridgeError("history and max_gap must be below half the sequence modulo")
        self.history = history
        self.max_gap = max_gap
        self.modulo = modulo
        self._states: dict[Hashable, _SeqState] = {}
        # counts of keys that were reset, picked up again when the key reappears
        self._carry: dict[Hashable, SeqCounts] = {}

    def observe(self, key: Hashable, seq: int) -> SeqStatus:
        st = self._states.get(key)
        if st is None:
            self._start(key, seq, 0)
            return SeqStatus.FIRST
        c = st.counts
        half = self.modulo // 2
        d = (seq - st.last + half) % self.modulo - half  # signed distance, wrap-aware
        u = st.last + d
        if d > 0:
            if d > self.max_gap:
                self._start(key, seq, c.restarts + 1, c)
                return SeqStatus.RESTART
            c.received += 1
            if d > 1:
                c.lost += d - 1
                lo = max(st.last + 1, u - self.history)
                st.missing.update(range(lo, u))
            st.last = u
            self._remember(st, u)
            return SeqStatus.GAP if d > 1 else SeqStatus.IN_ORDER
        if u in st.seen_set:
            c.duplicated += 1
            return SeqStatus.DUPLICATE
        if u in st.missing:
            st.missing.discard(u)
            c.received += 1
            c.lost -= 1
            c.reordered += 1
            self._remember(st, u)
            return SeqStatus.REORDERED
        if -d > self.history:
            self._start(key, seq, c.restarts + 1, c)
            return SeqStatus.RESTART
        # older than the last but never counted missing (trimmed history): late, not lost
        c.received += 1
        c.reordered += 1
        self._remember(st, u)
        return SeqStatus.REORDERED

    def counts(self, key: Hashable) -> SeqCounts:
        st = self._states.get(key)
        if st is None:
            return self._carry.get(key) or SeqCounts()
        return st.counts

    def totals(self) -> dict[str, int]:
        """Summed counts over every key, for a health log."""
        out: Counter[str] = Counter()
        for c in [*(st.counts for st in self._states.values()), *self._carry.values()]:
            out.update(
                received=c.received, lost=c.lost, duplicated=c.duplicated,
                reordered=c.reordered, restarts=c.restarts,
            )  # fmt: skip
        return dict(out)

    def reset(self, key: Hashable | None = None) -> None:
        """Forget one key's (or every key's) position, keeping its counts (e.g. on HELLO)."""
        keys = list(self._states) if key is None else [key]
        for k in keys:
            st = self._states.pop(k, None)
            if st is not None:
                self._carry[k] = st.counts

    def _start(self, key: Hashable, seq: int, restarts: int, old: SeqCounts | None = None) -> None:
        counts = old or self._carry.pop(key, None) or SeqCounts()
        counts.restarts = max(counts.restarts, restarts)
        counts.received += 1
        st = _SeqState(seq, collections.deque(), set(), counts=counts)
        self._remember(st, seq)
        self._states[key] = st

    def _remember(self, st: _SeqState, u: int) -> None:
        st.seen.append(u)
        st.seen_set.add(u)
        if len(st.seen) > self.history:
            st.seen_set.discard(st.seen.popleft())
        if st.missing and len(st.missing) > self.history:
            floor = st.last - self.history
            st.missing = {m for m in st.missing if m > floor}
