"""The project's one error root and the kernel's own errors.

Every exception class the project defines derives from :class:`WearableEdgeError`, so a
command-line entry point can catch the project's failures on bad input in one clause
without catching programming errors. Subclasses carry the offending item as fields, not only
in the message, so logs and tests can inspect them. Each package adds its own branch
(``edge.errors.EdgeError``, ``train.errors.TrainError``, ``export.errors.ExportError``,
``firmware_bridge.errors.BridgeError``); the errors the kernel itself raises live here.
"""

from __future__ import annotations

__all__ = [
    "ActigraphyError",
    "CalibrationError",
    "ConfigError",
    "ContractError",
    "InputTooLargeError",
    "OutputDirError",
    "RecordingError",
    "WearableEdgeError",
]


class WearableEdgeError(Exception):
    """Root of every error the project raises on bad input, configuration or data."""


class ConfigError(WearableEdgeError):
    """A configuration value is unknown or invalid; ``key`` names it (dotted path or flag)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class ContractError(WearableEdgeError):
    """An input contract (modalities, rates, window, normalization) is malformed or violated."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class CalibrationError(WearableEdgeError):
    """A per-resident baseline calibration is missing, too short or degenerate."""


class RecordingError(WearableEdgeError):
    """A recording file (WESAD pickle, our .npz) is missing or malformed; ``path`` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class ActigraphyError(WearableEdgeError):
    """Activity epochs or raw acceleration cannot give a rhythm, sleep or trend measure
    (an unsupported sample rate or epoch length, too few days, a malformed daily table)."""


class OutputDirError(WearableEdgeError):
    """A command's output folder cannot be used (not empty without --force, a file);
    ``path`` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class InputTooLargeError(WearableEdgeError):
    """An input file would inflate past what its reader accepts (a zip bomb, say);
    checked before it is read. ``path`` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
