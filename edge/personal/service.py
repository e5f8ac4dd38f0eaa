"""Applying the right head to each decided window: a wearer's own when it proved better, else the shared one.

The daemon hands every decided window's embedding to :meth:`PersonalService.on_window`
(on the event loop: a (D,) @ (D, K) product and a deque append). The embedding is cached in
the hub database for later fits (:class:`~edge.personal.store.EmbeddingWriter`, its own
thread), and the window's probabilities come from the wearer's personal head when one was
*chosen* (it beat the shared head on the wearer's held-back confirmed labels,
:func:`edge.personal.head.personalize`), or from a shared head installed by a verified update
(:mod:`edge.updates`); otherwise the engine's own logits stand.

Fitting (:meth:`PersonalService.refit`, :func:`fit_wearers`) reads labels and embeddings
through its own connection and is blocking: the daemon runs it with ``asyncio.to_thread``,
``edge-daemon personalize`` directly.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.decisions import softmax
from edge.personal.head import Head, personalize
from edge.personal.options import PersonalOptions
from edge.personal.store import EmbeddingRow, EmbeddingWriter, PersonalStore, StoredHead

__all__ = ["FitResult", "PersonalService", "SharedModel", "fit_wearers", "shared_head"]

log = logging.getLogger(__name__)


def shared_head(bundle: Bundle) -> Head | None:
    """The bundle's own head (``head.npz``), None for a bundle without an embedding."""
    if bundle.embedding_dim is None:
        return None
    with np.load(io.BytesIO(bundle.read_head()), allow_pickle=False) as z:
        return Head(z["W"], z["b"])


@dataclass(frozen=True)
class SharedModel:
    """What a fit needs of one model: its current shared head, class names and body version."""

    head: Head
    class_names: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class FitResult:
    """One wearer's fit, in words and figures."""

    resident: str
    model_id: str
    n_labels: int
    chosen: bool
    shared_f1: float
    personal_f1: float
    n_holdout: int
    skipped: str = ""  # why no head was fitted ("" when one was)

    def line(self) -> str:
        if self.skipped:
            return f"{self.resident} ({self.model_id}): {self.skipped}"
        verdict = (
            "personal head chosen"
            if self.chosen
            else "shared head kept (the personal one was not better)"
        )
        return (
            f"{self.resident} ({self.model_id}): {verdict}: macro-F1 personal "
            f"{self.personal_f1:.2f} vs shared {self.shared_f1:.2f} on {self.n_holdout} "
            f"held-back labelled windows ({self.n_labels} in all)"
        )


def fit_wearers(
    db_path: str | os.PathLike[str],
    heads: dict[str, SharedModel],
    opts: PersonalOptions,
    *,
    wearer: str | None = None,
    only_due: bool = False,
) -> list[FitResult]:
    """Fit a personal head for each wearer with labels (or ``wearer``) and each model
    (``heads``: model id -> its :class:`SharedModel`); store every fit. ``only_due``:
    only wearers with ``opts.refit_new_labels`` new labelled windows since their last fit."""
    out = []
    with PersonalStore(db_path) as store:
        previous = {(h.resident, h.model_id, h.model_version): h for h in store.heads()}
        residents = [wearer] if wearer else store.residents_with_labels()
        for resident in residents:
            for model_id, sm in heads.items():
                shared = sm.head
                emb, y, _ = store.labelled(resident, model_id, sm.version, sm.class_names)
                if len(y) == 0:
                    if wearer:
                        out.append(
                            FitResult(
                                resident,
                                model_id,
                                0,
                                False,
                                math.nan,
                                math.nan,
                                0,
                                "no labelled windows yet",
                            )
                        )
                    continue
                last = previous.get((resident, model_id, sm.version))
                new = len(y) - (last.n_labels if last else 0)
                if only_due and (
                    len(y) < opts.min_labels or (last and new < opts.refit_new_labels)
                ):
                    continue
                if len(y) < opts.min_labels:
                    out.append(
                        _not_fitted(
                            resident,
                            model_id,
                            len(y),
                            f"{len(y)} labelled windows; a personal head needs {opts.min_labels}",
                        )
                    )
                    continue
                if emb.shape[1] != shared.dim:
                    out.append(
                        _not_fitted(
                            resident,
                            model_id,
                            len(y),
                            "cached embeddings are of another model size",
                        )
                    )
                    continue
                p = personalize(shared, emb, y, holdout=opts.holdout, min_labels=opts.min_labels)
                store.save_head(
                    StoredHead(
                        resident,
                        model_id,
                        sm.version,
                        p.head.W,
                        p.head.b,
                        p.chosen,
                        p.shared_f1,
                        p.personal_f1,
                        p.n_fit,
                        p.n_holdout,
                        len(y),
                        time.time(),
                    )
                )
                out.append(
                    FitResult(
                        resident,
                        model_id,
                        len(y),
                        p.chosen,
                        p.shared_f1,
                        p.personal_f1,
                        p.n_holdout,
                    )
                )
    return out


