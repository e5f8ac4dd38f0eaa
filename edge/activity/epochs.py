"""One device's raw wrist acceleration (and light) -> activity-count epochs on the hub's clock.

:class:`DeviceActivity` is the ingest's raw tap for one device: it sees every SAMPLES packet
(device seconds, wire values) before the model's window assembler, keeps the accelerometer
(3 channels in g, at a rate ActiGraph counts are defined for) and the light sensor (lux), and
returns finished :class:`ActivityEpoch` s from the kernel's streaming
:class:`~core.actigraphy.CountsAccumulator`:

- epochs sit on the hub's wall-clock grid (start a multiple of ``epoch_s``): a new
  accumulator skips samples up to the next grid boundary, and each epoch's start is its
  device time mapped to hub time, rounded to the grid;
- a short hole in the stream (a lost packet) is filled by holding the last sample, counted;
  a longer one, a clock going back, or a change of rate flushes the accumulator and starts a
  new one at the next boundary (the partial epoch is lost, counted);
- samples are pushed to the kernel a minute at a time (the kernel's cost per call is mostly
  fixed), so an epoch is returned about a minute after it ends;
- light: the mean lux of the samples in the epoch; an epoch waits (bounded) until the light
  stream has passed its end, so a light packet sent after the acceleration is not missed.

Pure: no I/O and no clock reads; the ``to_wall`` function maps device seconds to hub time.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from core.actigraphy import SUPPORTED_RATES, CountEpoch, CountsAccumulator
from edge.decisions import Wearer
from edge.sensors import unit_matches
from firmware_bridge.protocol import SensorInfo

__all__ = ["ActivityEpoch", "DeviceActivity"]

log = logging.getLogger(__name__)

ACC_KIND: Final = "acc"
LIGHT_KIND: Final = "light"
# a hole this short (a lost BLE packet or two) is held over; longer ones restart the counts
MAX_FILL_S: Final = 2.0
PUSH_S: Final = 60.0  # raw data handed to the kernel per call (see the module docstring)
# an epoch waits for the light stream at most this long behind the acceleration: a light
# sensor that stopped must not hold the counts back
LIGHT_WAIT_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class ActivityEpoch:
    """One epoch of one wearer: derived counts, never samples."""

    resident: str
    device: str
    t: float  # hub wall-clock epoch seconds of the epoch's start, a multiple of epoch_s
    epoch_s: int
    counts: tuple[int, int, int]  # ActiGraph counts per axis
    vm: float  # their vector magnitude: the activity the measures read
    light: float | None  # mean lux, None when the device sent no light for the epoch


class DeviceActivity:
    """One device's raw tap (see the module docstring). Not thread-safe: the loop owns it."""

    def __init__(self, device: str, wearer: Wearer, to_wall: Callable[[float], float], *,
                 epoch_s: int = 60) -> None:
        self.device = device
        self.wearer = wearer
        self.to_wall = to_wall
        self.epoch_s = int(epoch_s)
        self.counters: Counter[str] = Counter()
        self._acc: CountsAccumulator | None = None
        self._acc_sensor: int | None = None
        self._fs = 0.0
        self._dev_start = 0.0  # device second of the accumulator's first sample
        self._stream_epochs = 0  # epochs the accumulator has returned
        self._next_t = math.nan  # device second the next sample is due
        self._last = np.zeros(3)  # the last sample (g), held over a short hole
        self._buf: list[np.ndarray] = []
        self._buf_n = 0
        self._skip_until = math.nan  # device second of the grid boundary a new stream waits for
        self._light: dict[float, list[float]] = {}  # epoch start (hub s) -> [sum, n]
        self._light_until = -math.inf  # hub time the light stream has reached
        self._has_light = False
        self._held: deque[ActivityEpoch] = deque()  # epochs waiting for their light
        self._acc_until = -math.inf  # hub time the acceleration has reached
        self._unusable: set[int] = set()  # sensor ids already reported as unusable

    # -- the tap --------------------------------------------------------------------------
    def on_samples(self, info: SensorInfo, t: np.ndarray, raw: np.ndarray) -> list[ActivityEpoch]:
        """One SAMPLES packet (``t``: device seconds of each sample); finished epochs."""
        if info.kind == ACC_KIND:
            if not self._usable_acc(info):
                return []
            out = self._on_acc(info, t, np.asarray(info.to_physical(raw), dtype=np.float64))
        elif info.kind == LIGHT_KIND and unit_matches(info.unit, "lux") and info.channels == 1:
            self._on_light(t, np.asarray(info.to_physical(raw), dtype=np.float64)[:, 0])
            out = []
        else:
            return []
        return self._release(out)

    def flush(self) -> list[ActivityEpoch]:
        """End of stream: every epoch still held (a trailing partial epoch is dropped)."""
        out = self._end_stream()
        return self._release(out, final=True)

    # -- acceleration ---------------------------------------------------------------------
    def _usable_acc(self, info: SensorInfo) -> bool:
        ok = (info.channels == 3 and unit_matches(info.unit, "g")
              and math.isclose(info.rate_hz, round(info.rate_hz), abs_tol=1e-3)
              and round(info.rate_hz) in SUPPORTED_RATES)
        if not ok and info.sensor_id not in self._unusable:
            self._unusable.add(info.sensor_id)
            self.counters["activity_sensor_unusable"] += 1
            log.warning("%s: accelerometer %d (%d channels in %r at %g Hz) gives no activity "
                        "counts: they need 3 axes in g at one of %s Hz", self.device,
                        info.sensor_id, info.channels, info.unit, info.rate_hz,
                        ", ".join(map(str, SUPPORTED_RATES)))
        return ok

    def _on_acc(self, info: SensorInfo, t: np.ndarray, x: np.ndarray) -> list[ActivityEpoch]:
        out: list[ActivityEpoch] = []
        fs = float(round(info.rate_hz))
        if not np.all(np.isfinite(x)):
            self.counters["activity_samples_non_finite"] += len(x)
            out += self._end_stream()
            return out
        if self._acc is not None:
            hole = float(t[0]) - self._next_t
            if fs != self._fs or info.sensor_id != self._acc_sensor:
                self.counters["activity_restarts_rate"] += 1
                out += self._end_stream()
            elif hole < -0.5 / fs:
                self.counters["activity_restarts_clock"] += 1
                out += self._end_stream()
            elif hole > MAX_FILL_S:
                self.counters["activity_restarts_gap"] += 1
                out += self._end_stream()
            elif hole > 0.5 / fs:
                n_fill = round(hole * fs)
                self.counters["activity_samples_filled"] += n_fill
                self._buffer(np.repeat(self._last[None, :], n_fill, axis=0))
        if self._acc is None:
            t, x = self._start_stream(info, fs, t, x)
            if not len(t):
                return out
        self._buffer(x)
        self._last = x[-1]
        self._next_t = float(t[-1]) + 1.0 / fs
        if self._buf_n >= PUSH_S * fs:
            out += self._push()
        return out

    def _start_stream(self, info: SensorInfo, fs: float, t: np.ndarray,
                      x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Wait for the next grid boundary, then start an accumulator on it."""
        if math.isnan(self._skip_until):
            w0 = self.to_wall(float(t[0]))
            boundary = math.ceil(w0 / self.epoch_s) * self.epoch_s
            self._skip_until = float(t[0]) + (boundary - w0)
        keep = t >= self._skip_until - 0.5 / fs
        self.counters["activity_samples_before_grid"] += int((~keep).sum())
        t, x = t[keep], x[keep]
        if not len(t):
            self._next_t = math.nan
            return t, x
        self._acc = CountsAccumulator(int(fs), self.epoch_s)
        self._acc_sensor = info.sensor_id
        self._fs = fs
        self._dev_start = float(t[0])
        self._stream_epochs = 0
        self._skip_until = math.nan
        return t, x

    def _buffer(self, x: np.ndarray) -> None:
        self._buf.append(x)
        self._buf_n += len(x)

    def _push(self) -> list[ActivityEpoch]:
        if self._acc is None or not self._buf:
            return []
        x = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        self._buf, self._buf_n = [], 0
        self.counters["activity_samples"] += len(x)
        return self._epochs(self._acc.push(x))

    def _end_stream(self) -> list[ActivityEpoch]:
        """Flush the accumulator (its last complete epochs) and wait for a new stream."""
        if self._acc is None:
            self._skip_until = math.nan
            return []
        out = self._push()
        out += self._epochs(self._acc.flush())
        whole = self._stream_epochs * self.epoch_s * self._fs
        self.counters["activity_samples_in_partial_epochs"] += max(
            0, self._acc.samples_in - round(whole))
        self._acc = None
        self._skip_until = math.nan
        self._next_t = math.nan
        self.counters["activity_streams"] += 1
        return out

    def _epochs(self, epochs: list[CountEpoch]) -> list[ActivityEpoch]:
        self._stream_epochs += len(epochs)
        out = []
        for e in epochs:
            dev = self._dev_start + e.index * self.epoch_s
            wall = round(self.to_wall(dev) / self.epoch_s) * self.epoch_s
            out.append(ActivityEpoch(self.wearer.resident, self.device, float(wall), self.epoch_s,
                                     e.counts, e.vm, None))
            self._acc_until = max(self._acc_until, wall + self.epoch_s)
        self.counters["activity_epochs"] += len(out)
        return out

    # -- light ----------------------------------------------------------------------------
    def _on_light(self, t: np.ndarray, lux: np.ndarray) -> None:
        self._has_light = True
        w_first, w_last = self.to_wall(float(t[0])), self.to_wall(float(t[-1]))
        # a packet's samples are evenly spaced: map its ends, interpolate the rest
        n = len(t)
        for i in range(n):
            v = float(lux[i])
            if not (v >= 0 and math.isfinite(v)):
                self.counters["light_samples_invalid"] += 1
                continue
            w = w_first + (w_last - w_first) * i / (n - 1) if n > 1 else w_first
            acc = self._light.setdefault(math.floor(w / self.epoch_s) * self.epoch_s, [0.0, 0.0])
            acc[0] += v
            acc[1] += 1
        self._light_until = max(self._light_until, w_last)

    def _release(self, new: list[ActivityEpoch], *, final: bool = False) -> list[ActivityEpoch]:
        """Epochs whose light is in (or that waited long enough), with their light."""
        self._held.extend(new)
        out = []
        while self._held:
            e = self._held[0]
            end = e.t + e.epoch_s
            ready = (final or not self._has_light or self._light_until >= end
                     or self._acc_until - end > LIGHT_WAIT_S)
            if not ready:
                break
            self._held.popleft()
            lx = self._light.pop(e.t, None)
            if lx is not None:
                e = ActivityEpoch(e.resident, e.device, e.t, e.epoch_s, e.counts, e.vm,
                                  lx[0] / lx[1])
            elif self._has_light:
                self.counters["activity_epochs_without_light"] += 1
            out.append(e)
        # light before the first epoch still to come is for epochs already out (or for a
        # time no epoch covers): it is not needed any more
        horizon = self._held[0].t if self._held else self._acc_until
        for s in [s for s in self._light if s < horizon]:
            del self._light[s]
        return out
