"""The coordinator's deployed ServerApp: :func:`~edge.fleet.server.run_rounds` from a run config, its report written out.

``edge-fleet serve`` (:mod:`edge.fleet.serve`) starts a run of the Flower App whose
``serverapp`` is :data:`app`; Flower runs it in its own process beside the SuperLink, so
what it learns reaches the operator through files in ``out-dir``: ``results.json``
(rewritten after every round, ``"finished": true`` once all rounds are done) and the final
shared head ``head.npz``. Each round is also logged through Flower's logger, which
``flwr run --stream`` shows the operator. Numpy and flwr only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Final

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from edge.fleet.options import FleetOptions
from edge.fleet.server import RoundReport, run_rounds
from edge.personal.head import Head

__all__ = ["FINAL_HEAD", "RESULTS", "app", "options_from_run_config", "run_config"]

RESULTS: Final = "results.json"
FINAL_HEAD: Final = "head.npz"
# a child of Flower's logger: the ServerApp process streams that one to `flwr run --stream`
log = logging.getLogger("flwr.edge_fleet")


def run_config(
    opts: FleetOptions, *, hubs: int, initial_head: Path, out_dir: Path, round_timeout: float
) -> dict[str, Any]:
    """The run config the coordinator's app reads (TOML values: no None, so ε 0 is off)."""
    return {
        "rounds": opts.rounds,
        "local-steps": opts.local_steps,
        "lr": opts.lr,
        "l2": opts.l2,
        "prox-mu": opts.prox_mu,
        "dp": opts.dp,
        "dp-epsilon": opts.dp_epsilon or 0.0,
        "dp-delta": opts.dp_delta,
        "clip-norm": opts.clip_norm,
        "seed": opts.seed,
        "hubs": hubs,
        "initial-head": str(Path(initial_head).resolve()),
        "out-dir": str(Path(out_dir).resolve()),
        "round-timeout": round_timeout,
    }


def options_from_run_config(cfg: Any) -> FleetOptions:
    eps = float(cfg["dp-epsilon"])
    return FleetOptions(
        rounds=int(cfg["rounds"]),
        local_steps=int(cfg["local-steps"]),
        lr=float(cfg["lr"]),
        l2=float(cfg["l2"]),
        prox_mu=float(cfg["prox-mu"]),
        dp=str(cfg["dp"]),
        dp_epsilon=eps if eps > 0 else None,
        dp_delta=float(cfg["dp-delta"]),
        clip_norm=float(cfg["clip-norm"]),
        seed=int(cfg["seed"]),
    )


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def _round(r: RoundReport) -> dict[str, Any]:
    return {
        "round": r.round,
        "hubs": r.hubs,  # pseudonyms: the hubs' own names never reach the coordinator
        "epsilon": r.epsilon,
        "bytes_up": r.bytes_up,
        "bytes_down": r.bytes_down,
        "update_norm_median": r.update_norm_median
        if r.update_norm_median == r.update_norm_median
        else None,
    }


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    opts = options_from_run_config(cfg)
    out = Path(str(cfg["out-dir"]))
    hubs = int(cfg["hubs"])
    doc: dict[str, Any] = {
        "finished": False,
        "config": {**opts.to_dict(), "hubs": hubs},
        "rounds": [],
    }
    _write_json(out / RESULTS, doc)

    def on_round(r: RoundReport) -> None:
        doc["rounds"].append(_round(r))
        _write_json(out / RESULTS, doc)
        eps = "" if r.epsilon is None else f", ε {r.epsilon:.2f}"
        log.info(
            "edge-fleet round %d: %d hubs replied, %d B up%s", r.round, len(r.hubs), r.bytes_up, eps
        )

    final = run_rounds(
        grid,
        opts,
        Head.load(Path(str(cfg["initial-head"]))),
        hubs,
        on_round=on_round,
        timeout=float(cfg["round-timeout"]),
    )
    final.save(out / FINAL_HEAD)
    doc["finished"] = len(doc["rounds"]) == opts.rounds
    _write_json(out / RESULTS, doc)
