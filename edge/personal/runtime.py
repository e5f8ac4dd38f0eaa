"""The daemon's personalization and update duties in one place: heads per window, refits, the update folder, SIGHUP.

:class:`PersonalRuntime` is what :class:`edge.daemon.Daemon` holds: it turns a window's
embedding into probabilities (:class:`~edge.personal.service.PersonalService`), and runs
one background task that takes updates from the folder (:class:`~edge.updates.Updater`),
refits wearers whose new confirmed labels make a refit due, and judges the last swap of
each model for a rollback; at start it serves again the updates that served before a
restart (:mod:`edge.update_restore`). Everything blocking runs on threads; swaps happen on
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import WearableEdgeError
from edge.decisions import Event
from edge.personal.service import PersonalService
from edge.update_restore import restore
from edge.updates import Updater

__all__ = ["PersonalRuntime", "update_folder"]

log = logging.getLogger(__name__)


def update_folder(cfg: Any) -> Path:
    """Where updates are put: ``personal.update_dir``, default ``STATE_DIR/updates``."""
    return Path(cfg.personal.update_dir) if cfg.personal.update_dir else cfg.state_path / "updates"


class PersonalRuntime:
    """See the module docstring. ``daemon`` offers ``cfg``, ``models`` and ``_emit``."""

    def __init__(self, daemon: Any) -> None:
        cfg = daemon.cfg
        self.daemon = daemon
        self.service: PersonalService | None = None
        if (
            cfg.personal.enabled
            and cfg.sinks.sqlite
            and any(m.bundle.embedding_dim is not None for m in daemon.models)
        ):
            self.service = PersonalService(
                cfg.personal, cfg.db_path, [m.bundle for m in daemon.models]
            )
        elif cfg.personal.enabled and cfg.sinks.sqlite:
            log.info("personalization is off: no bundle has an embedding output (re-export it)")
        daemon.personal = self.service
        self.folder = update_folder(cfg)
        with contextlib.suppress(OSError):  # a read-only state dir: updates by SIGHUP only
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.updater = Updater(daemon, self.folder)
        # what served before a restart serves again (verified anew), before the first window
        restore(self.updater)
        self._tasks: set[asyncio.Task[Any]] = set()

    def probabilities(
        self,
        resident: str,
        model_id: str,
        t: float,
        span_s: float,
        probs: np.ndarray,
        emb: np.ndarray | None,
    ) -> np.ndarray:
        """The window's probabilities: a personal or updated head's, else the engine's."""
        if self.service is None:
            return probs
        mine = self.service.on_window(resident, model_id, t - span_s, t, emb)
        return probs if mine is None else mine

    async def run(self) -> None:
        """The background task: the update folder, refits and rollback checks."""
        self.updater.release()  # the sinks run: what the restore at start said goes out
        cfg = self.daemon.cfg.personal
        poll = cfg.update_poll_s
        refit = cfg.refit_interval_s
        last_refit = time.monotonic()
        tick = min(x for x in (poll, refit, 60.0) if x > 0)
        while True:
            await asyncio.sleep(tick)
            if poll > 0:
                await self.updater.poll()
            if refit > 0 and time.monotonic() - last_refit >= refit:
                last_refit = time.monotonic()
                await self.refit()
                await self.updater.check_rollbacks()

    async def refit(self, wearer: str | None = None) -> None:
        """Refit the wearers that are due (off the loop) and say what changed."""
        if self.service is None:
            return
        try:
            results = await asyncio.to_thread(self.service.refit, wearer=wearer)
        except (WearableEdgeError, OSError, ValueError, sqlite3.Error) as e:
            log.error("personalization failed: %s", e)  # never stop deciding for it
            return
        for r in results:
            log.info("personalization: %s", r.line())
            if not r.skipped:
                self.daemon._emit(
                    Event(
                        r.resident,
                        r.resident,
                        self.updater._now(),
                        "personal_head",
                        {
                            "model_id": r.model_id,
                            "chosen": r.chosen,
                            "macro_f1_personal": _round(r.personal_f1),
                            "macro_f1_shared": _round(r.shared_f1),
                            "held_back": r.n_holdout,
                        },
                    )
                )

    def reload(self) -> None:
        """SIGHUP: personal heads from the database, bundles where the configuration points,
        the update folder now."""
        if self.service is not None:
            n = self.service.reload()
            log.info("SIGHUP: %d personal heads in use; looking for model updates", n)
        task = asyncio.get_running_loop().create_task(
            self.updater.reload_bundles(), name="sighup-reload"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait for a SIGHUP reload still running (shutdown)."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, WearableEdgeError):
                await task

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "updates": dict(self.updater.counters),
            # windows answered by an engine no model runs any more: 0
            # when swaps lose nothing
            "results_of_previous_model": self.daemon.counters.get("results_of_previous_model", 0),
        }
        if self.service is not None:
            out.update(self.service.health())
        return out

    async def close(self, within_s: float) -> None:
        if self.service is not None:
            await asyncio.to_thread(self.service.close, within_s)


def _round(v: float) -> float | None:
    return None if v != v else round(float(v), 3)
