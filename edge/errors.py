"""The hub's exceptions: one base class, structured subclasses.

Every error the hub raises on bad input derives from :class:`EdgeError`, so a caller can
catch the package's failures without catching programming errors. Subclasses carry the
offending item as fields, not only in the message, so logs and tests can inspect them.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "CalibrationError",
    "ConfigError",
    "ContractError",
    "EdgeError",
    "EngineError",
    "RecordingError",
    "SourceError",
]


class EdgeError(Exception):
    """Base class of every error raised by :mod:`edge`."""


class ContractError(EdgeError):
    """An input contract (modalities, rates, window, normalization) is malformed or violated."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class CalibrationError(EdgeError):
    """A per-resident baseline calibration is missing, too short or degenerate."""


class BundleError(EdgeError):
    """A model bundle is incomplete, tampered with, or of an unknown schema.

    ``path`` names the file at fault (or the bundle directory) and ``reason`` is a short
    machine-readable tag such as ``"hash_mismatch"``, ``"missing_file"`` or ``"schema"``.
    """

    def __init__(self, message: str, *, path: str, reason: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = reason


class EngineError(EdgeError):
    """An inference engine could not be loaded or failed to run."""


class ConfigError(EdgeError):
    """A daemon configuration value is invalid; ``key`` names it (dotted path)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class SourceError(EdgeError):
    """A sensor source (ble, serial, sim, replay) failed in a way its caller must handle."""


class RecordingError(EdgeError):
    """A recording file (WESAD pickle, our .npz) is missing or malformed; ``path`` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
