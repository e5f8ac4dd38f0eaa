"""The bridge's exceptions: one base class, structured subclasses, a ``reason`` tag each.

Every error raised on bad bytes derives from :class:`ProtocolError`, which carries a short
machine-readable ``reason`` (``"crc"``, ``"framing"``, ``"truncated"`` ...). Streaming
decoders never raise on corrupt input; they count rejected frames under that same tag, so a
log line, a test and a health counter all speak the same words.
"""

from __future__ import annotations

from typing import ClassVar

from core.errors import WearableEdgeError

__all__ = [
    "BridgeError",
    "ClockError",
    "CrcError",
    "FrameTooLongError",
    "FramingError",
    "PayloadError",
    "ProtocolError",
    "SimulatorError",
    "TruncatedError",
    "UnknownMessageError",
    "UnsupportedVersionError",
]


class BridgeError(WearableEdgeError):
    """Base class of every error raised by :mod:`firmware_bridge`."""


class ProtocolError(BridgeError):
    """Bytes that are not a valid packet, frame or GATT value.

    ``reason`` is the counter key streaming decoders use for this kind of rejection.
    """

    reason: ClassVar[str] = "protocol"


class FramingError(ProtocolError):
    """A frame is not valid COBS (a block runs past the end of the frame, a stray 0x00)."""

    reason: ClassVar[str] = "framing"


class FrameTooLongError(FramingError):
    """A frame (or reassembled BLE packet) exceeds the protocol's length limit."""

    reason: ClassVar[str] = "oversize"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the {limit}-byte limit")
        self.length = length
        self.limit = limit


class CrcError(ProtocolError):
    """The CRC-16/CCITT-FALSE carried by a packet does not match its contents."""

    reason: ClassVar[str] = "crc"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"CRC mismatch: packet says 0x{expected:04X}, computed 0x{actual:04X}")
        self.expected = expected  # the CRC carried in the packet
        self.actual = actual  # the CRC computed over the received bytes


class TruncatedError(ProtocolError):
    """Fewer bytes than the layout needs; ``needed`` and ``got`` are byte counts."""

    reason: ClassVar[str] = "truncated"

    def __init__(self, what: str, *, needed: int, got: int) -> None:
        super().__init__(f"{what}: needs {needed} bytes, got {got}")
        self.what = what
        self.needed = needed
        self.got = got


class UnknownMessageError(ProtocolError):
    """A message type code this hub does not know (a newer firmware); skipped and counted."""

    reason: ClassVar[str] = "unknown_type"

    def __init__(self, type_code: int) -> None:
        super().__init__(f"unknown message type 0x{type_code:02X}")
        self.type_code = type_code


class UnsupportedVersionError(ProtocolError):
    """A packet of a protocol version this hub does not speak."""

    reason: ClassVar[str] = "version"

    def __init__(self, version: int, supported: int) -> None:
        super().__init__(f"protocol version {version} is not supported (this hub speaks {supported})")
        self.version = version
        self.supported = supported


class PayloadError(ProtocolError):
    """A field holds a value its layout forbids; ``field`` names it (``"samples.count"``)."""

    reason: ClassVar[str] = "payload"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ClockError(BridgeError):
    """Device time cannot be mapped to hub time yet (no TIME_SYNC pair received)."""


class SimulatorError(BridgeError):
    """The wearable simulator was configured or driven in a way it cannot honour."""
