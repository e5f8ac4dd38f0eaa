"""A whole federation on one machine: residents dealt to hubs, Flower's simulation runtime,
then each resident's personal head, judged on the windows that came after their labels.

What each figure means (all macro-F1 on the residents' later windows, never on a window a
label was confirmed for or that overlaps one):

- ``rounds[i].global_macro_f1``: the shared head after round i, on every hub's later windows
  pooled (the simulation can look at them all; a real coordinator cannot);
- ``hubs[j].baseline_macro_f1``: the final shared head on hub j's later windows (not personalized);
- ``hubs[j].personalized_macro_f1``: each resident of hub j with the head
  :func:`edge.personal.head.personalize` chose for them (their own when it beat the shared one
  on their newest confirmed labels), on the same windows.

Hub state (pseudonym keys, training files) lives in a temporary folder removed afterwards,
so the pseudonyms in the results cannot be linked back even by whoever ran the simulation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from edge.fleet.options import FleetOptions
from edge.fleet.residents import Residents, assign_hubs, confirm_split
from edge.fleet.server import RoundReport
from edge.fleet.subspace import HeadBasis, SubspaceError, public_basis
from edge.personal.head import Head, macro_f1, personalize

__all__ = ["HubResult", "SimulationSetup", "shared_basis", "simulate"]

log = logging.getLogger(__name__)

HUB_DATA: Final = "train.npz"
# personalization's own settings: stronger pull to the shared head than a federation round
# (a resident has a few hundred labels at most) and the shared head's scale of steps
PERSONAL_FIT: Final[dict[str, Any]] = {"steps": 100, "lr": 0.5, "prox_mu": 0.1}


@dataclass(frozen=True)
class SimulationSetup:
    hubs: int = 4
    label_fraction: float = 0.5  # of each episode, the part a resident confirms
    holdout: float = 0.3  # of a resident's confirmed labels, the newest: judge personal vs shared
    min_labels: int = 20


@dataclass
class HubResult:
    hub: str  # pseudonym
    residents: list[str]  # pseudonyms
    n_confirmed: int
    n_later: int
    baseline_macro_f1: float
    personalized_macro_f1: float
    initial_macro_f1: float  # the student's own head, before any federation
    personal_heads_chosen: int


@dataclass
class _Hub:
    subjects: list[str]
    state_dir: Path
    fit_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    later_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _lay_out(res: Residents, setup: SimulationSetup, seed: int, root: Path) -> list[_Hub]:
    from edge.fleet.client import HUB_ID_FILE
    from edge.fleet.local_data import LocalData

    hubs = []
    for i, subjects in enumerate(assign_hubs(res.subjects, setup.hubs, seed)):
        hub = _Hub(subjects, root / f"hub-{i}")
        hub.state_dir.mkdir(parents=True)
        (hub.state_dir / HUB_ID_FILE).write_text(f"hub-{i}\n")
        fit, later = [], []
        for s in subjects:
            rows = np.flatnonzero(res.subject == s)
            rows = rows[np.argsort(res.start[rows], kind="stable")]
            c, lt = confirm_split(
                res.y[rows],
                res.start[rows],
                fraction=setup.label_fraction,
                window_s=res.window_s,
                hop_s=res.hop_s,
            )
            fit.append(rows[c])
            later.append(rows[lt])
        hub.fit_idx, hub.later_idx = np.concatenate(fit), np.concatenate(later)
        LocalData(
            res.emb[hub.fit_idx],
            res.y[hub.fit_idx],
            res.subject[hub.fit_idx],
            res.start[hub.fit_idx],
        ).save(hub.state_dir / HUB_DATA)
        hubs.append(hub)
    return hubs


@contextlib.contextmanager
def _quiet_runtime() -> Iterator[None]:
    """Flower logs every round at INFO and Ray warns about accelerators it will not use;
    the command draws its own progress."""
    # Ray reads this at start-up; without it it emits a FutureWarning about GPU env vars
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    # a loaded machine (a training run beside us) starts Ray's node slowly; its default wait
    # fails the whole simulation
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")
    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    flwr_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        flwr_log.setLevel(level)


def shared_basis(res: Residents, opts: FleetOptions) -> HeadBasis | None:
    """The public basis hubs train in (``opts.subspace`` > 0): the student's head over the
    principal directions of its own training subjects' embeddings; None for the whole head."""
    if not opts.subspace:
        return None
    if not res.public_emb.shape[0]:
        raise SubspaceError(
            "these embeddings hold no public windows (the student's own subjects) to build "
            "the subspace from; re-embed them (simulate --data) or use --subspace 0"
        )
    return public_basis(Head(res.W, res.b), res.public_emb, opts.subspace)


