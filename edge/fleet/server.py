"""The coordinator's Flower ServerApp: rounds of FedAvg (or FedProx) on the shared head.

Every round each hub gets the current head and trains it on its own labels; the coordinator
averages the replies (under DP through Flower's fixed-clipping wrapper or the hubs' local
noise), accounts ε, counts the bytes the hubs sent, and reports the round. With a
:class:`~edge.fleet.subspace.HeadBasis` what goes round is the head's coefficients in that
basis (the basis itself rides in the train config), so clipping and noise act on those few
numbers. Numpy and flwr only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx, Strategy

from edge.fleet.accountant import GaussianAccountant
from edge.fleet.client import WEIGHT_KEY
from edge.fleet.dp import central_dp, noise_multiplier
from edge.fleet.options import FleetOptions, FleetOptionsError
from edge.fleet.subspace import BASIS_KEY, HeadBasis
from edge.personal.head import Head

__all__ = ["RoundReport", "build_strategy", "make_server_app", "run_rounds"]


@dataclass
class RoundReport:
    """One finished round, as the coordinator saw it."""

    round: int
    hubs: list[str]  # pseudonyms of the hubs that replied
    bytes_up: int  # bytes of the records the hubs sent (Flower's count_bytes; no transport framing)
    bytes_down: int  # bytes of the records sent to the hubs
    update_norm_median: float  # L2 norm of (hub's head - round's head), as sent
    epsilon: float | None  # cumulative, None without DP
    global_macro_f1: float | None = None  # set by a caller who can evaluate (the simulation)


def _bytes(msg: Message) -> int:
    return int(sum(record.count_bytes() for record in msg.content.values()))


@dataclass
class Metered(Strategy):
    """Wraps the strategy that aggregates: counts what crosses, accounts ε per release."""

    inner: Strategy
    accountant: GaussianAccountant | None
    sent: dict[int, tuple[list[np.ndarray], int]] = field(default_factory=dict)
    reports: dict[int, RoundReport] = field(default_factory=dict)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        down = sum(_bytes(m) for m in messages)
        self.sent[server_round] = (arrays.to_numpy_ndarrays(), down)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        start, down = self.sent.pop(server_round, ([], 0))
        ok = [r for r in replies if not r.has_error()]
        norms = []
        for r in ok:
            new = r.content.array_records["arrays"].to_numpy_ndarrays()
            if len(new) == len(start):
                diff = sum(float(np.sum((a - b) ** 2)) for a, b in zip(new, start, strict=True))
                norms.append(math.sqrt(diff))
        hubs = [str(r.content["about"]["hub"]) for r in ok if "about" in r.content]
        arrays, metrics = self.inner.aggregate_train(server_round, replies)
        eps = None
        if self.accountant is not None and arrays is not None:
            eps = self.accountant.step()
        elif self.accountant is not None:
            eps = self.accountant.epsilon
        self.reports[server_round] = RoundReport(
            round=server_round,
            hubs=sorted(hubs),
            bytes_up=sum(_bytes(r) for r in replies),
            bytes_down=down,
            update_norm_median=float(np.median(norms)) if norms else math.nan,
            epsilon=eps,
        )
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.inner.summary()


def build_strategy(opts: FleetOptions, n_hubs: int) -> Metered:
    """FedAvg (FedProx when ``prox_mu`` > 0) over all ``n_hubs`` every round (no sampling:
    the account claims no amplification), wrapped for central DP when asked, then metered."""
    common: dict[str, Any] = {
        "fraction_train": 1.0,
        "fraction_evaluate": 0.0,  # hubs report no evaluation metrics: nothing more leaves them
        "min_train_nodes": n_hubs,
        "min_available_nodes": n_hubs,
        "weighted_by_key": WEIGHT_KEY,
    }
    inner: Strategy = (
        FedProx(proximal_mu=opts.prox_mu, **common) if opts.prox_mu > 0 else FedAvg(**common)
    )
    inner = central_dp(inner, opts, n_hubs)
    z = noise_multiplier(opts)
    accountant = GaussianAccountant(z, opts.dp_delta) if z is not None else None
    return Metered(inner, accountant)


def run_rounds(
    grid: Grid,
    opts: FleetOptions,
    initial: Head,
    n_hubs: int,
    *,
    evaluate: Callable[[Head], float] | None = None,
    on_round: Callable[[RoundReport], None] = lambda r: None,
    timeout: float = 3600.0,
    basis: HeadBasis | None = None,
) -> Head:
    """Run the federation on ``grid``; returns the final shared head. With ``basis`` (which
    ``opts.subspace`` > 0 needs; it holds the starting head) the hubs train coefficients in it."""
    if opts.subspace and (basis is None or basis.k != opts.subspace):
        raise FleetOptionsError(
            f"subspace: {opts.subspace} directions need a basis of as many "
            f"(got {'none' if basis is None else basis.k})"
        )
    strategy = build_strategy(opts, n_hubs)
    config = opts.train_config()
    if basis is not None:
        config[BASIS_KEY] = basis.to_bytes()
        start = ArrayRecord([basis.zero()])

        def to_head(a: ArrayRecord) -> Head:
            return basis.head(a.to_numpy_ndarrays()[0])
    else:
        start = ArrayRecord(initial.to_arrays())

        def to_head(a: ArrayRecord) -> Head:
            return Head.from_arrays(a.to_numpy_ndarrays())

    def after_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        report = strategy.reports.get(server_round)
        if report is None:
            return None
        if evaluate is not None:
            report.global_macro_f1 = evaluate(to_head(arrays))
        on_round(report)
        return None

    result = strategy.start(
        grid=grid,
        initial_arrays=start,
        num_rounds=opts.rounds,
        timeout=timeout,
        train_config=ConfigRecord(config),
        evaluate_fn=after_round,
    )
    return to_head(result.arrays)


def make_server_app(
    opts: FleetOptions,
    initial: Head,
    n_hubs: int,
    *,
    evaluate: Callable[[Head], float] | None = None,
    on_round: Callable[[RoundReport], None] = lambda r: None,
    on_done: Callable[[Head], None] = lambda h: None,
    basis: HeadBasis | None = None,
) -> ServerApp:
    """A ServerApp running :func:`run_rounds` and handing the final head to ``on_done``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        on_done(
            run_rounds(
                grid, opts, initial, n_hubs, evaluate=evaluate, on_round=on_round, basis=basis
            )
        )

    return app
