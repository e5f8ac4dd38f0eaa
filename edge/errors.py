"""The hub's exceptions: the hub's branch of the project's one error root.

Errors of the kernel the hub stands on (contract, calibration, recordings, configuration)
live in :mod:`core.errors`; the ones only the hub raises live here. Subclasses carry the
offending item as fields, not only in the message, so logs and tests can inspect them.
"""

from __future__ import annotations

from core.errors import WearableEdgeError

__all__ = [
    "BundleError",
    "EdgeError",
    "EngineError",
    "SinkError",
    "SourceError",
]


class EdgeError(WearableEdgeError):
    """Base class of every error only the hub (:mod:`edge`) raises."""


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


class SourceError(EdgeError):
    """A sensor source (ble, serial, sim, replay) failed in a way its caller must handle."""


class SinkError(EdgeError):
    """A sink cannot write where it was told to (checked at start-up, before any record).

    ``sink`` is the sink's name (``"sqlite"``, ``"jsonl:out.jsonl"``) and ``path`` the file
    it cannot write; the message says what to fix.
    """

    def __init__(self, message: str, *, sink: str, path: str) -> None:
        super().__init__(message)
        self.sink = sink
        self.path = path
