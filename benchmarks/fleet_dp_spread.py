"""How much one ``edge-fleet simulate --dp-epsilon`` figure owes to its noise draw.

Flower's DP wrapper draws its noise unseeded, so one run is one draw. This replays the
simulation's federation in numpy (:func:`benchmarks.fleet_pilot.replay`: the same hubs,
fits, clipping and noise scale) over many seeded draws and reports, on the simulation's own
later windows, the spread of the shared head's macro-F1 and of the personalization gain,
with and without DP, for the subspace head and the whole head. It chooses nothing.

    nice -n 15 .venv/bin/python -m benchmarks.fleet_dp_spread \\
        --embeddings benchmarks/results/fleet/embeddings.npz --out benchmarks/results/fleet/dp-spread.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fleet_pilot import replay
from edge.fleet.accountant import noise_for_epsilon
from edge.fleet.options import SIMULATE_SUBSPACE, FleetOptions, default_clip_norm
from edge.fleet.residents import Residents
from edge.fleet.simulate import SimulationSetup, _hub_results, _lay_out, shared_basis
from edge.personal.head import Head, macro_f1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--epsilon", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0, help="the simulation's layout seed")
    args = p.parse_args()
    res = Residents.load(args.embeddings)
    setup = SimulationSetup()
    z = noise_for_epsilon(args.epsilon, 3, 1e-5)
    doc: dict[str, Any] = {"epsilon": args.epsilon, "draws": args.draws, "runs": []}
    with tempfile.TemporaryDirectory(prefix="fleet-spread-") as tmp:
        hubs = _lay_out(res, setup, args.seed, Path(tmp))
        later = np.concatenate([h.later_idx for h in hubs])
        train = [(res.emb[h.fit_idx], res.y[h.fit_idx]) for h in hubs]

        def figures(head: Head) -> tuple[float, float]:
            glob = macro_f1(res.y[later], head.predict(res.emb[later]), len(res.class_names))
            per_hub = _hub_results(res, hubs, head, setup, args.seed)
            gain = np.mean([h.personalized_macro_f1 for h in per_hub]) - np.mean(
                [h.baseline_macro_f1 for h in per_hub]
            )
            return glob, float(gain)

        for k in (SIMULATE_SUBSPACE, 0):
            opts = FleetOptions(subspace=k, clip_norm=default_clip_norm(k), seed=args.seed)
            basis = shared_basis(res, opts)
            rng = np.random.default_rng(1000 + k)
            g0, gain0 = figures(replay(res, train, basis, opts, None, rng))
            draws = [figures(replay(res, train, basis, opts, z, rng)) for _ in range(args.draws)]
            g = np.array([d[0] for d in draws])
            gain = np.array([d[1] for d in draws])
            run = {
                "subspace": k,
                "clip_norm": opts.clip_norm,
                "no_dp_global": g0,
                "no_dp_gain": gain0,
                "dp_global_mean": float(g.mean()),
                "dp_global_sd": float(g.std()),
                "dp_global_min": float(g.min()),
                "dp_global_max": float(g.max()),
                "share_within_0.05": float(np.mean(g >= g0 - 0.05)),
                "dp_gain_mean": float(gain.mean()),
                "dp_gain_min": float(gain.min()),
                "share_gain_at_least_0.03": float(np.mean(gain >= 0.03)),
                "share_both": float(np.mean((g >= g0 - 0.05) & (gain >= 0.03))),
            }
            doc["runs"].append(run)
            print(json.dumps(run), flush=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
