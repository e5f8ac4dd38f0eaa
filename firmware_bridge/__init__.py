"""The wire protocol between wearables and the hub: framing, messages, GATT profiles, simulator.

- ``protocol``  messages (Hello, Samples, Event, TimeSync) and their packet layout
- ``framing``   CRC-16 + COBS serial frames; the streaming ``FrameDecoder``
- ``gatt``      BLE UUIDs, standard profiles (heart rate, battery, thermometer, device info),
                fragmentation of protocol packets over notifications
- ``timesync``  device clock -> hub time (``ClockMapper``), ``SequenceTracker``
- ``errors``    ``BridgeError`` / ``ProtocolError`` family (``reason`` = counter key)
- ``c/``        C99 reference encoder/decoder for firmware; ``vectors/`` shared test vectors
- ``sim``       the wearable simulator (``wearable-sim``)

Byte layouts: ``PROTOCOL.md``. Nothing is imported here, so ``import firmware_bridge`` is free.
"""
