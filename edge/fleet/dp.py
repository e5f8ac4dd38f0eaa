"""Differential privacy wired into Flower: the noise a target ε needs, central or local.

Central DP wraps the coordinator's strategy in Flower's
``DifferentialPrivacyServerSideFixedClipping`` (each hub's update clipped to ``clip_norm``,
Gaussian noise of ``z·clip_norm/n`` on the mean of ``n`` updates). Local DP puts Flower's
``LocalDpMod`` on the hub (its update clipped and noised, ``z·clip_norm``, before it is sent):
the hub needs to trust nobody, at the price of ``√n`` times more noise on the mean.
Both act on whatever the round's arrays are: the whole head, or its coefficients in a
public basis (:mod:`edge.fleet.subspace`), where the same noise scale falls on far fewer numbers.
``LocalDpMod`` takes an (ε, δ) per release and turns it into a noise scale with the classic
Gaussian-mechanism formula; we give it the pair that yields our ``z`` and report the
account of :mod:`edge.fleet.accountant`, not that formula's.
"""

from __future__ import annotations

import math

from flwr.clientapp.mod import LocalDpMod
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, Strategy

from edge.fleet.accountant import noise_for_epsilon
from edge.fleet.options import FleetOptions

__all__ = ["central_dp", "local_dp_mod", "noise_multiplier"]


def noise_multiplier(opts: FleetOptions) -> float | None:
    """``z`` for the options' target ε after all rounds (None without DP)."""
    if opts.dp == "none" or opts.dp_epsilon is None:
        return None
    return noise_for_epsilon(opts.dp_epsilon, opts.rounds, opts.dp_delta)


def central_dp(strategy: Strategy, opts: FleetOptions, n_hubs: int) -> Strategy:
    z = noise_multiplier(opts)
    if opts.dp != "central" or z is None:
        return strategy
    return DifferentialPrivacyServerSideFixedClipping(strategy, z, opts.clip_norm, n_hubs)


def local_dp_mod(opts: FleetOptions) -> LocalDpMod | None:
    z = noise_multiplier(opts)
    if opts.dp != "local" or z is None:
        return None
    # std = sensitivity * sqrt(2 ln(1.25/δ)) / ε inside the mod; this ε makes it z * clip_norm
    eps_arg = math.sqrt(2.0 * math.log(1.25 / opts.dp_delta)) / z
    return LocalDpMod(opts.clip_norm, opts.clip_norm, eps_arg, opts.dp_delta)
