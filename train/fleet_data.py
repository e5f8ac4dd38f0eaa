"""A federation's simulated residents: WESAD-format subjects → student embeddings and a head.

The simulation (``edge-fleet simulate``) needs what a hub would hold: each resident's window
embeddings from the bundle's frozen student, and the student's classifier as the shared head
to start from. Here the student is pretrained on subjects that are in no hub (the
``pretrain`` subjects), so no embedding comes from a model that saw a resident's windows,
confirmed or evaluated; the hubs' residents are only ever embedded. A training run's
``student.pt`` would not do: the demo run trains its student on every subject.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch

from edge.fleet.residents import Residents
from train.budget import Budget
from train.data import load_wesad
from train.errors import TrainError
from train.loop import predict, train_classifier
from train.models import Student, StudentConfig
from train.progress import ProgressFn, no_progress

__all__ = ["WRIST", "embed_subjects"]

log = logging.getLogger(__name__)

WRIST: Final = ("bvp", "eda", "temp", "acc")  # what a resident's wristband gives a hub


def embed_subjects(
    root: Path,
    *,
    pretrain: int = 2,
    steps: int = 300,
    seed: int = 0,
    modalities: Sequence[str] = WRIST,
    progress: ProgressFn = no_progress,
) -> Residents:
    """Load ``root`` (WESAD format), pretrain a student on ``pretrain`` subjects chosen by
    ``seed`` for ``steps`` steps, and embed every other subject's windows with it."""
    ds = load_wesad(root, "3class", modalities=list(modalities), progress=progress)
    subjects = sorted(ds.subjects, key=lambda s: (len(s), s))
    if len(subjects) <= pretrain:
        raise TrainError(
            f"{root}: {len(subjects)} subjects; {pretrain} pretrain the student, "
            "so at least one more is needed for a hub"
        )
    rng = np.random.default_rng(seed)
    held = tuple(
        sorted(
            (subjects[i] for i in rng.permutation(len(subjects))[:pretrain]),
            key=lambda s: (len(s), s),
        )
    )
    X = ds.pack(list(modalities))
    contract = ds.contract_for(list(modalities))
    fit_idx = np.flatnonzero(np.isin(ds.groups, held))
    res_idx = np.flatnonzero(~np.isin(ds.groups, held))
    torch.manual_seed(seed)
    model = Student(StudentConfig.from_contract(contract, list(modalities)))
    budget = Budget(
        batch_size=32, lr=1e-3, max_steps=steps, eval_every=steps, patience=1, min_steps=steps
    )
    train_classifier(
        model,
        X,
        ds.y,
        fit_idx,
        budget,
        weight_decay=0.05,
        n_classes=len(ds.class_names),
        seed=seed,
        progress=progress,
        name="pretrain student",
    )
    _, emb = predict(model, X, res_idx, features=True)
    _, public = predict(model, X, fit_idx, features=True)  # the coordinator's own subjects
    assert emb is not None and public is not None
    log.info("student pretrained on %s; %d resident windows embedded", held, len(res_idx))
    head = model.head
    return Residents(
        emb=emb.astype(np.float32),
        y=ds.y[res_idx].astype(np.int64),
        subject=ds.groups[res_idx].astype(str),
        start=ds.start[res_idx].astype(np.float64),
        W=head.weight.detach().numpy().T.astype(np.float32).copy(),
        b=head.bias.detach().numpy().astype(np.float32).copy(),
        class_names=tuple(ds.class_names),
        pretrain_subjects=held,
        window_s=contract.window_s,
        hop_s=contract.hop_s,
        public_emb=public.astype(np.float32),
    )
