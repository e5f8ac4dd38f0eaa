"""Progress events that training code reports; drawing them is the CLI's job (``train.ui``).

Library code (loading, synthesis, the training loop, the fold-job pool) calls a
:data:`ProgressFn` with a :class:`ProgressEvent` and never prints. A caller that wants bars
passes ``train.ui.RichProgress``; the default, :func:`no_progress`, ignores every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressEvent", "ProgressFn", "no_progress"]


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` steps of one task; ``done == 0`` (re)starts the task."""

    task: str  # one bar per task: "subjects", "jobs", "epochs"
    description: str  # what the bar says, e.g. "S2 teacher_bvp"
    done: int
    total: int


ProgressFn = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """The default :data:`ProgressFn`: reports go nowhere."""
