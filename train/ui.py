"""Progress bars of ``edge-train`` on the terminal: rich bars for :mod:`train.progress` events.

The only training module besides ``train.cli`` that draws anything. One bar per event task
("subjects", "jobs", "epochs"); an event with ``done == 0`` restarts its bar, so the epochs
bar is reused model after model.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from train.progress import ProgressEvent

__all__ = ["RichProgress"]


class RichProgress:
    """A :data:`train.progress.ProgressFn` that draws rich bars (use it as a context manager)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @property
    def tasks(self) -> list[Task]:
        """The bars drawn so far, in the order they appeared."""
        return list(self._progress.tasks)

    def __call__(self, event: ProgressEvent) -> None:
        task = self._tasks.get(event.task)
        if task is None:
            self._tasks[event.task] = self._progress.add_task(
                event.description, total=event.total, completed=event.done
            )
        elif event.done == 0:
            self._progress.reset(task, total=event.total, description=event.description)
        else:
            self._progress.update(
                task, completed=event.done, total=event.total, description=event.description
            )
