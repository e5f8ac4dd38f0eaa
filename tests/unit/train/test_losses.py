"""Distillation losses against numbers computed independently with numpy from the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.losses import (
    HintProjector,
    confidence_adaptive_weights,
    distillation_loss,
    equal_weights,
    hint_loss,
    kd_loss,
    mix_teachers,
)

# 2 samples, 3 classes, 2 teachers; teacher B is wrong on sample 0, teacher A on sample 1
Z_S = np.array([[1.0, 0.5, -0.5], [0.2, -0.3, 0.9]])
Z_A = np.array([[2.0, 0.0, -1.0], [1.5, 0.2, -0.4]])
Z_B = np.array([[-1.0, 1.8, 0.1], [-0.5, 0.3, 2.2]])
Y = np.array([0, 2])
T, ALPHA = 2.0, 0.4


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _ce(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(_softmax(z)[np.arange(len(y)), y])


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * (np.log(p) - np.log(q))).sum(axis=-1)


def _reference(weighting: str) -> tuple[float, np.ndarray]:
    if weighting == "equal":
        w = np.full((2, 2), 0.5)
    else:
        ce = np.stack([_ce(Z_A, Y), _ce(Z_B, Y)], axis=1)  # (B, K_teachers)
        w = (1.0 - _softmax(ce)) / (2 - 1)
    p_bar = w[:, :1] * _softmax(Z_A / T) + w[:, 1:] * _softmax(Z_B / T)
    kd = T**2 * _kl(p_bar, _softmax(Z_S / T)).mean()
    ce_s = _ce(Z_S, Y).mean()
    return ALPHA * ce_s + (1 - ALPHA) * kd, w


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


@pytest.mark.parametrize("weighting", ["equal", "confidence"])
def test_distillation_loss_matches_hand_computed(weighting: str) -> None:
    expected, w = _reference(weighting)
    loss, parts = distillation_loss(
        _t(Z_S), [_t(Z_A), _t(Z_B)], torch.tensor(Y), alpha=ALPHA, T=T, weighting=weighting
    )
    assert float(loss) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(parts["teacher_weights"].numpy(), w, rtol=1e-10)
    assert float(parts["ce"]) == pytest.approx(_ce(Z_S, Y).mean(), rel=1e-10)


def test_confidence_weights_differ_from_equal_on_this_case() -> None:
    # guards the hand-computed case itself: both weightings must give different losses
    assert abs(_reference("equal")[0] - _reference("confidence")[0]) > 1e-3


def test_kd_loss_matches_formula_and_is_zero_at_match() -> None:
    p_t = _softmax(Z_A / T)
    expected = T**2 * _kl(p_t, _softmax(Z_S / T)).mean()
    assert float(kd_loss(_t(Z_S), _t(p_t), T)) == pytest.approx(expected, rel=1e-10)
    assert float(kd_loss(_t(Z_A), _t(p_t), T)) == pytest.approx(0.0, abs=1e-12)


def test_confidence_weights_sum_to_one_and_downweight_wrong_teacher() -> None:
    w = confidence_adaptive_weights([_t(Z_A), _t(Z_B)], torch.tensor(Y)).numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    assert w[0, 1] < w[0, 0]  # B is wrong on sample 0
    assert w[1, 0] < w[1, 1]  # A is wrong on sample 1
    g = torch.Generator().manual_seed(1)
    many = [torch.randn(5, 4, generator=g) for _ in range(4)]
    w4 = confidence_adaptive_weights(many, torch.tensor([0, 1, 2, 3, 0]))
    torch.testing.assert_close(w4.sum(1), torch.ones(5))
    assert bool((w4 >= 0).all())


def test_single_teacher() -> None:
    w = confidence_adaptive_weights([_t(Z_A)], torch.tensor(Y))
    assert w.shape == (2, 1)
    assert torch.equal(w, torch.ones(2, 1))
    for weighting in ("equal", "confidence"):
        loss, _ = distillation_loss(
            _t(Z_S), [_t(Z_A)], torch.tensor(Y), alpha=ALPHA, T=T, weighting=weighting
        )
        expected = (
            ALPHA * _ce(Z_S, Y).mean()
            + (1 - ALPHA) * T**2 * _kl(_softmax(Z_A / T), _softmax(Z_S / T)).mean()
        )
        assert float(loss) == pytest.approx(expected, rel=1e-10)


def test_mix_teachers_equal_and_weighted() -> None:
    p = mix_teachers([_t(Z_A), _t(Z_B)], T).numpy()
    np.testing.assert_allclose(p, 0.5 * (_softmax(Z_A / T) + _softmax(Z_B / T)), rtol=1e-12)
    w = torch.tensor([[1.0, 0.0], [0.25, 0.75]], dtype=torch.float64)
    p = mix_teachers([_t(Z_A), _t(Z_B)], T, w).numpy()
    np.testing.assert_allclose(p[0], _softmax(Z_A / T)[0], rtol=1e-12)
    np.testing.assert_allclose(
        p[1], 0.25 * _softmax(Z_A / T)[1] + 0.75 * _softmax(Z_B / T)[1], rtol=1e-12
    )
    torch.testing.assert_close(equal_weights(2, 3), torch.full((3, 2), 0.5))


def test_gradient_flows_to_student_only() -> None:
    z_s = _t(Z_S).requires_grad_()
    z_a = _t(Z_A).requires_grad_()
    loss, _ = distillation_loss(
        z_s, [z_a, _t(Z_B)], torch.tensor(Y), alpha=0.5, T=T, weighting="confidence"
    )
    loss.backward()
    assert z_s.grad is not None and float(z_s.grad.abs().sum()) > 0
    assert z_a.grad is None


def test_alpha_one_is_plain_cross_entropy_and_bad_args_raise() -> None:
    loss, _ = distillation_loss(_t(Z_S), [_t(Z_A)], torch.tensor(Y), alpha=1.0, T=T)
    assert float(loss) == pytest.approx(_ce(Z_S, Y).mean(), rel=1e-10)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(_t(Z_S), [_t(Z_A)], torch.tensor(Y), alpha=1.5, T=T)
    with pytest.raises(ValueError, match="weighting"):
        distillation_loss(_t(Z_S), [_t(Z_A)], torch.tensor(Y), alpha=0.5, T=T, weighting="x")


def test_hint_loss() -> None:
    torch.manual_seed(0)
    proj = HintProjector(4, 6)
    h_s, h_t = torch.randn(3, 4), torch.randn(3, 6)
    expected = ((proj(h_s) - h_t) ** 2).sum(1).mean() / 6
    torch.testing.assert_close(hint_loss(h_s, h_t, proj), expected)
    with torch.no_grad():
        proj.proj.weight.zero_()
        proj.proj.bias.copy_(h_t[0])
    assert float(hint_loss(h_s[:1], h_t[:1], proj).detach()) == 0.0
