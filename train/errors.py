"""Errors of the host-side training package: one base class, structured subclasses.

Everything :mod:`train` raises on bad input derives from :class:`TrainError` (the CLI
catches the project's root :class:`core.errors.WearableEdgeError` and prints the message), so a
caller can tell a bad data file or config from a programming error.
"""

from __future__ import annotations

from core.errors import WearableEdgeError

__all__ = ["DataError", "TrainError"]


class TrainError(WearableEdgeError):
    """Base class of every error raised by :mod:`train` on bad input."""


class DataError(TrainError):
    """A data set file or directory is missing or malformed.

    ``path`` names the file (or directory) at fault and ``reason`` says what is wrong, in
    words a user can act on (``"missing array 'y'"``, ``"X has shape (10, 3), expected
    (N, C, T)"``).
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[DataError], tuple[str, str]]:
        # rebuilt from its fields, so it crosses a process boundary (parallel loading)
        return (type(self), (self.path, self.reason))
