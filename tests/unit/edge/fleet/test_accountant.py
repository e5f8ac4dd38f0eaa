"""edge.fleet.accountant: the Rényi-DP account against the exact Gaussian curve."""

from __future__ import annotations

import math

import pytest

from edge.fleet.accountant import (
    AccountantError,
    GaussianAccountant,
    epsilon_for,
    exact_gaussian_epsilon,
    noise_for_epsilon,
)


@pytest.mark.parametrize("z", [0.8, 1.1, 2.0, 5.0])
@pytest.mark.parametrize("rounds", [1, 3, 20])
def test_the_account_is_sound_and_close_to_the_exact_curve(z: float, rounds: int) -> None:
    delta = 1e-5
    rdp = epsilon_for(z, rounds, delta)
    exact = exact_gaussian_epsilon(z, rounds, delta)
    assert rdp >= exact  # never claims more privacy than the mechanism gives
    assert rdp <= exact * 1.25 + 0.05  # and gives little away


def test_exact_curve_matches_a_textbook_point() -> None:
    # one Gaussian release, sensitivity 1, sigma 1 (mu = 1): delta(eps=1) ~ 0.1269 (Balle & Wang)
    eps = exact_gaussian_epsilon(1.0, 1, 0.12693)
    assert eps == pytest.approx(1.0, abs=0.01)


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    assert epsilon_for(1.0, 2, 1e-5) < epsilon_for(1.0, 3, 1e-5)
    assert epsilon_for(2.0, 3, 1e-5) < epsilon_for(1.0, 3, 1e-5)
    assert epsilon_for(1.0, 0, 1e-5) == 0.0


@pytest.mark.parametrize("target", [0.5, 2.0, 8.0])
def test_noise_is_calibrated_to_the_target(target: float) -> None:
    z = noise_for_epsilon(target, 3, 1e-5)
    assert epsilon_for(z, 3, 1e-5) <= target
    assert epsilon_for(z * 0.99, 3, 1e-5) > target  # the smallest such noise


def test_the_running_account_reports_each_round() -> None:
    acc = GaussianAccountant(noise_for_epsilon(8.0, 3, 1e-5), 1e-5)
    eps = [acc.step() for _ in range(3)]
    assert eps == sorted(eps) and eps[-1] <= 8.0 and eps[-1] > 7.9
    assert acc.history == eps and acc.epsilon == eps[-1]


@pytest.mark.parametrize(
    "bad",
    [
        dict(noise_multiplier=0.0, delta=1e-5),
        dict(noise_multiplier=1.0, delta=1.0),
        dict(noise_multiplier=math.nan, delta=1e-5),
    ],
)
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(AccountantError):
        GaussianAccountant(**bad)
    with pytest.raises(AccountantError):
        noise_for_epsilon(-1.0, 3, 1e-5)
