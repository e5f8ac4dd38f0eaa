"""edge.fleet.subspace: the head's update in a small public basis, what a hub trains and sends."""

from __future__ import annotations

import numpy as np
import pytest

from edge.fleet.subspace import HeadBasis, SubspaceError, public_basis
from edge.personal.head import Head, loss

D, K = 8, 3


def student_head() -> Head:
    rng = np.random.default_rng(0)
    return Head(rng.normal(0, 0.3, (D, K)), rng.normal(0, 0.1, K))


def public_windows(n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(1)
    scales = np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.01])
    return (3.0 + rng.normal(0, 1, (n, D)) * scales).astype(np.float32)


def labelled(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, n)
    x = public_windows(n) + np.eye(K, D)[y] * 6.0
    return x.astype(np.float32), y.astype(np.int64)


def test_zero_coefficients_are_the_students_head() -> None:
    head = student_head()
    basis = public_basis(head, public_windows(), 3)
    back = basis.head(basis.zero())
    np.testing.assert_allclose(back.W, head.W, atol=1e-6)
    np.testing.assert_allclose(back.b, head.b, atol=1e-6)


def test_directions_are_the_public_principal_ones_at_unit_variance() -> None:
    x = public_windows(2000)
    basis = public_basis(student_head(), x, 2)
    u = (x - basis.mu) @ basis.T
    np.testing.assert_allclose(u.std(axis=0), 1.0, rtol=1e-3)
    # the two widest public axes (0 and 1), not the narrow ones
    direction = basis.T / np.linalg.norm(basis.T, axis=0)
    assert np.abs(direction[:2]).sum(axis=0).min() > 0.99


def test_bias_follows_the_centring_so_the_mean_window_keeps_its_logits() -> None:
    head = student_head()
    basis = public_basis(head, public_windows(), 3)
    A = np.random.default_rng(5).normal(0, 1, (3, K))
    moved = basis.head(A)
    mu = basis.mu[None, :]
    np.testing.assert_allclose(moved.logits(mu), head.logits(mu), atol=1e-4)
    assert not np.allclose(moved.W, head.W)


def test_fit_lowers_the_loss_and_starts_from_the_given_coefficients() -> None:
    basis = public_basis(student_head(), public_windows(), 4)
    x, y = labelled()
    start = basis.zero()
    A = basis.fit(start, x, y, steps=100, lr=0.5, l2=1e-3)
    assert A.shape == (4, K) and A.dtype == np.float32
    assert loss(basis.head(A), x, y) < loss(basis.head(start), x, y) - 0.05
    assert np.array_equal(basis.fit(A, x, y, steps=0, lr=0.5, l2=1e-3), A)


def test_prox_keeps_the_fit_near_its_start() -> None:
    basis = public_basis(student_head(), public_windows(), 4)
    x, y = labelled()
    free = basis.fit(basis.zero(), x, y, steps=100, lr=0.5, l2=0.0)
    held = basis.fit(basis.zero(), x, y, steps=100, lr=0.5, l2=0.0, prox_mu=5.0)
    assert np.linalg.norm(held) < 0.5 * np.linalg.norm(free)


def test_basis_round_trips_as_bytes() -> None:
    basis = public_basis(student_head(), public_windows(), 3)
    back = HeadBasis.from_bytes(basis.to_bytes())
    for name in ("W0", "b0", "T", "mu"):
        np.testing.assert_array_equal(getattr(back, name), getattr(basis, name))


@pytest.mark.parametrize(
    "data", [b"not an npz", b"", b"PK\x03\x04broken"], ids=["text", "empty", "bad-zip"]
)
def test_bad_basis_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(SubspaceError, match="not a head basis"):
        HeadBasis.from_bytes(data)


def test_bad_shapes_are_refused() -> None:
    head = student_head()
    with pytest.raises(SubspaceError, match="1 <= k"):
        public_basis(head, public_windows(), D + 1)
    with pytest.raises(SubspaceError, match="public embeddings"):
        public_basis(head, public_windows()[:, :4], 2)
    with pytest.raises(SubspaceError, match="fewer than"):
        public_basis(head, np.ones((50, D), np.float32), 2)
    basis = public_basis(head, public_windows(), 3)
    with pytest.raises(SubspaceError, match="coefficients"):
        basis.head(np.zeros((2, K)))
    with pytest.raises(SubspaceError, match="do not fit"):
        basis.fit(basis.zero(), np.zeros((5, D + 1)), np.zeros(5, np.int64), steps=1, lr=0.1, l2=0)
