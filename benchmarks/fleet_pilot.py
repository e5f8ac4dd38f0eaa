"""Pick the subspace width and clip norm of ``edge-fleet simulate`` on confirmed windows only.

The figures ``edge-fleet simulate`` reports are measured on each resident's *later* windows;
choosing settings on those would flatter them. This pilot never looks at a later window: it
lays the residents out as the simulation does (same seed), keeps only the windows each
resident confirmed, and, for each hub in turn, federates the other hubs on theirs and
judges the shared head on the confirmed windows of the one left out: how well the head
serves residents it never saw, which is what a care home's shared head is for. The
federation is replayed in numpy (each hub's fit, clipping to ``C``, the mean, Gaussian noise
of ``z·C/n`` as Flower's central DP wrapper adds it) over several noise draws, for every
subspace width ``k`` (0 = the whole head) and clip norm ``C`` of a grid.

    nice -n 15 .venv/bin/python -m benchmarks.fleet_pilot \\
        --embeddings benchmarks/results/fleet/embeddings.npz --out benchmarks/results/fleet/pilot.json

It writes every cell (mean and worst macro-F1 over the draws with DP, and without) and the
choice: the cell with the best mean macro-F1 under DP.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edge.fleet.accountant import noise_for_epsilon
from edge.fleet.options import FleetOptions
from edge.fleet.residents import Residents, assign_hubs, confirm_split
from edge.fleet.subspace import HeadBasis, public_basis
from edge.personal.head import Head, fit_head, macro_f1

LABEL_FRACTION = 0.5  # the simulation's default: of each episode, the part confirmed


def confirmed_by_hub(res: Residents, hubs: int, seed: int) -> list[np.ndarray]:
    """Each hub's confirmed rows, laid out as the simulation lays them (same seed)."""
    out = []
    for subjects in assign_hubs(res.subjects, hubs, seed):
        rows_hub = []
        for s in subjects:
            rows = np.flatnonzero(res.subject == s)
            rows = rows[np.argsort(res.start[rows], kind="stable")]
            confirmed, _ = confirm_split(
                res.y[rows],
                res.start[rows],
                fraction=LABEL_FRACTION,
                window_s=res.window_s,
                hop_s=res.hop_s,
            )
            rows_hub.append(rows[confirmed])
        out.append(np.concatenate(rows_hub))
    return out


def replay(
    res: Residents,
    train: list[tuple[np.ndarray, np.ndarray]],
    basis: HeadBasis | None,
    opts: FleetOptions,
    z: float | None,
    rng: np.random.Generator,
) -> Head:
    """The federation's rounds in numpy: central DP with fixed clipping when ``z`` is given."""
    head = Head(res.W, res.b)
    theta = [basis.zero()] if basis is not None else head.to_arrays()
    for _ in range(opts.rounds):
        updates = []
        for emb, y in train:
            if basis is not None:
                new = [basis.fit(theta[0], emb, y, steps=opts.local_steps, lr=opts.lr, l2=opts.l2)]
            else:
                h = fit_head(
                    Head.from_arrays(theta), emb, y, steps=opts.local_steps, lr=opts.lr, l2=opts.l2
                )
                new = h.to_arrays()
            u = np.concatenate([(a - b).ravel() for a, b in zip(new, theta, strict=True)])
            if z is not None:
                u = u * min(1.0, opts.clip_norm / max(float(np.linalg.norm(u)), 1e-12))
            updates.append(u)
        mean = np.mean(updates, axis=0)
        if z is not None:
            mean = mean + rng.normal(0.0, z * opts.clip_norm / len(train), mean.shape)
        out, i = [], 0
        for a in theta:
            out.append(a + mean[i : i + a.size].reshape(a.shape).astype(np.float32))
            i += a.size
        theta = out
    return basis.head(theta[0]) if basis is not None else Head.from_arrays(theta)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--hubs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epsilon", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=20, help="noise draws per cell")
    p.add_argument("--k", type=int, nargs="+", default=[0, 2, 3, 4, 6, 8])
    p.add_argument("--clip", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0, 4.0, 6.0])
    args = p.parse_args()
    res = Residents.load(args.embeddings)
    by_hub = confirmed_by_hub(res, args.hubs, args.seed)
    n_classes = len(res.class_names)
    # one hub judges, the others federate: the noise of a federation of hubs - 1
    z = noise_for_epsilon(args.epsilon, args.rounds, 1e-5)

    def score(head: Head, rows: np.ndarray) -> float:
        return macro_f1(res.y[rows], head.predict(res.emb[rows]), n_classes)

    def folds(basis: HeadBasis | None, opts: FleetOptions, dp: bool, rng: Any) -> float:
        f1 = []
        for j, judge in enumerate(by_hub):
            train = [(res.emb[r], res.y[r]) for i, r in enumerate(by_hub) if i != j]
            f1.append(score(replay(res, train, basis, opts, z if dp else None, rng), judge))
        return float(np.mean(f1))

    cells: list[dict[str, Any]] = []
    for k in args.k:
        basis = public_basis(Head(res.W, res.b), res.public_emb, k) if k else None
        base = FleetOptions(rounds=args.rounds, subspace=k)
        no_dp = folds(basis, base, False, None)
        for clip in args.clip:
            opts = FleetOptions(rounds=args.rounds, subspace=k, clip_norm=clip)
            rng = np.random.default_rng(args.seed)
            f1 = [folds(basis, opts, True, rng) for _ in range(args.draws)]
            cell = {
                "subspace": k,
                "clip_norm": clip,
                "no_dp": no_dp,
                "dp_mean": float(np.mean(f1)),
                "dp_worst": float(np.min(f1)),
                "dp_std": float(np.std(f1)),
            }
            cells.append(cell)
            print(
                f"k {k:2d}  C {clip:4.1f}  no DP {no_dp:.3f}  DP mean {cell['dp_mean']:.3f}  "
                f"worst {cell['dp_worst']:.3f}",
                flush=True,
            )
    best = max(cells, key=lambda c: c["dp_mean"])
    print(f"chosen: subspace {best['subspace']}, clip norm {best['clip_norm']}")
    doc = {
        "what": "macro-F1 of the shared head federated by all hubs but one on the confirmed "
        "windows of the one left out, averaged over the hubs (never a later window)",
        "hubs": args.hubs,
        "rounds": args.rounds,
        "epsilon": args.epsilon,
        "delta": 1e-5,
        "noise_multiplier": z,
        "draws": args.draws,
        "seed": args.seed,
        "embeddings": str(args.embeddings),
        "cells": cells,
        "chosen": best,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