def _federate(
    res: Residents, hubs: list[_Hub], opts: FleetOptions, *, on_round: Callable[[RoundReport], None]
) -> tuple[Head, list[RoundReport]]:
    from flwr.app import Context
    from flwr.simulation import run_simulation

    from edge.fleet.client import HUB_ID_FILE, make_client_app
    from edge.fleet.dp import local_dp_mod
    from edge.fleet.local_data import LocalData
    from edge.fleet.pseudonym import Pseudonymizer
    from edge.fleet.server import make_server_app

    later = np.concatenate([h.later_idx for h in hubs])
    k = len(res.class_names)

    def evaluate(head: Head) -> float:
        return macro_f1(res.y[later], head.predict(res.emb[later]), k)

    dirs = [str(h.state_dir) for h in hubs]

    def load(context: Context) -> tuple[LocalData, Pseudonymizer, str]:
        state_dir = Path(dirs[int(context.node_config["partition-id"])])
        return (
            LocalData.load(state_dir / HUB_DATA),
            Pseudonymizer.for_state_dir(state_dir),
            (state_dir / HUB_ID_FILE).read_text().strip(),
        )

    reports: list[RoundReport] = []
    final: list[Head] = []

    def round_done(report: RoundReport) -> None:
        reports.append(report)
        on_round(report)

    mod = local_dp_mod(opts)
    server_app: Callable[..., Any] = make_server_app
    client_app: Callable[..., Any] = make_client_app
    if opts.secagg:  # the legacy-path pair that aggregates under SecAgg+ (same signatures)
        from edge.fleet import secagg

        server_app, client_app = secagg.make_server_app, secagg.make_client_app
    basis = shared_basis(res, opts)
    server = server_app(
        opts,
        Head(res.W, res.b),
        len(hubs),
        evaluate=evaluate,
        on_round=round_done,
        on_done=final.append,
        **({"basis": basis} if basis is not None else {}),
    )
    client = client_app(load, mods=[mod] if mod is not None else [])
    with _quiet_runtime():
        run_simulation(
            server_app=server,
            client_app=client,
            num_supernodes=len(hubs),
            backend_config={
                # one CPU: a care home's hubs train in turn here, which changes no figure
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {
                    "num_cpus": 1,
                    "include_dashboard": False,
                    "log_to_driver": False,
                },
            },
        )
    if not final or len(reports) != opts.rounds:
        raise RuntimeError(
            f"the federation stopped after {len(reports)} of {opts.rounds} "
            "rounds; Flower's log above says why"
        )
    return final[0], reports


def _hub_results(
    res: Residents, hubs: list[_Hub], shared: Head, setup: SimulationSetup, seed: int
) -> list[HubResult]:
    from edge.fleet.pseudonym import Pseudonymizer

    k = len(res.class_names)
    start = Head(res.W, res.b)
    out = []
    for i, hub in enumerate(hubs):
        names = Pseudonymizer.for_state_dir(hub.state_dir)
        y_true, y_base, y_pers, y_init = [], [], [], []
        chosen = 0
        for s in hub.subjects:
            fit = hub.fit_idx[res.subject[hub.fit_idx] == s]
            later = hub.later_idx[res.subject[hub.later_idx] == s]
            p = personalize(
                shared,
                res.emb[fit],
                res.y[fit],
                holdout=setup.holdout,
                min_labels=setup.min_labels,
                seed=seed,
                **PERSONAL_FIT,
            )
            chosen += int(p.chosen)
            x = res.emb[later]
            y_true.append(res.y[later])
            y_base.append(shared.predict(x))
            y_pers.append(p.head.predict(x))
            y_init.append(start.predict(x))
        t = np.concatenate(y_true)
        out.append(
            HubResult(
                hub=names.hub(f"hub-{i}"),
                residents=[names.wearer(s) for s in hub.subjects],
                n_confirmed=int(hub.fit_idx.size),
                n_later=int(t.size),
                baseline_macro_f1=macro_f1(t, np.concatenate(y_base), k),
                personalized_macro_f1=macro_f1(t, np.concatenate(y_pers), k),
                initial_macro_f1=macro_f1(t, np.concatenate(y_init), k),
                personal_heads_chosen=chosen,
            )
        )
    return out


def simulate(
    res: Residents,
    opts: FleetOptions,
    setup: SimulationSetup = SimulationSetup(),
    *,
    on_round: Callable[[RoundReport], None] = lambda r: None,
) -> dict[str, Any]:
    """Run the federation and personalization; the results as plain values (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="edge-fleet-hubs-") as tmp:
        hubs = _lay_out(res, setup, opts.seed, Path(tmp))
        start = Head(res.W, res.b)
        later = np.concatenate([h.later_idx for h in hubs])
        initial_f1 = macro_f1(res.y[later], start.predict(res.emb[later]), len(res.class_names))
        shared, reports = _federate(res, hubs, opts, on_round=on_round)
        hub_results = _hub_results(res, hubs, shared, setup, opts.seed)
    base = [h.baseline_macro_f1 for h in hub_results]
    pers = [h.personalized_macro_f1 for h in hub_results]
    return {
        "initial_macro_f1": initial_f1,
        "rounds": [
            {
                "round": r.round,
                "global_macro_f1": r.global_macro_f1,
                "epsilon": r.epsilon,
                "bytes_up": r.bytes_up,
                "bytes_down": r.bytes_down,
                "update_norm_median": r.update_norm_median,
                "hubs_replied": len(r.hubs),
            }
            for r in reports
        ],
        "hubs": [vars(h) for h in hub_results],
        "summary": {
            "final_global_macro_f1": reports[-1].global_macro_f1,
            "final_epsilon": reports[-1].epsilon,
            "mean_baseline_macro_f1": float(np.mean(base)),
            "mean_personalized_macro_f1": float(np.mean(pers)),
            "personalization_gain": float(np.mean(pers) - np.mean(base)),
            "bytes_up_per_round": float(np.mean([r.bytes_up for r in reports])),
            "residents": int(sum(len(h.residents) for h in hub_results)),
            "later_windows": int(later.size),
        },
        "layout": {
            "pretrain_subjects": list(res.pretrain_subjects),
            "embedding_dim": int(res.emb.shape[1]),
            "class_names": list(res.class_names),
            # what one hub's update is made of: the numbers DP clips and noises
            "numbers_sent_per_hub": (
                opts.subspace * len(res.class_names)
                if opts.subspace
                else int(res.W.size + res.b.size)
            ),
            "public_windows": int(res.public_emb.shape[0]),
        },
    }
