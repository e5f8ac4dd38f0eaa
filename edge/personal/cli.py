"""``edge-daemon label`` and ``edge-daemon personalize``: confirm what a wearer felt, fit their head.

    edge-daemon label --wearer W --from T1 --to T2 --state STATE [--db PATH]
    edge-daemon label --alert ID --yes|--no [--state STATE] [--db PATH]
    edge-daemon personalize [--wearer W] [--db PATH]

Both work on the hub's database while the daemon runs (SQLite in WAL mode); a running
daemon picks up a new personal head at its next refit check (``personal.refit_interval_s``)
or on SIGHUP.
"""

# ruff: noqa: T201 - a command line prints its results and errors (library code logs)
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.errors import WearableEdgeError
from edge.config import DaemonConfig

__all__ = ["add_commands", "glue_times", "run_command"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def glue_times(argv: list[str]) -> list[str]:
    """``--from -2h`` as ``--from=-2h``: argparse takes a value starting with ``-`` (that is
    not a plain number) for an option, and a time ago is written exactly so."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--from", "--to") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def add_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    lab = sub.add_parser(
        "label",
        help="record what a wearer felt over a span, or answer a stress alert",
        description="Record a confirmed state for a span of a wearer's time (kept on the hub "
        "only; personalization learns from it), or answer a sustained-stress "
        "alert: --yes labels its span stress, --no labels it --state (default "
        "the model's first state, baseline). Times: local ISO "
        "(2026-12-07T14:30) or ago (-2h, -30m, now).",
    )
    add_common(lab)
    lab.add_argument("--wearer", metavar="NAME", help="the resident id")
    lab.add_argument("--from", dest="t_from", metavar="TIME", help="span start")
    lab.add_argument(
        "--to", dest="t_to", metavar="TIME", default="now", help="span end (default now)"
    )
    lab.add_argument("--state", metavar="STATE", help="one of the model's class names")
    lab.add_argument(
        "--alert",
        type=int,
        metavar="ID",
        help="answer this alert (its id in the events table / history)",
    )
    yn = lab.add_mutually_exclusive_group()
    yn.add_argument("--yes", action="store_true", help="the alert was right: stressed")
    yn.add_argument("--no", action="store_true", help="the alert was wrong: not stressed")
    lab.add_argument("--db", metavar="PATH", help="the database (default STATE_DIR/edge.db)")
    lab.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")

    per = sub.add_parser(
        "personalize",
        help="fit each wearer's own head on their confirmed labels",
        description="Fit a personal head for each wearer with enough confirmed labels and "
        "keep it only if it beats the shared head on the wearer's newest, "
        "held-back labels. Prints one line per wearer.",
    )
    add_common(per)
    per.add_argument("--wearer", metavar="NAME", help="only this wearer")
    per.add_argument("--db", metavar="PATH", help="the database (default STATE_DIR/edge.db)")
    per.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")
    for p in (lab, per):
        p.add_argument(
            "--bundle",
            metavar="DIR",
            action="append",
            help="the daemon's bundle(s) (default as the daemon's configuration)",
        )
    per.add_argument(
        "--trusted-key",
        action="append",
        metavar="FILE",
        help="also trust this Ed25519 public key (PEM) for the bundles",
    )


def run_command(args: argparse.Namespace, cfg: DaemonConfig) -> int:
    try:
        if args.command == "label":
            print(_label(args, cfg))
        else:
            lines = _personalize(args, cfg)
            print(
                "\n".join(lines)
                if lines
                else "no wearer has confirmed labels yet (edge-daemon label --help)"
            )
    except WearableEdgeError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_USAGE if args.command == "label" else EXIT_FAILED
    return EXIT_OK


def _class_names(cfg: DaemonConfig) -> tuple[str, ...]:
    from edge.bundle import load_bundle
    from edge.models import bundle_paths

    names: list[str] = []
    for path in bundle_paths(cfg):
        with load_bundle(path) as b:
            names += [c for c in b.class_names if c not in names]
    return tuple(names)


def _label(args: argparse.Namespace, cfg: DaemonConfig) -> str:
    from edge.personal.labels import (
        LabelError,
        alert_span,
        check_span,
        check_state,
        parse_time,
    )
    from edge.personal.store import PersonalStore

    classes = _class_names(cfg)
    db = cfg.db_path
    if args.alert is not None:
        if not (args.yes or args.no):
            raise LabelError("--alert ID needs --yes (it was right) or --no (it was not)")
        span = alert_span(db, args.alert, yes=args.yes, state=args.state, class_names=classes)
        resident, t_from, t_to, state, source = (
            span.resident,
            span.t_from,
            span.t_to,
            span.state,
            span.source,
        )
    else:
        if args.yes or args.no:
            raise LabelError("--yes/--no answer an alert: give --alert ID")
        missing = [
            f
            for f, v in (
                ("--wearer", args.wearer),
                ("--from", args.t_from),
                ("--state", args.state),
            )
            if not v
        ]
        if missing:
            raise LabelError(f"give {', '.join(missing)} (or --alert ID --yes|--no)")
        state = check_state(args.state, classes)
        t_from = parse_time(args.t_from, flag="--from")
        t_to = parse_time(args.t_to, flag="--to")
        check_span(t_from, t_to)
        resident, source = args.wearer, "manual"
    with PersonalStore(db) as store:
        label_id = store.add_label(resident, t_from, t_to, state, source)

    def local(t: float) -> str:
        return datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S")

    return (
        f"label {label_id}: {resident} was {state} from {local(t_from)} to {local(t_to)} "
        f"({source}; kept on this hub only)"
    )


def _personalize(args: argparse.Namespace, cfg: DaemonConfig) -> list[str]:
    from edge.models import bundle_paths
    from edge.personal.service import SharedModel, fit_wearers, shared_head
    from edge.signing import load_trusted_bundle

    heads = {}
    for path in bundle_paths(cfg):
        with load_trusted_bundle(path, cfg) as b:
            head = shared_head(b)
            if head is not None:
                heads[b.model_id] = SharedModel(head, b.class_names, b.model_version)
    if not heads:
        from edge.personal.labels import LabelError

        raise LabelError(
            "no configured bundle has an embedding output: re-export it with "
            "this edge-export to personalize"
        )
    results = fit_wearers(cfg.db_path, heads, cfg.personal, wearer=args.wearer)
    return [r.line() for r in results]
