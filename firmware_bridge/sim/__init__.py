"""The wearable simulator: a recording played as protocol frames, with switchable faults.

See :mod:`firmware_bridge.sim.wearable` for the in-process API (the daemon's ``sim``
device), :mod:`firmware_bridge.sim.transports` for the pty and TCP transports and
:mod:`firmware_bridge.sim.cli` for ``wearable-sim``.
"""

from firmware_bridge.sim.wearable import MODALITY_SCALES, Emission, Faults, SimulatedWearable

__all__ = ["MODALITY_SCALES", "Emission", "Faults", "SimulatedWearable"]
