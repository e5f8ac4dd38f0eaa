"""The coordinator's deployed ServerApp: :func:`~edge.fleet.server.run_rounds` from a run config, its report written out.

``edge-fleet serve`` (:mod:`edge.fleet.serve`) starts a run of the Flower App whose
``serverapp`` is :data:`app`; Flower runs it in its own process beside the SuperLink, so
what it learns reaches the operator through files in ``out-dir``: ``results.json``
(rewritten after every round, ``"finished": true`` once all rounds are done) and the final
shared head ``head.npz``, written as a head update for the hubs (``head-update/``, signed
with the run config's ``sign-key`` for the run config's ``bundle``) and sent to every hub
in one last message (:mod:`edge.fleet.delivery`), which puts it in the hub's update folder;
an unsigned update (``edge-fleet serve --no-sign``) stays in ``out-dir``. "Every hub" is
every SuperNode connected to the run at its end: the run waited for them all. Each round is
also logged through Flower's logger, which ``flwr run --stream`` shows the operator. Numpy
and flwr; signing the update needs the host's :mod:`export.head_update` (the coordinator
is a host).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from edge.fleet.delivery import MESSAGE_TYPE, RECORD, update_record
from edge.fleet.options import FleetOptions
from edge.fleet.server import RoundReport, run_rounds
from edge.personal.head import Head

__all__ = [
    "FINAL_HEAD",
    "RESULTS",
    "UPDATE_DIR",
    "app",
    "deliver",
    "options_from_run_config",
    "run_config",
]

RESULTS: Final = "results.json"
FINAL_HEAD: Final = "head.npz"
UPDATE_DIR: Final = "head-update"
# a child of Flower's logger: the ServerApp process streams that one to `flwr run --stream`
log = logging.getLogger("flwr.edge_fleet")


def run_config(
    opts: FleetOptions,
    *,
    hubs: int,
    initial_head: Path,
    out_dir: Path,
    round_timeout: float,
    bundle: Path | None = None,
    sign_key: Path | None = None,
) -> dict[str, Any]:
    """The run config the coordinator's app reads (TOML values: no None, so ε 0 is off, and
    "" no bundle (no head update) or no signing key (unsigned, not sent))."""
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
        "bundle": str(Path(bundle).resolve()) if bundle is not None else "",
        "sign-key": str(Path(sign_key).resolve()) if sign_key is not None else "",
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


def write_update(out: Path, head: Head, bundle_path: Path, sign_key: Path | None) -> Path:
    """The final head as a head update for ``bundle_path``'s body in ``out/UPDATE_DIR``."""
    from edge.bundle import load_bundle
    from export.head_update import write_head_update

    version = "fleet-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return write_head_update(
        out / UPDATE_DIR,
        head.W,
        head.b,
        bundle=load_bundle(bundle_path),
        version=version,
        sign_key=sign_key,
    )


def deliver(grid: Grid, update: Path, timeout: float) -> dict[str, Any]:
    """Send the update folder to every hub connected to the run, in one message each; what
    they replied: ``{"hubs": sent, "written": n, "errors": [one line per hub that did not]}``."""
    record = update_record(update)
    nodes = list(grid.get_node_ids())
    messages = [
        Message(RecordDict({RECORD: record}), dst_node_id=n, message_type=MESSAGE_TYPE)
        for n in nodes
    ]
    written, errors = 0, []
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            errors.append(f"Flower error {reply.error.code}: {reply.error.reason}")
            continue
        got = reply.content.config_records.get(RECORD)
        if got is not None and got.get("written"):
            written += 1
        else:
            errors.append(str(got.get("error", "no reply record") if got else "no reply record"))
    missing = len(nodes) - written - len(errors)
    if missing > 0:
        errors.append(f"{missing} hubs did not reply within {timeout:.0f} s")
    return {"hubs": len(nodes), "written": written, "errors": errors}


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
    if str(cfg.get("bundle", "")):
        doc["head_update"] = _update(grid, out, final, cfg)
    doc["finished"] = len(doc["rounds"]) == opts.rounds
    _write_json(out / RESULTS, doc)


def _update(grid: Grid, out: Path, final: Head, cfg: Any) -> dict[str, Any]:
    key = str(cfg.get("sign-key", ""))
    update = write_update(out, final, Path(str(cfg["bundle"])), Path(key) if key else None)
    doc: dict[str, Any] = {"path": str(update), "signed": bool(key)}
    if not key:
        log.warning("edge-fleet: the head update is unsigned: not sent to the hubs (%s)", update)
        return doc
    doc["delivery"] = sent = deliver(grid, update, float(cfg["round-timeout"]))
    log.info(
        "edge-fleet: head update sent to %d hubs, written by %d", sent["hubs"], sent["written"]
    )
    for line in sent["errors"]:
        log.warning("edge-fleet: head update not written by a hub: %s", line)
    return doc
