"""A resident's days and nights as a long wrist recording, generated lazily in chunks (numpy only).

The simulator's other recordings are sessions of minutes, held in memory whole; a resident's
weeks at 30 Hz would be hundreds of megabytes. :class:`DaysRecording` holds none of its
samples: each signal (:class:`LazySignal`) makes the samples asked for from a schedule and a
seed, one block at a time, so a 14-day run needs a few megabytes and the same seed always
gives the same recording, whatever the order the blocks are asked for.

Signals (a wrist wearable without the model's physiological sensors):

- ``acc`` 30 Hz, g, 3 axes: gravity on the resident's current posture plus band-limited arm
  movement whose intensity follows the schedule below. 30 Hz is ActiGraph's own rate, so the
  hub's counts run without a resampler;
- ``light`` 0.1 Hz, lux: dark asleep, indoor light awake, daylight on the late-morning walk.

The schedule, per local calendar day ``k`` (day 0 is the day the recording starts on):
asleep from about 22:30 to 06:30 (each ±20 min, drawn per day); awake, activity that is
higher in the morning than in the evening, with sedentary spells; a walk outdoors at about
10:30-12:30; asleep, almost still, with a brief movement and a posture change now and then
(never 2 h of stillness: that would read as the wearable taken off). From
``fragment_from_day`` on, each night has 6-8 awakenings of 8-20 min: the injected change a
trend should catch.

Local time is the wall clock of ``start`` in ``utc_offset_s`` (default: the machine's zone at
``start``); a daylight-saving change inside the recording is not followed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from firmware_bridge.errors import SimulatorError
from firmware_bridge.protocol import SensorInfo

__all__ = ["DaysRecording", "LazySignal", "WireView"]

DAY_S: Final = 86_400
ACC_HZ: Final = 30.0
LIGHT_HZ: Final = 0.1  # one mean lux value every 10 s: light changes slowly
BLOCK_S: Final = 3600  # samples are made an hour at a time: small, and few calls
GRAVITY_NOISE_G: Final = 0.003  # an IMU's noise floor at rest
SMOOTH_S: Final = 0.3  # arm movement lives below ~3 Hz; a 0.3 s average keeps it there
# movement amplitude (g) of one unit of intensity: with the smoothing above, an active waking
# minute gives wrist vector-magnitude counts in the low thousands, as real wrists do
MOVE_G: Final = 0.1
SLEEP_TWITCH_P: Final = 0.06  # share of sleeping minutes with a brief movement
TWITCH: Final = (0.25, 0.38)  # its intensity, [low, high)
TURN_EVERY: Final = 10  # one brief movement in this many turns the resident over
AWAKENINGS: Final = (6, 9)  # per fragmented night, [low, high)
AWAKENING_MIN: Final = (8, 21)  # minutes each, [low, high)
# postures (unit gravity vectors): lying on the back, on either side, arm across the chest
POSTURES: Final = np.array([
    [0.05, -0.10, 0.99], [0.95, 0.10, 0.29], [-0.93, 0.05, 0.36], [0.20, -0.96, 0.20],
])
UPRIGHT: Final = np.array([-0.20, 0.10, 0.97])  # the wrist of a person sitting or walking


@dataclass(frozen=True)
class _Day:
    wake_min: int  # minute of this day the night before ends
    onset_min: int  # minute of this day the night after begins
    awakenings: tuple[tuple[int, int], ...]  # (minute from this day's midnight, minutes)


class LazySignal:
    """One signal of a :class:`DaysRecording`: ``read(i0, i1)`` makes samples ``i0:i1``."""

    def __init__(self, owner: DaysRecording, name: str, unit: str, rate_hz: float,
                 channels: int) -> None:
        self.owner = owner
        self.name = name
        self.unit = unit
        self.rate_hz = float(rate_hz)
        self.channels = channels
        self.n_samples = math.floor(owner.duration_s * rate_hz + 1e-9)
        self.block = round(BLOCK_S * rate_hz)  # samples made at a time
        self._cache: tuple[int, np.ndarray] | None = None  # (block index, its samples)

    def __len__(self) -> int:
        return self.n_samples

    def read(self, i0: int, i1: int) -> np.ndarray:
        """Samples ``i0:i1`` as (n, channels) float64 in :attr:`unit`."""
        i0, i1 = max(0, i0), min(self.n_samples, i1)
        if i1 <= i0:
            return np.zeros((0, self.channels))
        parts = []
        for b in range(i0 // self.block, (i1 - 1) // self.block + 1):
            data = self.block_data(b)
            lo = max(i0 - b * self.block, 0)
            hi = min(i1 - b * self.block, len(data))
            parts.append(data[lo:hi])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def block_data(self, b: int) -> np.ndarray:
        """Block ``b``: samples ``b * block`` on, (up to block, channels) float64."""
        if self._cache is None or self._cache[0] != b:
            i0 = b * self.block
            i1 = min(self.n_samples, i0 + self.block)
            self._cache = (b, self.owner.make(self.name, i0, i1))
        return self._cache[1]


class WireView:
    """A lazy signal's wire values, sliced like the ``(N, C)`` array a sensor otherwise holds.

    Converts a block at a time (the packets of a block are read in turn).
    """

    def __init__(self, signal: LazySignal, info: SensorInfo) -> None:
        self.signal = signal
        self.info = info
        self._cache: tuple[int, np.ndarray] | None = None  # (block index, its wire values)

    def __len__(self) -> int:
        return len(self.signal)

    def __getitem__(self, index: slice) -> np.ndarray:
        i0, i1, step = index.indices(len(self.signal))
        if step != 1:
            raise SimulatorError("a lazy signal is read in contiguous slices")
        if i1 <= i0:
            return self.info.to_raw(np.zeros((0, self.signal.channels)))
        size = self.signal.block
        parts = []
        for b in range(i0 // size, (i1 - 1) // size + 1):
            if self._cache is None or self._cache[0] != b:
                self._cache = (b, self.info.to_raw(self.signal.block_data(b)))
            data = self._cache[1]
            parts.append(data[max(i0 - b * size, 0):min(i1 - b * size, len(data))])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class DaysRecording:
    """``days`` of a simulated resident from ``start`` (Unix seconds); see the module doc."""

    def __init__(self, days: float, *, start: float | None = None, seed: int = 0,
                 fragment_from_day: int | None = 10, utc_offset_s: float | None = None,
                 subject: str = "days") -> None:
        if not days > 0 or not math.isfinite(days):
            raise SimulatorError(f"days must be a positive number, got {days}")
        self.start = time.time() if start is None else float(start)
        if utc_offset_s is None:
            off = datetime.fromtimestamp(self.start).astimezone().utcoffset()
            utc_offset_s = 0.0 if off is None else off.total_seconds()
        self.utc_offset_s = float(utc_offset_s)
        self.seed = int(seed)
        self.fragment_from_day = fragment_from_day
        self.subject = subject
        self.duration_s = float(days) * DAY_S
        self.labels = None  # no WESAD phases: nothing for the model's agreement to compare
        # seconds after the local midnight of day 0 at which the recording starts
        self.start_of_day_s = (self.start + self.utc_offset_s) % DAY_S
        self.signals = {
            "acc": LazySignal(self, "acc", "g", ACC_HZ, 3),
            "light": LazySignal(self, "light", "lux", LIGHT_HZ, 1),
        }
        self._days: dict[int, _Day] = {}
        self._minutes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- the schedule ---------------------------------------------------------------------
    def day(self, k: int) -> _Day:
        """Day ``k``'s wake time, sleep onset and (fragmented nights) awakenings."""
        if k not in self._days:
            rng = np.random.default_rng([self.seed, 1, k + 1000])
            wake = 6 * 60 + 30 + int(rng.integers(-20, 21))
            onset = 22 * 60 + 30 + int(rng.integers(-20, 21))
            wakes: list[tuple[int, int]] = []
            if self.fragment_from_day is not None and k >= self.fragment_from_day:
                # the night that starts this evening; the next day's wake time ends it
                nxt = np.random.default_rng([self.seed, 1, k + 1001])
                end = 24 * 60 + 6 * 60 + 30 + int(nxt.integers(-20, 21))
                # spread over the night, one in each equal part of it, so they do not merge
                # into one long waking that would read as the night's end
                k = int(rng.integers(*AWAKENINGS))
                part = (end - 20 - (onset + 30)) / k
                for i in range(k):
                    length = int(rng.integers(*AWAKENING_MIN))
                    at = onset + 30 + int(i * part + rng.uniform(0, max(1.0, part - length)))
                    wakes.append((at, length))
            for old in [d for d in self._days if abs(d - k) > 3]:
                del self._days[old]
            self._days[k] = _Day(wake, onset, tuple(wakes))
        return self._days[k]

    def minutes(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Day ``k`` minute by minute: movement intensity, posture index (-1 upright), lux."""
        if k in self._minutes:
            return self._minutes[k]
        rng = np.random.default_rng([self.seed, 2, k + 1000])
        m = np.arange(1440)
        today, before = self.day(k), self.day(k - 1)
        asleep = (m >= today.onset_min) | (m < today.wake_min)
        for day_k, d in ((k, today), (k - 1, before)):
            shift = (day_k - k) * 1440
            for at, length in d.awakenings:
                lo, hi = at + shift, at + shift + length
                asleep[max(lo, 0):max(min(hi, 1440), 0)] = False
        in_night = (m >= today.onset_min) | (m < today.wake_min)
        # awake: busier mornings, sedentary spells, a walk outdoors late in the morning
        diurnal = 1.0 + 0.5 * np.cos(2 * np.pi * (m - 10 * 60) / 1440)
        level = rng.gamma(2.0, 0.5, 1440) * diurnal
        level[rng.random(1440) < 0.25] *= 0.15
        walk = (m >= 10 * 60 + 30) & (m < 12 * 60 + 30)
        level[walk] = rng.uniform(1.0, 2.0, int(walk.sum()))
        intensity = np.where(asleep, 0.0, level)
        # awake in the night (an awakening): restless, in the dark
        intensity[in_night & ~asleep] = rng.uniform(0.3, 0.8, int((in_night & ~asleep).sum()))
        twitch = asleep & (rng.random(1440) < SLEEP_TWITCH_P)
        intensity[twitch] = rng.uniform(*TWITCH, int(twitch.sum()))
        # asleep, some brief movements turn the resident over
        turns = np.zeros(1440, dtype=np.int64)
        turns[np.flatnonzero(twitch)[::TURN_EVERY]] = 1
        draws = rng.integers(len(POSTURES), size=int(turns.sum()) + 1)
        posture = np.where(asleep, draws[np.cumsum(turns)], -1)
        lux = np.where(asleep | in_night, 0.0, rng.uniform(150.0, 350.0, 1440))
        lux[walk] = rng.uniform(2000.0, 6000.0, int(walk.sum()))
        evening = (m >= 20 * 60) & ~in_night
        lux[evening] = rng.uniform(60.0, 120.0, int(evening.sum()))
        # a player moves forward: the days around the one asked for are all it needs again
        for old in [d for d in self._minutes if abs(d - k) > 2]:
            del self._minutes[old]
        self._minutes[k] = (intensity, posture, lux)
        return self._minutes[k]

    # -- samples --------------------------------------------------------------------------
    def _minute_tables(self, t0: float, t1: float) -> tuple[int, np.ndarray, np.ndarray,
                                                            np.ndarray]:
        """Minutes covering recording times [t0, t1): the first one's absolute local minute
        (from day 0's midnight) and intensity, posture and lux of each."""
        first = int((self.start_of_day_s + t0) // 60)
        last = int((self.start_of_day_s + t1) // 60)
        tables = [self.minutes(k) for k in range(first // 1440, last // 1440 + 1)]
        lo = first - (first // 1440) * 1440
        n = last - first + 1
        inten, post, lux = (np.concatenate([tb[j] for tb in tables])[lo : lo + n]
                            for j in range(3))
        return first, inten, post, lux

    def make(self, name: str, i0: int, i1: int) -> np.ndarray:
        """Samples ``i0:i1`` of signal ``name`` (called by :class:`LazySignal` per block)."""
        sig = self.signals[name]
        t = np.arange(i0, i1) / sig.rate_hz
        first, intensity, posture, lux = self._minute_tables(float(t[0]), float(t[-1]))
        minute = (np.floor((self.start_of_day_s + t) / 60.0) - first).astype(np.intp)
        if name == "light":
            rng = np.random.default_rng([self.seed, 3, i0])
            return (lux[minute] * rng.uniform(0.9, 1.1, t.size))[:, None]
        rng = np.random.default_rng([self.seed, 4, i0])
        n = t.size
        width = max(1, round(SMOOTH_S * sig.rate_hz))
        white = rng.standard_normal((n + width - 1, 3), dtype=np.float32)
        kernel = np.full(width, 1.0 / math.sqrt(width), dtype=np.float32)  # unit variance
        move = np.stack([np.convolve(white[:, c], kernel, "valid") for c in range(3)], axis=1)
        gravity = np.where((posture < 0)[:, None], UPRIGHT, POSTURES[np.maximum(posture, 0)])
        # the noise floor rides on the same band-limited noise: an IMU at rest is not silent
        scale = (MOVE_G * intensity + GRAVITY_NOISE_G)[minute]
        return gravity[minute] + scale[:, None] * move
