"""Typed options of personalization and model updates: the ``[personal]`` section of the daemon's configuration.

Kept apart from the service (:mod:`edge.personal.service`) so that reading a configuration
imports nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import require_non_negative, require_positive
from core.errors import ConfigError

__all__ = ["PersonalOptions"]


@dataclass
class PersonalOptions:
    enabled: bool = True  # cache embeddings and apply personal heads (needs the database)
    min_labels: int = 20  # confirmed-label windows before a personal head is even tried
    holdout: float = 0.3  # the newest fraction of a wearer's labels the heads are judged on
    # refit a wearer's head once this many labelled windows are new since its last fit
    refit_new_labels: int = 20
    refit_interval_s: float = 600.0  # the daemon looks for new labels this often; 0: never
    embedding_days: float = 30.0  # cached embeddings older than this are deleted (0: kept)
    # model updates: signed heads or bundles put here are verified and swapped in between
    # windows; empty = STATE_DIR/updates
    update_dir: str = ""
    update_poll_s: float = 5.0  # the update folder is looked at this often; 0: only on SIGHUP
    # after a swap, the new model is judged on confirmed labels of windows it decided; fewer
    # than this many and it stays (nothing to judge it on)
    rollback_min_labels: int = 10
    rollback_margin: float = 0.0  # roll back when macro-F1 new < previous - this margin

    def validate(self, key: str) -> None:
        require_positive(self.min_labels, f"{key}.min_labels")
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(
                "must be between 0 and 1 (a fraction of the labels)", key=f"{key}.holdout"
            )
        require_positive(self.refit_new_labels, f"{key}.refit_new_labels")
        require_non_negative(self.refit_interval_s, f"{key}.refit_interval_s")
        require_non_negative(self.embedding_days, f"{key}.embedding_days")
        require_non_negative(self.update_poll_s, f"{key}.update_poll_s")
        require_positive(self.rollback_min_labels, f"{key}.rollback_min_labels")
        require_non_negative(self.rollback_margin, f"{key}.rollback_margin")
