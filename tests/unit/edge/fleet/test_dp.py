"""edge.fleet.dp and the coordinator's strategy: Flower's DP wrappers, calibrated to the target ε."""

from __future__ import annotations

import pytest
from flwr.clientapp.mod import LocalDpMod
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedProx

from edge.fleet.accountant import epsilon_for
from edge.fleet.dp import local_dp_mod, noise_multiplier
from edge.fleet.options import FleetOptions, FleetOptionsError
from edge.fleet.server import build_strategy


def test_no_dp_is_plain_fedavg_or_fedprox() -> None:
    s = build_strategy(FleetOptions(), 4)
    assert type(s.inner) is FedAvg and s.accountant is None
    assert type(build_strategy(FleetOptions(prox_mu=0.1), 4).inner) is FedProx
    assert noise_multiplier(FleetOptions()) is None and local_dp_mod(FleetOptions()) is None


def test_central_dp_wraps_the_strategy_with_the_calibrated_noise() -> None:
    opts = FleetOptions(dp="central", dp_epsilon=8.0, rounds=3, clip_norm=0.5)
    s = build_strategy(opts, 4)
    assert isinstance(s.inner, DifferentialPrivacyServerSideFixedClipping)
    z = s.inner.noise_multiplier
    assert s.inner.clipping_norm == 0.5 and s.inner.num_sampled_clients == 4
    assert epsilon_for(z, 3, 1e-5) == pytest.approx(8.0, abs=1e-3)
    assert s.accountant is not None and s.accountant.noise_multiplier == z


def test_local_dp_puts_flowers_mod_on_the_hub_with_the_same_noise() -> None:
    opts = FleetOptions(dp="local", dp_epsilon=4.0, rounds=3, clip_norm=0.5)
    mod = local_dp_mod(opts)
    assert isinstance(mod, LocalDpMod)
    z = noise_multiplier(opts)
    assert z is not None
    # the mod's own formula: std = sensitivity * sqrt(2 ln(1.25/δ)) / ε
    import math

    std = mod.sensitivity * math.sqrt(2 * math.log(1.25 / mod.delta)) / mod.epsilon
    assert std == pytest.approx(z * 0.5)
    assert type(build_strategy(opts, 4).inner) is FedAvg  # no central noise on top


@pytest.mark.parametrize(
    "bad",
    [
        dict(dp="central"),
        dict(dp_epsilon=8.0),
        dict(rounds=0),
        dict(dp="laplace", dp_epsilon=1.0),
        dict(clip_norm=0.0),
    ],
)
def test_bad_options_name_the_setting(bad: dict) -> None:
    with pytest.raises(FleetOptionsError) as info:
        FleetOptions(**bad)
    assert next(iter(bad)) in str(info.value) or "dp" in str(info.value)
