"""Beat times of one RR sensor from its packets: chained beat to beat, kept honest by packet times.

A heart-rate strap sends, about once a second, the RR intervals that ended since its last
notification; the packet carries no beat times (PROTOCOL.md, "Beat sensors": the packet's
time is the hub's reception, taken as the last beat). Reception jitters by tens of
milliseconds, so beat times read off each packet would add that jitter to every interval's
place in time. :class:`BeatClock` instead chains each beat on from the previous one (beat =
previous beat + RR, exact to the interval's resolution) and uses the packet's time only as
a bound:

- the chain may not run *ahead* of the packet (a beat cannot end after the notification that
  reports it): it is pulled back to the packet's time, by at most half the packet's first
  interval per packet so that no beat lands on or before the previous one. Anchored on a
  slow first packet, the chain thus settles on the fastest deliveries, as
  :class:`~edge.time_base.TimeBase` settles on the smallest offset;
- a chain *behind* the packet by more than :data:`MAX_LAG_S` has lost beats (a notification
  that never arrived): it starts again from the packet's time and leaves a gap where the
  lost beats were, which the window's verdict sees as a gap, not as missed beats;
- a lost packet that the sequence numbers show (``gap=True``), a reconnection or a new
  session (:meth:`reset`) start again from the packet's time too.

Beats that would not come strictly after the previous one are dropped and counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_LAG_S", "BeatClock"]

# A strap notifies about once a second with the beats since the last notification, so its
# last beat trails the notification by up to one period plus the link latency; a chain
# further behind than one plausible interval (2 s) plus that period has lost beats.
MAX_LAG_S: Final = 3.0


class BeatClock:
    """Times the beats of one RR sensor's packets; see the module docstring."""

    def __init__(self) -> None:
        self.last: float | None = None  # time of the latest beat placed
        self.counters: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget the chain: the next packet starts it again from its own time."""
        self.last = None

    def place(self, t_first: float, rr: NDArray[np.float64], *, gap: bool = False
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Beat times (and the intervals kept) of one packet: intervals ``rr`` (s), the first
        ending at ``t_first`` by the packet's own account (device seconds)."""
        rr = np.asarray(rr, dtype=np.float64).reshape(-1)
        if rr.size == 0:
            return rr, rr
        rest = float(rr[1:].sum())
        packet_last = t_first + rest  # the packet's own time of its last beat
        if self.last is None or gap:
            last = packet_last
            self.counters["anchored"] += 1
        else:
            chain_last = self.last + float(rr.sum())
            if packet_last - chain_last > MAX_LAG_S:  # beats were lost in between
                last = packet_last
                self.counters["reanchored_behind"] += 1
            elif chain_last > packet_last:  # ahead of the packet: pull back, a little
                floor = self.last + 0.5 * float(rr[0]) + rest
                last = max(packet_last, floor)
                self.counters["pulled_back"] += 1
            else:
                last = chain_last
        t = last - (float(rr.sum()) - np.cumsum(rr))  # (k,) t[-1] == last
        if self.last is not None:
            keep = t > self.last
            if not keep.all():
                self.counters["dropped_not_after_previous"] += int((~keep).sum())
                t, rr = t[keep], rr[keep]
        if t.size:
            self.last = float(t[-1])
        return t, rr
