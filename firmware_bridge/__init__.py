"""The wire protocol between wearables and the hub: framing, messages, GATT profiles, simulator."""