class PersonalService:
    """The heads the daemon applies, per model and wearer (see the module docstring)."""

    def __init__(
        self, opts: PersonalOptions, db_path: str | os.PathLike[str], bundles: Sequence[Bundle]
    ) -> None:
        self.opts = opts
        self.db_path = db_path
        self.classes: dict[str, tuple[str, ...]] = {}
        self.version: dict[str, str] = {}  # model id -> the running body's model_version
        self.shared: dict[str, Head] = {}  # model id -> the bundle's own head
        self.override: dict[str, Head] = {}  # model id -> a shared head from a verified update
        self.personal: dict[tuple[str, str], Head] = {}  # (resident, model id) -> chosen head
        for b in bundles:
            self.add_bundle(b)
        self.writer = EmbeddingWriter(db_path)
        self.applied = 0  # windows decided by a personal head
        self.reload()

    def add_bundle(self, bundle: Bundle, *, head: Head | None = None) -> None:
        """Take ``bundle``'s head (or ``head``, read from it before) as its model's shared
        head (again, after a bundle swap); a new body's wearers start without personal heads."""
        head = head if head is not None else shared_head(bundle)
        self.classes[bundle.model_id] = bundle.class_names
        self.version[bundle.model_id] = bundle.model_version
        if head is not None:
            self.shared[bundle.model_id] = head
        else:
            self.shared.pop(bundle.model_id, None)
        self.override.pop(bundle.model_id, None)

    def shared_for(self, model_id: str) -> Head | None:
        return self.override.get(model_id) or self.shared.get(model_id)

    def shared_models(self) -> dict[str, SharedModel]:
        return {
            m: SharedModel(self.shared_for(m) or h, self.classes[m], self.version[m])
            for m, h in self.shared.items()
        }

    def reload(self) -> int:
        """Read the chosen personal heads from the database (after a fit); how many."""
        with PersonalStore(self.db_path) as store:
            stored = store.heads()
        self.personal = {
            (h.resident, h.model_id): Head(h.W, h.b)
            for h in stored
            if h.chosen
            and h.model_id in self.shared
            and h.model_version == self.version[h.model_id]
            and h.W.shape == self.shared[h.model_id].W.shape
        }
        return len(self.personal)

    def on_window(
        self, resident: str, model_id: str, t_start: float, t_end: float, emb: np.ndarray | None
    ) -> np.ndarray | None:
        """Cache ``emb`` and return the window's probabilities from a personal or updated
        shared head, or None (keep the engine's)."""
        if emb is None or model_id not in self.shared:
            return None
        self.writer.submit(
            EmbeddingRow(resident, model_id, self.version[model_id], t_start, t_end, emb)
        )
        head = self.personal.get((resident, model_id))
        if head is not None:
            self.applied += 1
        else:
            head = self.override.get(model_id)
        if head is None:
            return None
        probs: np.ndarray = softmax(head.logits(emb[None]))[0]
        return probs

    def refit(self, *, wearer: str | None = None, only_due: bool = True) -> list[FitResult]:
        """Blocking: fit the wearers that are due (or ``wearer``), then reload the heads."""
        self.writer.flush()
        heads = self.shared_models()
        results = fit_wearers(self.db_path, heads, self.opts, wearer=wearer, only_due=only_due)
        if self.opts.embedding_days > 0:
            with PersonalStore(self.db_path) as store:
                store.prune(time.time() - self.opts.embedding_days * 86400.0)
        self.reload()
        return results

    def health(self) -> dict[str, Any]:
        return {
            "personal_heads": len(self.personal),
            "windows_personal": self.applied,
            "embeddings_written": self.writer.written,
            "embeddings_dropped": self.writer.dropped,
        }

    def close(self, timeout: float = 5.0) -> None:
        self.writer.close(timeout)


def _not_fitted(resident: str, model_id: str, n_labels: int, why: str) -> FitResult:
    """A wearer left on the shared head, and why."""
    return FitResult(resident, model_id, n_labels, False, math.nan, math.nan, 0, why)
