"""Secure aggregation (SecAgg+) of the shared head: the coordinator learns only the hubs' sum.

The same rounds as :mod:`edge.fleet.server` and :mod:`edge.fleet.client` (each hub fits the
round's head on its labels with :func:`edge.fleet.client.train_reply`; the coordinator takes
the weighted mean), but each hub's trained head leaves the hub quantized and masked: pairwise
masks (agreed by key exchange between hubs) cancel only in the sum of all hubs, and a hub's
own mask is removed only once the others' shares of its seed arrive. The coordinator never
holds one hub's head; nor does it learn a hub's update norm (``update_norm_median`` is NaN).
What still travels in clear, as on the plain path: each hub's weight (its label count, which
Flower's legacy fit result carries beside the masked vector) and its pseudonym.

Flower 1.42 has SecAgg+ only on its legacy path, so this is a ServerApp / ClientApp pair of its
own: ``SecAggPlusWorkflow`` inside ``DefaultWorkflow`` with a legacy ``FedAvg`` on the
coordinator, ``secaggplus_mod`` on the hub, fit results in the legacy record layout.

Quantization error. A hub sends ``r·θ`` with ``r = weight / max_weight``, clipped to
``[-clipping_range, clipping_range]`` and stochastically rounded to one of
``quantization_range`` levels; the coordinator divides the sum by ``Σr``. Each value of the
mean is therefore off by less than ``n·2·clipping_range / (quantization_range·Σr)`` for ``n``
hubs (plus the rounding of each ``r`` to a level: ``2·max|θ| / (quantization_range·min r)``),
see :func:`quantization_tolerance`. A head value with ``r·|θ|`` beyond ``clipping_range`` is
clipped and a hub weighing more than ``max_weight`` is counted at ``max_weight``; hubs report
both counts in plain metrics and the coordinator logs them.

Strength, as Flower builds it: each mask comes from numpy's generator seeded with 32 bits
folded from the 256-bit agreed key (``secaggplus_utils.pseudo_rand_gen``), so a coordinator
that learns a hub's own seed in the unmask stage still faces 32 bits per pairwise mask, ``2^64``
guesses with 3 hubs and more with more: a margin against a curious coordinator, not a
cryptographic one.

Differential privacy with SecAgg+ (``dp="central"``): the hubs clip their own update
(Flower's ``fixedclipping_mod``, asked by the coordinator's
``DifferentialPrivacyClientSideFixedClipping``) before it is masked, and the coordinator adds
Gaussian noise of ``z·clip_norm/n`` to the unmasked mean, accounted as on the plain path
(:mod:`edge.fleet.accountant`). The coordinator sees the clipped sum before its noise: the
guarantee holds for whoever receives the head (hubs, results), not against the coordinator.
Every hub weighs 1 under DP, so ``max_weight`` is 1 then. Local DP is not combined with
SecAgg+ (:class:`edge.fleet.options.FleetOptions` refuses the pair). Numpy and flwr only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    Code,
    FitRes,
    NDArrays,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.typing import Scalar
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from flwr.supercore.run import Run

from edge.fleet.accountant import GaussianAccountant
from edge.fleet.client import HubLoader, node_config_hub, train_reply
from edge.fleet.dp import noise_multiplier
from edge.fleet.options import FleetOptions, FleetOptionsError
from edge.fleet.server import RoundReport
from edge.personal.head import Head

__all__ = [
    "MeteredGrid",
    "SecAggOptions",
    "make_client_app",
    "make_server_app",
    "message_bytes",
    "quantization_tolerance",
]

log = logging.getLogger(__name__)

# masks are drawn below this; Flower needs a power of 2 above quantization_range, and the sum of
# n hubs' levels stays below it while n < MODULUS_RANGE / quantization_range
MODULUS_RANGE: Final = 2**32
# how long the coordinator waits for the hubs in each of SecAgg+'s four stages; a hub that has
# not answered by then counts as dropped (the others' shares remove its masks)
STAGE_TIMEOUT_S: Final = 3600.0
# what a round's train config adds for the hub under SecAgg+ (it counts what it clips)
MAX_WEIGHT_KEY: Final = "secagg-max-weight"
CLIPPING_KEY: Final = "secagg-clipping-range"
CLIPPED_METRIC: Final = "secagg-clipped"  # head values beyond the clipping range
CAPPED_METRIC: Final = "secagg-weight-capped"  # 1 when the hub's weight exceeded max_weight
HUB_RECORD: Final = "about"  # the hub's pseudonym, as on the plain path


@dataclass(frozen=True)
class SecAggOptions:
    """SecAgg+'s settings, chosen for a head of a few hundred values and a care home's hubs."""

    # hubs each hub shares its secrets with; a float is the fraction of the round's hubs (1.0:
    # every hub, which a care home of tens of hubs can afford)
    num_shares: int | float = 1.0
    # shares that rebuild a secret; above half of num_shares, so no coalition the coordinator
    # can form from honest answers holds both of a hub's secrets (float: fraction of num_shares)
    reconstruction_threshold: int | float = 0.67
    # a head's values lie within ±a few units; the error of the mean grows with this range
    clipping_range: float = 8.0
    quantization_range: int = 2**22  # levels per value (Flower's default)
    # a hub's weight is its label count: about 14 hours of confirmed 5 s-hop windows
    max_weight: float = 10_000.0

    def __post_init__(self) -> None:
        def refuse(key: str, what: str) -> None:
            raise FleetOptionsError(f"secagg {key}: {what}, got {getattr(self, key)!r}")

        for key in ("num_shares", "reconstruction_threshold"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float):
                refuse(key, "an int (count) or a float (fraction)")
        if isinstance(self.num_shares, int) and self.num_shares < 3:
            refuse("num_shares", "at least 3 hubs (or a fraction such as 1.0)")
        if isinstance(self.num_shares, float) and not 0 < self.num_shares <= 1:
            refuse("num_shares", "a fraction in (0, 1]")
        t = self.reconstruction_threshold
        if isinstance(t, float) and not 0.5 < t <= 1:
            refuse("reconstruction_threshold", "a fraction in (0.5, 1]")
        if isinstance(t, int) and t < 2:
            refuse("reconstruction_threshold", "at least 2 shares")
        if isinstance(t, int) and isinstance(self.num_shares, int) and t >= self.num_shares:
            refuse("reconstruction_threshold", f"fewer than num_shares ({self.num_shares})")
        if not (self.clipping_range > 0 and math.isfinite(self.clipping_range)):
            refuse("clipping_range", "a positive number")
        q = self.quantization_range
        if isinstance(q, bool) or not isinstance(q, int) or not 2 <= q < MODULUS_RANGE:
            refuse("quantization_range", "an integer in [2, 2^32)")
        if not (self.max_weight > 0 and math.isfinite(self.max_weight)):
            refuse("max_weight", "a positive number")

    def check_hubs(self, n_hubs: int) -> None:
        """Refuse a federation SecAgg+ cannot run: too few hubs, or so many that the sum
        of their levels wraps around the masks' modulus."""
        if n_hubs < 3:
            raise FleetOptionsError(
                f"secagg: needs at least 3 hubs (with 2, each learns the other's head "
                f"from the sum), got {n_hubs}"
            )
        if n_hubs * self.quantization_range >= MODULUS_RANGE:
            raise FleetOptionsError(
                f"secagg: {n_hubs} hubs × quantization_range {self.quantization_range} "
                f"overflows the 2^32 modulus; lower quantization_range"
            )


