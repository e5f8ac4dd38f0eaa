"""The federation's settings as one typed record, and what of them a round sends to hubs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

from edge.errors import EdgeError

__all__ = [
    "DP_MODES",
    "SIMULATE_SUBSPACE",
    "SUBSPACE_CLIP_NORM",
    "WHOLE_HEAD_CLIP_NORM",
    "FleetOptions",
    "FleetOptionsError",
    "default_clip_norm",
]

DP_MODES: Final = ("none", "central", "local")
# what `edge-fleet simulate` trains in (edge.fleet.subspace) and clips to there, chosen by
# benchmarks/fleet_pilot.py on confirmed windows only (benchmarks/results/fleet/README.md)
SIMULATE_SUBSPACE: Final = 8
SUBSPACE_CLIP_NORM: Final = 1.0
# a whole head's update, clipped where its earlier runs clipped it
WHOLE_HEAD_CLIP_NORM: Final = 0.5


def default_clip_norm(subspace: int) -> float:
    """The clip norm for a head update of this kind (0: the whole head)."""
    return SUBSPACE_CLIP_NORM if subspace else WHOLE_HEAD_CLIP_NORM


class FleetOptionsError(EdgeError):
    """A federation setting out of range; the message names the setting."""


@dataclass(frozen=True)
class FleetOptions:
    """How the coordinator runs rounds and how hubs train in them."""

    rounds: int = 3
    local_steps: int = 100  # full-batch descent steps a hub takes per round
    lr: float = 0.5  # capped per hub at 1/L of its data (edge.personal.head.fit_head)
    l2: float = 1e-3
    prox_mu: float = 0.0  # > 0: FedProx (the proximal term pulls toward the round's head)
    dp: str = "none"  # "central": Flower's server-side fixed clipping + noise; "local": each hub
    dp_epsilon: float | None = None  # target ε after all rounds (noise calibrated to it)
    dp_delta: float = 1e-5
    # L2 bound of one hub's update (what it sends minus the round's); the DP noise scales with it
    clip_norm: float = 0.5
    # > 0: hubs train and send the head's update in this many public directions
    # (edge.fleet.subspace); 0: the whole head
    subspace: int = 0
    seed: int = 0
    secagg: bool = False  # SecAgg+: the coordinator sees only the hubs' sum (edge.fleet.secagg)

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise FleetOptionsError(f"{key}: {what}, got {getattr(self, key)!r}")

        need(self.rounds >= 1, "rounds", "at least 1")
        need(self.local_steps >= 1, "local_steps", "at least 1")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "a positive number")
        need(self.l2 >= 0, "l2", "0 or more")
        need(self.prox_mu >= 0, "prox_mu", "0 or more")
        need(self.dp in DP_MODES, "dp", f"one of {DP_MODES}")
        need(self.clip_norm > 0, "clip_norm", "a positive number")
        need(0 < self.dp_delta < 1, "dp_delta", "in (0, 1)")
        need(self.subspace >= 0, "subspace", "0 (the whole head) or more directions")
        if self.dp != "none":
            need(
                self.dp_epsilon is not None and self.dp_epsilon > 0,
                "dp_epsilon",
                "a positive ε when dp is on",
            )
        elif self.dp_epsilon is not None:
            raise FleetOptionsError("dp_epsilon: set dp to 'central' or 'local' to use it")
        if self.secagg and self.subspace:
            raise FleetOptionsError(
                "secagg: aggregates the whole head; use subspace 0 (--subspace 0) with it"
            )
        if self.secagg and self.dp == "local":  # with SecAgg+, hubs clip and the coordinator noises
            raise FleetOptionsError("secagg: cannot be combined with local DP; use --dp central")

    @property
    def strategy(self) -> str:
        return "fedprox" if self.prox_mu > 0 else "fedavg"

    def train_config(self) -> dict[str, Any]:
        """What a round's train message tells each hub (a Flower ConfigRecord's values).

        Under DP every hub weighs the same (``uniform-weight``): the accountant's
        sensitivity assumes it, and a hub's label count would otherwise leave it unnoised."""
        return {
            "local-steps": self.local_steps,
            "lr": self.lr,
            "l2": self.l2,
            "uniform-weight": self.dp != "none",
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "strategy": self.strategy}
