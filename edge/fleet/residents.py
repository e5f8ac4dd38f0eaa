"""A simulated care home's residents: embedded windows, who lives at which hub, and which
windows a resident confirmed (the labels a hub trains on) and which come later (to judge on).

Numpy only. The embeddings come from the host (:mod:`train.fleet_data`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import EdgeError

__all__ = ["Residents", "ResidentsError", "assign_hubs", "confirm_split"]


class ResidentsError(EdgeError):
    """Residents cannot be laid out as asked (too few for the hubs, a bad file)."""


@dataclass
class Residents:
    """Embedded windows of the residents, in time order per resident, and the shared head."""

    emb: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int64
    subject: np.ndarray  # (N,) str the resident
    start: np.ndarray  # (N,) float64 seconds
    W: np.ndarray  # (D, K) the student's classifier: the shared head federation starts from
    b: np.ndarray  # (K,)
    class_names: tuple[str, ...]
    pretrain_subjects: tuple[str, ...]  # who the student learned from (in no hub)
    window_s: float
    hop_s: float
    # the pretraining subjects' own windows, embedded: public to the coordinator (it trained
    # the student on them), never in a hub; none in files written before they were kept
    public_emb: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __post_init__(self) -> None:
        if not self.public_emb.size:
            self.public_emb = np.zeros((0, self.emb.shape[1]), np.float32)

    @property
    def subjects(self) -> list[str]:
        return sorted(set(self.subject.tolist()), key=lambda s: (len(s), s))

    def save(self, path: Path) -> None:
        np.savez(
            path,
            emb=self.emb,
            y=self.y,
            subject=self.subject.astype(str),
            start=self.start,
            W=self.W,
            b=self.b,
            class_names=np.array(self.class_names),
            pretrain=np.array(self.pretrain_subjects),
            timing=np.array([self.window_s, self.hop_s]),
            public_emb=self.public_emb,
        )

    @classmethod
    def load(cls, path: Path) -> Residents:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    z["emb"].astype(np.float32),
                    z["y"].astype(np.int64),
                    z["subject"].astype(str),
                    z["start"].astype(np.float64),
                    z["W"].astype(np.float32),
                    z["b"].astype(np.float32),
                    tuple(z["class_names"].tolist()),
                    tuple(z["pretrain"].tolist()),
                    float(z["timing"][0]),
                    float(z["timing"][1]),
                    z["public_emb"].astype(np.float32)
                    if "public_emb" in z.files
                    else np.zeros((0, 0), np.float32),
                )
        except (OSError, KeyError, ValueError, EOFError) as e:
            raise ResidentsError(
                f"{path}: not a residents embeddings file ({type(e).__name__}: {e})"
            ) from e


def assign_hubs(subjects: list[str], n_hubs: int, seed: int) -> list[list[str]]:
    """Residents dealt to ``n_hubs`` hubs in a seeded random order (sizes differ by at most one)."""
    if n_hubs < 1:
        raise ResidentsError(f"a federation needs at least one hub, got {n_hubs}")
    if len(subjects) < n_hubs:
        raise ResidentsError(
            f"{len(subjects)} residents cannot fill {n_hubs} hubs; use fewer hubs or more subjects"
        )
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    hubs: list[list[str]] = [[] for _ in range(n_hubs)]
    for i, s in enumerate(order):
        hubs[i % n_hubs].append(s)
    return [sorted(h, key=lambda s: (len(s), s)) for h in hubs]


def confirm_split(
    y: np.ndarray, start: np.ndarray, *, fraction: float, window_s: float, hop_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed, later) boolean masks over one resident's time-ordered windows.

    Each episode (a run of one state in consecutive windows) is cut in time order: its first
    ``fraction`` is what the resident confirmed, then windows that overlap the last confirmed
    one are skipped (a window shares no sample with a confirmed one), and the rest is later.
    Cutting every episode, not the whole record, matters because a session's states come in
    blocks: a single cut would leave whole states unconfirmed or never judged."""
    if not 0.0 < fraction < 1.0:
        raise ResidentsError(f"the confirmed fraction must be in (0, 1), got {fraction}")
    n = y.shape[0]
    confirmed = np.zeros(n, bool)
    later = np.zeros(n, bool)
    gap = max(0, math.ceil(window_s / hop_s) - 1)  # windows that overlap a given one, after it
    i = 0
    while i < n:
        j = i + 1
        while j < n and y[j] == y[i] and abs(start[j] - start[j - 1] - hop_s) < 1e-6:
            j += 1
        k = math.floor(fraction * (j - i))
        confirmed[i : i + k] = True
        later[min(j, i + k + gap) : j] = True
        i = j
    return confirmed, later
