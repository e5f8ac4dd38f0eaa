"""(ε, δ) of a federation's Gaussian releases, composed over rounds with Rényi DP.

The method. Each round every hub's update is clipped to L2 norm ``C`` and the released
aggregate carries Gaussian noise of standard deviation ``z·C`` on the sum of updates (central
DP: Flower's fixed-clipping wrappers add ``z·C/n`` to the mean of ``n`` updates; local DP: each
hub adds ``z·C`` to its own). Neighbouring federations differ by one hub's whole data
(client-level DP, add/remove one hub), so the sum's L2 sensitivity is ``C`` and one round is
the Gaussian mechanism with noise multiplier ``z``, whose Rényi DP of order α is
``α / (2 z²)`` (Mironov 2017, Prop. 7). Every hub takes part in every round and we claim no
amplification by subsampling. Rényi DP composes by addition over rounds; the account is
turned into (ε, δ) with the conversion of Balle et al. 2020 (Thm. 21; the one Opacus and
TensorFlow Privacy use), minimised over a grid of orders:

    ε = min_α  R·α/(2z²) + log((α−1)/α) − (log δ + log α)/(α − 1)

For this mechanism the exact curve is known (R rounds of noise z are one Gaussian release of
noise z/√R; Balle & Wang 2018), :func:`exact_gaussian_epsilon`: the tests check the account
is never below it and close above it. Training metrics that leave a hub (a weight) are not
part of the account; under DP a hub sends a constant weight of 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from edge.errors import EdgeError

__all__ = [
    "ORDERS",
    "AccountantError",
    "GaussianAccountant",
    "epsilon_for",
    "exact_gaussian_epsilon",
    "noise_for_epsilon",
]

# orders from just above 1 to 512: small ε at large δ needs large orders, large ε small ones
ORDERS: Final[tuple[float, ...]] = tuple(
    [1.0 + x / 10.0 for x in range(1, 100)]
    + [float(a) for a in range(11, 64)]
    + [64.0, 80.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0]
)


class AccountantError(EdgeError):
    """Privacy parameters out of range (δ outside (0, 1), a non-positive noise, ...)."""


def _check(noise_multiplier: float, delta: float) -> None:
    if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise AccountantError(f"the noise multiplier must be > 0, got {noise_multiplier}")
    if not 0 < delta < 1:
        raise AccountantError(f"δ must be in (0, 1), got {delta}")


def epsilon_for(
    noise_multiplier: float, rounds: int, delta: float, orders: Sequence[float] = ORDERS
) -> float:
    """ε after ``rounds`` full-participation Gaussian releases of noise ``noise_multiplier``."""
    _check(noise_multiplier, delta)
    if rounds <= 0:
        return 0.0
    best = math.inf
    for a in orders:
        rdp = rounds * a / (2.0 * noise_multiplier**2)
        eps = rdp + math.log((a - 1) / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, eps)
    return max(best, 0.0)


def noise_for_epsilon(epsilon: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier whose account after ``rounds`` is at most ``epsilon``
    (bisection on :func:`epsilon_for`, which falls as the noise grows)."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise AccountantError(f"ε must be > 0, got {epsilon}")
    if rounds <= 0:
        raise AccountantError(f"rounds must be >= 1, got {rounds}")
    lo, hi = 1e-3, 1.0
    while epsilon_for(hi, rounds, delta) > epsilon:
        hi *= 2.0
        if hi > 1e6:
            raise AccountantError(f"no noise reaches ε={epsilon} at δ={delta}")
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if epsilon_for(mid, rounds, delta) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def exact_gaussian_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """The tight ε of ``rounds`` Gaussian releases (one release of noise z/√R; Balle & Wang
    2018, Thm. 8): the smallest ε with Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) ≤ δ, μ = √R / z."""
    _check(noise_multiplier, delta)
    mu = math.sqrt(rounds) / noise_multiplier

    def delta_at(eps: float) -> float:
        return _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)

    if delta_at(0.0) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while delta_at(hi) > delta:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if delta_at(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass
class GaussianAccountant:
    """The running account of one federation: :meth:`step` after each noisy release."""

    noise_multiplier: float
    delta: float
    rounds: int = 0
    history: list[float] = field(default_factory=list)  # cumulative ε after each round

    def __post_init__(self) -> None:
        _check(self.noise_multiplier, self.delta)

    def step(self) -> float:
        """Compose one more round; returns the cumulative ε."""
        self.rounds += 1
        eps = epsilon_for(self.noise_multiplier, self.rounds, self.delta)
        self.history.append(eps)
        return eps

    @property
    def epsilon(self) -> float:
        return epsilon_for(self.noise_multiplier, self.rounds, self.delta)
