"""What SecAgg+ costs the federation: the shared head per round against plain FedAvg, and bytes.

Runs the same care home twice on Flower's simulation runtime (same embeddings, seed, hubs and
rounds; the whole head, no DP): plain FedAvg (:mod:`edge.fleet.server`) and SecAgg+
(:mod:`edge.fleet.secagg`). Per round it writes the largest difference of any head value
between the two runs, the bound :func:`edge.fleet.secagg.quantization_tolerance` gives for
one round's aggregate, the global macro-F1 of each, and the bytes each moved.

    nice -n 15 .venv/bin/python -m benchmarks.fleet_secagg \\
        --embeddings benchmarks/results/fleet/embeddings.npz --hubs 4 --rounds 3 \\
        --out benchmarks/results/fleet/secagg/vs-plain.json

Round 1 starts both runs from the same head, so its difference is SecAgg+'s quantization alone;
later rounds also carry the earlier rounds' differences forward.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge.fleet import secagg, server
from edge.fleet.client import HUB_ID_FILE, make_client_app
from edge.fleet.local_data import LocalData
from edge.fleet.options import FleetOptions
from edge.fleet.pseudonym import Pseudonymizer
from edge.fleet.residents import Residents
from edge.fleet.simulate import HUB_DATA, SimulationSetup, _lay_out, _quiet_runtime
from edge.personal.head import Head, macro_f1


def _run(
    res: Residents, dirs: list[Path], later: np.ndarray, opts: FleetOptions, secure: bool
) -> tuple[list[list[np.ndarray]], list[server.RoundReport]]:
    from flwr.app import Context
    from flwr.simulation import run_simulation

    heads: list[list[np.ndarray]] = []
    reports: list[server.RoundReport] = []

    def evaluate(head: Head) -> float:
        heads.append(head.to_arrays())
        return macro_f1(res.y[later], head.predict(res.emb[later]), len(res.class_names))

    def load(context: Context) -> tuple[LocalData, Pseudonymizer, str]:
        d = dirs[int(context.node_config["partition-id"])]
        hub_id = (d / HUB_ID_FILE).read_text().strip()
        return LocalData.load(d / HUB_DATA), Pseudonymizer.for_state_dir(d), hub_id

    apps = (
        (secagg.make_server_app, secagg.make_client_app)
        if secure
        else (
            server.make_server_app,
            make_client_app,
        )
    )
    server_app = apps[0](
        opts, Head(res.W, res.b), len(dirs), evaluate=evaluate, on_round=reports.append
    )
    with _quiet_runtime():
        run_simulation(
            server_app=server_app,
            client_app=apps[1](load),
            num_supernodes=len(dirs),
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"num_cpus": 1, "include_dashboard": False, "log_to_driver": False},
            },
        )
    return heads, reports


def compare(embeddings: Path, hubs: int, rounds: int, seed: int) -> dict[str, Any]:
    res = Residents.load(embeddings)
    opts = FleetOptions(rounds=rounds, seed=seed)
    with tempfile.TemporaryDirectory(prefix="fleet-secagg-") as tmp:
        laid = _lay_out(res, SimulationSetup(hubs=hubs), seed, Path(tmp))
        later = np.concatenate([h.later_idx for h in laid])
        dirs = [h.state_dir for h in laid]
        weights = [float(len(LocalData.load(d / HUB_DATA))) for d in dirs]
        plain_heads, plain = _run(res, dirs, later, opts, secure=False)
        sa_heads, sa = _run(res, dirs, later, opts, secure=True)
    rows = []
    for i in range(rounds):
        largest = max(float(np.abs(a).max()) for a in plain_heads[i])
        rows.append(
            {
                "round": i + 1,
                "max_abs_head_difference": max(
                    float(np.abs(a - b).max())
                    for a, b in zip(plain_heads[i], sa_heads[i], strict=True)
                ),
                "one_round_bound": secagg.quantization_tolerance(weights, largest),
                "max_abs_head_value": largest,
                "plain_global_macro_f1": plain[i].global_macro_f1,
                "secagg_global_macro_f1": sa[i].global_macro_f1,
                "plain_bytes_up": plain[i].bytes_up,
                "secagg_bytes_up": sa[i].bytes_up,
                "plain_bytes_down": plain[i].bytes_down,
                "secagg_bytes_down": sa[i].bytes_down,
            }
        )
    return {
        "embeddings": str(embeddings),
        "hubs": hubs,
        "rounds": rounds,
        "seed": seed,
        "hub_weights": weights,
        "secagg_options": vars(secagg.SecAggOptions()),
        "per_round": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--hubs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    result = compare(args.embeddings, args.hubs, args.rounds, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
