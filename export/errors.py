"""The exporter's exceptions: one base class with the file and stage at fault."""

from __future__ import annotations

from core.errors import WearableEdgeError

__all__ = ["ExportError"]


class ExportError(WearableEdgeError):
    """Export failed. ``path`` names the file involved, ``stage`` the step (e.g. "onnx_int8")."""

    def __init__(self, message: str, *, path: str | None = None, stage: str | None = None) -> None:
        prefix = ": ".join(p for p in (stage, path) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path = path
        self.stage = stage
