"""One device's model packets held until they can complete a window, then one chunk per sensor.

A wearable sends a packet per sensor every quarter second; a window is cut once per hop.
Handing every packet to the shared :class:`~core.signal.WindowAssembler` (and to the raw
taps) costs their per-call work ten times a second per wearable; the ingest holds them here
instead, and hands them over when they could complete the assembler's next window (every
modality reaches that window's end plus its margin: what ``pop_ready`` asks, a little
early), one concatenated chunk per sensor. The windows are the same, cut by the same packet
(``tests/unit/edge/test_ingest.py`` compares them with packet-by-packet pushing): held data
lies after everything the assembler has, so it can only make a window final, never change
one the assembler could already cut.

Held packets are bounded (:data:`MAX_HELD_PACKETS`), so a stalled sensor cannot make the
others pile up here instead of in the assembler's own cap; the ingest also hands them over
before a loss, a restart or the end of a session, so a chunk never spans one.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from core.contract import InputContract, Modality
from core.signal import WindowAssembler
from firmware_bridge.protocol import SensorInfo

__all__ = ["HOLD_EPS_S", "MAX_HELD_PACKETS", "PacketHold"]

MAX_HELD_PACKETS: Final = 64  # about 6 s of a four-sensor wrist wearable's packets
# A hold that reaches a window's end to within this is handed over: it errs early (one
# hand-over with nothing to cut), never late, whatever the rounding.
HOLD_EPS_S: Final = 1e-6
_MAX_STEPS: Final = 64  # cached packet sizes; odd sizes (a lossy or odd device) start over


class PacketHold:
    """See the module docstring. The ingest's; not thread-safe."""

    def __init__(self, max_packets: int = MAX_HELD_PACKETS) -> None:
        self.max_packets = max_packets
        self._held: list[tuple[SensorInfo, Modality, float, np.ndarray]] = []
        self._held_last: dict[str, float] = {}  # modality -> latest held device second
        self._pushed_last: dict[str, float] = {}  # modality -> latest handed to the assembler
        self._steps: dict[tuple[int, float], np.ndarray] = {}  # (n, rate) -> arange(n) / rate

    def __len__(self) -> int:
        return len(self._held)

    @property
    def samples(self) -> int:
        """Samples held."""
        return sum(len(h[3]) for h in self._held)

    def times(self, t0: float, n: int, rate: float) -> np.ndarray:
        """``t0 + np.arange(n) / rate`` (the packet's sample times), the step made once per
        packet size and rate."""
        key = (n, rate)
        step = self._steps.get(key)
        if step is None:
            if len(self._steps) >= _MAX_STEPS:
                self._steps.clear()
            step = np.arange(n, dtype=np.float64) / rate
            step.flags.writeable = False
            self._steps[key] = step
        return t0 + step

    def add(self, info: SensorInfo, m: Modality, t0: float, t_last: float,
            raw: np.ndarray) -> None:
        """Hold a packet of sensor ``info`` feeding ``m``: first sample at device second
        ``t0``, last at ``t_last``, wire values ``raw`` (N, C)."""
        self._held.append((info, m, t0, raw))
        if t_last > self._held_last.get(m.name, -math.inf):
            self._held_last[m.name] = t_last

    def due(self, asm: WindowAssembler, contract: InputContract) -> bool:
        """Whether to hand over now: full, or the held data could complete ``asm``'s next
        window."""
        if len(self._held) >= self.max_packets:
            return True
        end = asm.origin + asm.next_index * contract.hop_s + contract.window_s - HOLD_EPS_S
        held, pushed = self._held_last, self._pushed_last
        for mod in contract.modalities:
            name = mod.name
            last = max(held.get(name, -math.inf), pushed.get(name, -math.inf))
            if last - asm.margin_s(name) < end:
                return False
        return True

    def take(self) -> list[tuple[SensorInfo, Modality, np.ndarray, np.ndarray]]:
        """Everything held, as one ``(sensor, modality, times (N,), wire values (N, C))``
        chunk per sensor in order of first arrival; the hold is then empty."""
        held, self._held, self._held_last = self._held, [], {}
        groups: dict[int, list[tuple[SensorInfo, Modality, float, np.ndarray]]] = {}
        for h in held:
            groups.setdefault(h[0].sensor_id, []).append(h)
        out = []
        for packets in groups.values():
            info, m = packets[0][0], packets[0][1]
            rate = info.rate_hz
            if len(packets) == 1:
                _, _, t0, raw = packets[0]
                t = self.times(t0, len(raw), rate)
            else:
                t = np.concatenate([self.times(p[2], len(p[3]), rate) for p in packets])
                raw = np.concatenate([p[3] for p in packets])
            out.append((info, m, t, raw))
        return out

    def pushed(self, name: str, t: np.ndarray) -> None:
        """Note samples of modality ``name`` handed to the assembler (by any path)."""
        if t.size:
            last = float(t[-1])
            if last > self._pushed_last.get(name, -math.inf):
                self._pushed_last[name] = last

    def new_assembler(self) -> None:
        """A fresh assembler has nothing yet."""
        self._pushed_last = {}
