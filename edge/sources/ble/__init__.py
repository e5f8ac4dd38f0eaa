"""BLE wearables: the ``ble`` source, the GATT translation and the scan, behind one facade.

The package's modules, one job each:

- :mod:`~edge.sources.ble.translate`: the UUIDs understood and the standard-profile
  translator (pure);
- :mod:`~edge.sources.ble.scanner`: :func:`scan`, nearby wearables and what they offer;
- :mod:`~edge.sources.ble.source`: :class:`BleSource`, connect, subscribe, reconnect.

The source's options, :class:`BleOptions` (the ``[ble]`` section), live with every source's
in :mod:`edge.sources.options` and are re-exported here. Names are resolved on first use,
so importing this package costs nothing until a name is used; bleak and
bleak-retry-connector are imported by ``scanner`` and ``source`` and nowhere else in
``edge``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.lazy import lazy_attributes
from edge.sources.options import BleOptions

if TYPE_CHECKING:
    from edge.sources.ble.scanner import DiscoveredWearable, scan
    from edge.sources.ble.source import BleSource, backoff_delay
    from edge.sources.ble.translate import (
        HR_SENSOR_ID,
        RR_SENSOR_ID,
        TEMP_SENSOR_ID,
        StandardProfileTranslator,
    )

__all__ = [
    "HR_SENSOR_ID",
    "RR_SENSOR_ID",
    "TEMP_SENSOR_ID",
    "BleOptions",
    "BleSource",
    "DiscoveredWearable",
    "StandardProfileTranslator",
    "backoff_delay",
    "scan",
]

# public name -> the module that defines it
_HOME: Final = {
    "HR_SENSOR_ID": "translate",
    "RR_SENSOR_ID": "translate",
    "TEMP_SENSOR_ID": "translate",
    "StandardProfileTranslator": "translate",
    "DiscoveredWearable": "scanner",
    "scan": "scanner",
    "BleSource": "source",
    "backoff_delay": "source",
}


__getattr__ = lazy_attributes(__name__, _HOME, globals())