def quantization_tolerance(
    weights: Sequence[float], max_abs_value: float, secagg: SecAggOptions = SecAggOptions()
) -> float:
    """Bound on |SecAgg+ mean − exact weighted mean| of any one value, for hubs of
    ``weights`` whose values stay within ``max_abs_value`` (and unclipped)."""
    q, m = secagg.quantization_range, secagg.max_weight
    ratios = [min(w, m) / m for w in weights]
    levels = len(ratios) * 2.0 * secagg.clipping_range / (q * sum(ratios))
    weight_rounding = 2.0 * max_abs_value / (q * min(ratios))
    return levels + weight_rounding


# ---------------------------------------------------------------- hub side


def _clip_when_asked(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's ``fixedclipping_mod`` when the round's config carries a clipping norm (the
    coordinator runs DP), else nothing: one hub app for both kinds of federation."""
    if msg.metadata.message_type == MessageType.TRAIN:
        fitins = msg.content.config_records.get("fitins.config")
        if fitins is not None and KEY_CLIPPING_NORM in fitins:
            return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def make_client_app(load: HubLoader = node_config_hub, mods: Sequence[Any] = ()) -> ClientApp:
    """The hub's ClientApp under SecAgg+ (same ``load`` as :func:`edge.fleet.client.
    make_client_app`); ``mods`` act on the plain reply, before it is clipped and masked."""
    client = ClientApp(mods=[secaggplus_mod, _clip_when_asked, *mods])

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        data, pseudonyms, hub_id = load(context)
        fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
        head = Head.from_arrays(parameters_to_ndarrays(fitins.parameters))
        new, weight = train_reply(head, data, fitins.config)
        max_weight = float(fitins.config[MAX_WEIGHT_KEY])
        clip = float(fitins.config[CLIPPING_KEY])
        sent = min(weight, max_weight)
        # Flower's fit result counts examples in an int; weights are label counts (or 1)
        n_examples = max(1, round(sent))
        ratio = n_examples / max_weight  # what secaggplus_mod scales the head by
        # counted on the trained head; under DP the head sent is nearer the round's (clipped)
        clipped = sum(int(np.count_nonzero(np.abs(a) * ratio > clip)) for a in new.to_arrays())
        if clipped or sent < weight:
            log.warning(
                "secagg: %d head values beyond the clipping range, weight %g capped at %g",
                clipped,
                weight,
                sent,
            )
        fitres = FitRes(
            Status(Code.OK, ""),
            ndarrays_to_parameters(new.to_arrays()),
            num_examples=n_examples,
            metrics={CLIPPED_METRIC: clipped, CAPPED_METRIC: int(sent < weight)},
        )
        content = compat.fitres_to_recorddict(fitres, keep_input=False)
        content[HUB_RECORD] = ConfigRecord({"hub": pseudonyms.hub(hub_id)})
        return Message(content, reply_to=msg)

    return client


# ---------------------------------------------------------------- coordinator side


def _value_bytes(v: Any) -> int:
    if isinstance(v, list):
        return sum(_value_bytes(x) for x in v)
    if isinstance(v, str | bytes):
        return len(v)
    return 1 if isinstance(v, bool) else 8  # int and float travel as 64 bits


def message_bytes(content: RecordDict) -> int:
    """Bytes of a message's records, counted as Flower's ``count_bytes`` counts them (keys,
    64-bit numbers, raw bytes and strings; no transport framing). Its own ConfigRecord count
    refuses empty strings and lists, which SecAgg+'s records hold, so those are counted here."""
    total = 0
    for record in content.values():
        if isinstance(record, ConfigRecord):
            total += sum(len(k) + _value_bytes(v) for k, v in record.items())
        else:
            total += record.count_bytes()
    return total


@dataclass
class _Round:
    bytes_up: int = 0
    bytes_down: int = 0
    hubs: set[str] = field(default_factory=set)
    clipped: int = 0
    capped: int = 0
    aggregated: bool = False


class MeteredGrid(Grid):
    """The coordinator's grid, counting per round (a message's group) the bytes of every
    message sent and every reply received, through all four stages of SecAgg+, and showing
    each reply to ``on_reply`` (an auditor's view of what the coordinator receives)."""

    def __init__(self, inner: Grid, on_reply: Callable[[Message], None] | None = None) -> None:
        self._inner = inner
        self._on_reply = on_reply
        self.rounds: dict[int, _Round] = {}

    def _round(self, group_id: str) -> _Round:
        key = int(group_id) if group_id.isdigit() else 0
        return self.rounds.setdefault(key, _Round())

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        for m in messages:
            self._round(m.metadata.group_id).bytes_down += message_bytes(m.content)
        replies = list(self._inner.send_and_receive(messages, timeout=timeout))
        for r in replies:
            if not r.has_content():
                continue
            this = self._round(r.metadata.group_id)
            this.bytes_up += message_bytes(r.content)
            if HUB_RECORD in r.content.config_records:
                this.hubs.add(str(r.content.config_records[HUB_RECORD]["hub"]))
            if self._on_reply is not None:
                self._on_reply(r)
        return replies

    # the rest is the runtime's own grid
    def set_run(self, run: Run) -> None:
        self._inner.set_run(run)

    @property
    def run(self) -> Run:
        return self._inner.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self._inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self._inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._inner.pull_messages(message_ids)


def _legacy_strategy(
    opts: FleetOptions,
    initial: Head,
    n_hubs: int,
    secagg: SecAggOptions,
    grid: MeteredGrid,
    after_round: Callable[[int, NDArrays], None],
) -> LegacyStrategy:
    train_config: dict[str, Scalar] = {
        **opts.train_config(),
        # FedProx is FedAvg's aggregate with a proximal term in the hubs' training
        "proximal-mu": opts.prox_mu,
        MAX_WEIGHT_KEY: secagg.max_weight,
        CLIPPING_KEY: secagg.clipping_range,
    }

    def fit_metrics(metrics: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
        # called only once SecAgg+ has unmasked the round's sum
        rnd = max(grid.rounds) if grid.rounds else 0
        this = grid.rounds.setdefault(rnd, _Round())
        this.aggregated = True
        this.clipped = int(sum(float(m.get(CLIPPED_METRIC, 0)) for _, m in metrics))
        this.capped = int(sum(float(m.get(CAPPED_METRIC, 0)) for _, m in metrics))
        return {}

    def evaluate(
        server_round: int, arrays: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, dict[str, Scalar]] | None:
        if server_round > 0:
            after_round(server_round, arrays)
        return None

    fedavg = LegacyFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,  # hubs report no evaluation metrics: nothing more leaves them
        min_fit_clients=n_hubs,
        min_available_clients=n_hubs,
        initial_parameters=ndarrays_to_parameters(initial.to_arrays()),
        on_fit_config_fn=lambda server_round: dict(train_config),
        fit_metrics_aggregation_fn=fit_metrics,
        evaluate_fn=evaluate,
    )
    z = noise_multiplier(opts)
    if z is None:
        return fedavg
    return DifferentialPrivacyClientSideFixedClipping(fedavg, z, opts.clip_norm, n_hubs)


def _refuse(opts: FleetOptions, n_hubs: int, secagg: SecAggOptions) -> None:
    if opts.dp == "local":  # FleetOptions refuses the pair too; these options may come from code
        raise FleetOptionsError("secagg: cannot be combined with local DP; use central DP")
    secagg.check_hubs(n_hubs)


def run_rounds(
    grid: Grid,
    context: Context,
    opts: FleetOptions,
    initial: Head,
    n_hubs: int,
    *,
    secagg: SecAggOptions = SecAggOptions(),
    evaluate: Callable[[Head], float] | None = None,
    on_round: Callable[[RoundReport], None] = lambda r: None,
    on_reply: Callable[[Message], None] | None = None,
) -> Head:
    """Run the federation under SecAgg+ on ``grid``; returns the final shared head."""
    _refuse(opts, n_hubs, secagg)
    z = noise_multiplier(opts)
    accountant = GaussianAccountant(z, opts.dp_delta) if z is not None else None
    if z is not None:  # every hub weighs 1 under DP (FleetOptions.train_config)
        secagg = replace(secagg, max_weight=1.0)
    metered = MeteredGrid(grid, on_reply)

    def after_round(server_round: int, arrays: NDArrays) -> None:
        this = metered.rounds.get(server_round, _Round())
        if not this.aggregated:
            log.warning("round %d: secure aggregation halted; the head is unchanged", server_round)
        if this.clipped or this.capped:
            log.warning(
                "round %d: %d head values clipped, %d hub weights capped by SecAgg+'s ranges",
                server_round,
                this.clipped,
                this.capped,
            )
        eps = None
        if accountant is not None:  # a round released a noised head only if it aggregated
            eps = accountant.step() if this.aggregated else accountant.epsilon
        report = RoundReport(
            round=server_round,
            hubs=sorted(this.hubs),
            bytes_up=this.bytes_up,
            bytes_down=this.bytes_down,
            update_norm_median=math.nan,  # no single update is visible to the coordinator
            epsilon=eps,
        )
        if evaluate is not None:
            report.global_macro_f1 = evaluate(Head.from_arrays(arrays))
        on_round(report)

    strategy = _legacy_strategy(opts, initial, n_hubs, secagg, metered, after_round)
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=opts.rounds), strategy=strategy
    )
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=secagg.num_shares,
            reconstruction_threshold=secagg.reconstruction_threshold,
            max_weight=secagg.max_weight,
            clipping_range=secagg.clipping_range,
            quantization_range=secagg.quantization_range,
            modulus_range=MODULUS_RANGE,
            timeout=STAGE_TIMEOUT_S,
        )
    )
    workflow(metered, legacy)
    return Head.from_arrays(legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays())


def make_server_app(
    opts: FleetOptions,
    initial: Head,
    n_hubs: int,
    *,
    evaluate: Callable[[Head], float] | None = None,
    on_round: Callable[[RoundReport], None] = lambda r: None,
    on_done: Callable[[Head], None] = lambda h: None,
    secagg: SecAggOptions = SecAggOptions(),
    on_reply: Callable[[Message], None] | None = None,
) -> ServerApp:
    """A ServerApp running :func:`run_rounds` (the signature of :func:`edge.fleet.server.
    make_server_app`, plus SecAgg+'s settings and an auditor's ``on_reply``). Refuses
    settings SecAgg+ cannot run with here, before any hub is asked."""
    _refuse(opts, n_hubs, secagg)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        on_done(
            run_rounds(
                grid,
                context,
                opts,
                initial,
                n_hubs,
                secagg=secagg,
                evaluate=evaluate,
                on_round=on_round,
                on_reply=on_reply,
            )
        )

    return app


# what `flower-supernode` loads on a hub of a SecAgg+ federation
app = make_client_app()
