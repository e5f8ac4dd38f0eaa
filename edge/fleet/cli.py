"""``edge-fleet``: a care home's hubs learning the shared head together, data staying home.

    edge-fleet simulate --hubs 4 --rounds 3 [--dp-epsilon 8] [--seed 0] --out DIR
    edge-fleet serve --bundle DIR --hubs N --out DIR [--rounds R] [--dp-epsilon E] [TLS]
    edge-fleet join --superlink HOST:9092 --data HUB.npz --state-dir DIR [TLS]

``simulate`` is a host command (it embeds WESAD-format windows with a torch student);
``serve`` runs a care home's coordinator (a host: it signs the head update it writes);
``join`` runs a hub's side of a real federation (numpy and flwr only).

Exit status: 0 done, 1 the federation failed, 2 the input was refused (one line says why).
"""

# ruff: noqa: T201 - a command line prints its results and errors (library code logs)
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["build_parser", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INPUT: Final = 2

_EPILOG = """\
examples:
  edge-fleet simulate --hubs 4 --rounds 3 --out runs/fleet
        4 hubs of 2 residents each (runs/demo-data: `edge-train synth --subjects 10 --seed 7`)
  edge-fleet simulate --hubs 4 --rounds 3 --dp-epsilon 8 --out runs/fleet-dp
        the same with central differential privacy at ε = 8 (δ = 1e-5), and its no-DP twin
  edge-fleet simulate --embeddings runs/fleet/embeddings.npz --hubs 4 --rounds 3 --out runs/f2
        reuse the embedded windows of an earlier run (no torch needed)

The simulation's figures are macro-F1 on each resident's later windows (never a window they
confirmed a label for, nor one overlapping it); results.json says how each is computed.
"""

_SERVE_EPILOG = """\
example (the coordinator; each hub then runs `edge-daemon --fleet https://HOST:9092`):
  edge-fleet serve --bundle bundles/student --hubs 6 --rounds 3 --dp-epsilon 8 \\
      --ssl-ca-certfile ca.pem --ssl-certfile coordinator.pem --ssl-keyfile coordinator.key \\
      --out runs/fleet-2026-12

It waits for the hubs, runs the rounds, writes results.json and a signed head update
(head-update/) for the hubs, then stops. Logs: superlink.log, run.log in --out.
"""


def _add_fed(p: argparse.ArgumentParser) -> None:
    from edge.fleet.options import SUBSPACE_CLIP_NORM, WHOLE_HEAD_CLIP_NORM

    g = p.add_argument_group("federation")
    g.add_argument("--rounds", type=int, default=3, help="federated rounds (default 3)")
    g.add_argument(
        "--local-steps",
        type=int,
        default=100,
        help="descent steps a hub takes on its labels per round (default 100)",
    )
    g.add_argument(
        "--prox-mu", type=float, default=0.0, help="FedProx's proximal weight; 0 = FedAvg (default)"
    )
    g.add_argument(
        "--dp-epsilon",
        type=float,
        default=None,
        help="differential privacy: the ε all rounds may spend (noise is calibrated "
        "to it); off by default",
    )
    g.add_argument(
        "--dp",
        choices=("central", "local"),
        default="central",
        help="with --dp-epsilon: noise added by the coordinator to the average "
        "(central, default) or by each hub to its update (local)",
    )
    g.add_argument("--dp-delta", type=float, default=1e-5, help="δ of the account (1e-5)")
    g.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        help="L2 bound of one hub's update under DP (default "
        f"{WHOLE_HEAD_CLIP_NORM:g} for the whole head, {SUBSPACE_CLIP_NORM:g} in a --subspace)",
    )
    g.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    from edge.fleet.options import SIMULATE_SUBSPACE

    p = argparse.ArgumentParser(
        prog="edge-fleet",
        description="Federated fine-tuning of the student's head across a care home's hubs "
        "(Flower); only model updates leave a hub.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "simulate",
        help="a whole federation on this machine, offline",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = s.add_mutually_exclusive_group()
    src.add_argument(
        "--data",
        type=Path,
        default=Path("runs/demo-data"),
        help="WESAD-format subjects (S*/S*.pkl); default runs/demo-data",
    )
    src.add_argument(
        "--embeddings", type=Path, help="embeddings.npz of an earlier simulate (skips the student)"
    )
    s.add_argument("--hubs", type=int, default=4, help="hubs in the care home (default 4)")
    s.add_argument(
        "--pretrain-subjects",
        type=int,
        default=2,
        help="subjects the student learns from; they live in no hub (default 2)",
    )
    s.add_argument(
        "--pretrain-steps", type=int, default=300, help="the student's training steps (default 300)"
    )
    s.add_argument(
        "--label-fraction",
        type=float,
        default=0.5,
        help="of each episode, the earlier part a resident confirms (default 0.5)",
    )
    s.add_argument("--out", type=Path, required=True, help="folder for results.json and plots")
    s.add_argument("--force", action="store_true", help="replace --out if it holds files")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_fed(s)
    s.add_argument(
        "--subspace",
        type=int,
        default=None,
        metavar="K",
        help="hubs train and send the head's update in K public directions (the student's "
        "own subjects' principal ones), so DP noise falls on K x classes numbers; 0 = the "
        f"whole head (default {SIMULATE_SUBSPACE}; 0 with --secagg)",
    )
    s.add_argument(
        "--secagg",
        action="store_true",
        help="secure aggregation (SecAgg+): the coordinator sees only the sum of the hubs' "
        "heads, never one hub's; with --dp-epsilon each hub clips its update and the "
        "coordinator noises the sum (central DP only)",
    )

    from edge.fleet.deploy import add_join_arguments
    from edge.fleet.serve import add_serve_arguments

    c = sub.add_parser(
        "serve",
        help="run a care home's coordinator (Flower SuperLink and the rounds)",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_serve_arguments(c)
    _add_fed(c)
    j = sub.add_parser("join", help="join this hub to a care home's coordinator (SuperNode)")
    add_join_arguments(j)
    return p


def _options(args: argparse.Namespace) -> Any:
    from edge.fleet.options import SIMULATE_SUBSPACE, FleetOptions, default_clip_norm

    secagg = getattr(args, "secagg", False)  # simulate only
    subspace = getattr(args, "subspace", None)  # simulate only: serve ships the whole head
    if subspace is None:
        subspace = SIMULATE_SUBSPACE if args.command == "simulate" and not secagg else 0

    return FleetOptions(
        rounds=args.rounds,
        local_steps=args.local_steps,
        prox_mu=args.prox_mu,
        dp=args.dp if args.dp_epsilon is not None else "none",
        dp_epsilon=args.dp_epsilon,
        dp_delta=args.dp_delta,
        clip_norm=args.clip_norm if args.clip_norm is not None else default_clip_norm(subspace),
        subspace=subspace,
        seed=args.seed,
        secagg=secagg,
    )


def _clean(x: Any) -> Any:
    """JSON without NaN: a figure that could not be computed is null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _residents(args: argparse.Namespace, console: Any, show: bool) -> Any:
    from edge.fleet.residents import Residents

    if args.embeddings is not None:
        return Residents.load(args.embeddings)
    try:
        from train.fleet_data import embed_subjects  # the one host import: torch embeds here
    except ImportError as e:
        raise SystemExit(
            f"edge-fleet: simulate --data needs the host install (torch): {e}; "
            "or pass --embeddings FILE"
        ) from e
    from rich.progress import Progress

    with Progress(console=console, disable=not show, transient=True) as bars:
        tasks: dict[str, Any] = {}

        def progress(ev: Any) -> None:
            if ev.task not in tasks:
                tasks[ev.task] = bars.add_task(ev.description, total=ev.total)
            bars.update(
                tasks[ev.task], completed=ev.done, total=ev.total, description=ev.description
            )

        fd = embed_subjects(
            args.data,
            pretrain=args.pretrain_subjects,
            steps=args.pretrain_steps,
            seed=args.seed,
            progress=progress,
        )
    return fd


def _simulate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from dataclasses import replace

    from rich.console import Console

    from core.outdir import fresh_output_dir
    from edge.fleet.plots import PlotUnavailable, plot_hubs, plot_rounds
    from edge.fleet.simulate import SimulationSetup, simulate

    console = Console(stderr=True)
    show = not args.no_progress
    opts = _options(args)
    setup = SimulationSetup(hubs=args.hubs, label_fraction=args.label_fraction)
    with fresh_output_dir(args.out, force=args.force) as out:
        out.mkdir(parents=True, exist_ok=True)
        res = _residents(args, console, show)
        if args.embeddings is None:  # to rerun without torch (--embeddings)
            res.save(out / "embeddings.npz")

        def run(o: Any, what: str) -> dict[str, Any]:
            from rich.progress import Progress

            with Progress(console=console, disable=not show, transient=True) as bars:
                task = bars.add_task(f"{what}: federating", total=o.rounds)

                def on_round(r: Any) -> None:
                    bars.update(task, completed=r.round)
                    eps = "" if r.epsilon is None else f"  ε {r.epsilon:.2f}"
                    console.print(
                        f"{what} round {r.round}: global macro-F1 "
                        f"{r.global_macro_f1:.3f}  up {r.bytes_up} B{eps}"
                    )

                return simulate(res, o, setup, on_round=on_round)

        result = run(opts, "DP" if opts.dp != "none" else "no DP")
        twin = (
            run(replace(opts, dp="none", dp_epsilon=None), "no-DP twin")
            if opts.dp != "none"
            else None
        )
        result = {
            "command": "edge-fleet " + " ".join(shlex.quote(a) for a in argv),
            "config": {
                **opts.to_dict(),
                "hubs": setup.hubs,
                "label_fraction": setup.label_fraction,
                "holdout": setup.holdout,
                "min_labels": setup.min_labels,
                "data": str(args.embeddings or args.data),
                "pretrain_subjects": args.pretrain_subjects,
                "pretrain_steps": args.pretrain_steps,
            },
            **result,
        }
        if opts.dp != "none":
            from edge.fleet.dp import noise_multiplier

            result["dp"] = {
                "mode": opts.dp,
                "epsilon_target": opts.dp_epsilon,
                "delta": opts.dp_delta,
                "noise_multiplier": noise_multiplier(opts),
                "clip_norm": opts.clip_norm,
                "accounting": "Rényi DP of the Gaussian mechanism, every hub in every round "
                "(no subsampling amplification), client-level (add/remove one "
                "hub), converted to (ε, δ) by Balle et al. 2020; "
                "edge/fleet/accountant.py",
            }
        if twin is not None:
            result["no_dp_twin"] = {
                k: twin[k] for k in ("initial_macro_f1", "rounds", "hubs", "summary")
            }
            result["summary"]["global_macro_f1_drop_vs_no_dp"] = (
                twin["summary"]["final_global_macro_f1"]
                - result["summary"]["final_global_macro_f1"]
            )
        (out / "results.json").write_text(json.dumps(_clean(result), indent=2) + "\n")
        title = f"{setup.hubs} hubs, {opts.rounds} rounds, " + (
            f"{opts.dp} DP ε ≤ {opts.dp_epsilon:g}" if opts.dp != "none" else "no DP"
        )
        try:
            plot_rounds(out / "rounds.png", result, twin, title)
            plot_hubs(out / "hubs.png", result, title)
        except PlotUnavailable as e:
            print(f"edge-fleet: {e} (results.json is written)", file=sys.stderr)
    s = result["summary"]
    print(
        f"global macro-F1 {s['final_global_macro_f1']:.3f}; per hub: shared "
        f"{s['mean_baseline_macro_f1']:.3f}, personalized {s['mean_personalized_macro_f1']:.3f}"
        f" ({s['personalization_gain']:+.3f}); {s['bytes_up_per_round']:.0f} B up per round"
        + (f"; ε {s['final_epsilon']:.2f}" if s["final_epsilon"] is not None else "")
    )
    print(f"wrote {args.out}/results.json, rounds.png, hubs.png", file=sys.stderr)
    return EXIT_OK


def _serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from edge.fleet.serve import serve

    result = serve(
        args,
        _options(args),
        list(argv),
        on_line=lambda s: print(f"edge-fleet: {s}", file=sys.stderr),
    )
    print(f"edge-fleet: {result.message}", file=sys.stderr)
    if result.code == EXIT_OK:
        print(f"wrote {args.out}/results.json, {args.out}/head-update/", file=sys.stderr)
    return result.code


def main(argv: Sequence[str] | None = None) -> int:
    from core.errors import WearableEdgeError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args, argv)
        if args.command == "serve":
            return _serve(args, argv)
        from edge.fleet import deploy

        return deploy.join(args)
    except WearableEdgeError as e:
        print(f"edge-fleet: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"edge-fleet: {e}", file=sys.stderr)
        return EXIT_FAILED
    except RuntimeError as e:
        print(f"edge-fleet: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
