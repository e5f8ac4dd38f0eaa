"""Sensor sources: ble / serial / sim / replay behind one small contract.

``open_source(kind, options)`` imports the chosen backend only when it is chosen, so a
missing optional library (bleak on a serial-only hub, say) never breaks ``import edge``.
"""
