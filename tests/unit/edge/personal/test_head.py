"""edge.personal.head: the numpy head, its training, and choosing a resident's own head."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.errors import WearableEdgeError
from edge.errors import EdgeError
from edge.personal.head import (
    Head,
    HeadError,
    fit_head,
    loss,
    macro_f1,
    personalize,
)

D, K = 8, 3


def blobs(
    n: int, *, seed: int, shift: float = 0.0, spread: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes in D dimensions; ``shift`` moves every class (a person whose
    embeddings sit elsewhere than the population's)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(K, D) * 2.0
    y = rng.integers(0, K, n)
    x = centres[y] + shift + rng.normal(0, spread, (n, D))
    return x.astype(np.float32), y.astype(np.int64)


def zero_head() -> Head:
    return Head(np.zeros((D, K), np.float32), np.zeros(K, np.float32))


def test_fit_lowers_the_loss_and_separates_the_classes() -> None:
    x, y = blobs(300, seed=1)
    start = zero_head()
    fitted = fit_head(start, x, y)
    assert loss(fitted, x, y) < loss(start, x, y) - 0.5
    assert macro_f1(y, fitted.predict(x), K) > 0.9
    assert np.all(start.W == 0)  # never mutates its input


def test_fit_does_not_diverge_on_large_embeddings() -> None:
    x, y = blobs(200, seed=2)
    fitted = fit_head(zero_head(), x * 1000, y, lr=10.0)
    assert np.isfinite(fitted.W).all()
    assert macro_f1(y, fitted.predict(x * 1000), K) > 0.9


def test_prox_mu_keeps_the_weights_near_the_start() -> None:
    x, y = blobs(200, seed=3)
    start = fit_head(zero_head(), x, y)
    xs, ys = blobs(30, seed=4, shift=1.5)
    free = fit_head(start, xs, ys, prox_mu=0.0)
    held = fit_head(start, xs, ys, prox_mu=5.0)
    dist = lambda h: float(np.linalg.norm(h.W - start.W) + np.linalg.norm(h.b - start.b))  # noqa: E731
    assert dist(held) < 0.5 * dist(free)
    assert dist(free) > 0.1


def test_balanced_weights_recover_a_rare_class() -> None:
    x, y = blobs(600, seed=5, spread=1.2)
    keep = (y != 2) | (np.arange(y.size) % 10 == 0)  # class 2 is rare
    x, y = x[keep], y[keep]
    recall = lambda h: float(np.mean(h.predict(x[y == 2]) == 2))  # noqa: E731
    assert recall(fit_head(zero_head(), x, y, balanced=True)) > recall(
        fit_head(zero_head(), x, y, balanced=False)
    )


def person(n: int, *, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    return blobs(n, seed=seed, shift=shift)


def test_personalize_picks_the_personal_head_when_it_wins_on_the_newest_labels() -> None:
    pop_x, pop_y = blobs(400, seed=6)
    shared = fit_head(zero_head(), pop_x, pop_y)
    # this resident's embeddings sit far from the population's: the shared head fails them
    x, y = blobs(120, seed=7, shift=np.array([-3, 3, 0, 0, 0, 0, 0, 0]).astype(np.float32) * 1.0)
    p = personalize(shared, x, y, holdout=0.3)
    assert (p.n_fit, p.n_holdout) == (84, 36)
    assert p.chosen and p.personal_f1 > p.shared_f1
    assert p.head is not shared
    # judged on the newest rows by a head fitted on the older ones only
    older = fit_head(shared, x[:84], y[:84])
    assert p.personal_f1 == pytest.approx(macro_f1(y[84:], older.predict(x[84:]), K))
    # and what is returned is refitted on every label
    refit = fit_head(shared, x, y)
    assert np.allclose(p.head.W, refit.W) and not np.allclose(p.head.W, older.W)


def test_personalize_keeps_the_shared_head_when_the_personal_one_is_not_better() -> None:
    x, y = blobs(400, seed=8)
    shared = fit_head(zero_head(), x, y)
    # the resident's older labels are wrong (a swapped class), the newest are right
    later_x, later_y = blobs(60, seed=9)
    fit_y = (later_y[:40] + 1) % K
    p = personalize(shared, later_x, np.concatenate([fit_y, later_y[40:]]), holdout=1 / 3)
    assert not p.chosen
    assert p.head is shared
    assert p.personal_f1 <= p.shared_f1


def test_personalize_with_too_few_labels_keeps_the_shared_head() -> None:
    x, y = blobs(10, seed=10)
    shared = zero_head()
    p = personalize(shared, x, y, min_labels=20)
    assert p.head is shared and not p.chosen and (p.n_fit, p.n_holdout) == (0, 0)
    assert math.isnan(p.shared_f1) and math.isnan(p.personal_f1)


def test_arrays_and_files_round_trip(tmp_path: Path) -> None:
    x, y = blobs(100, seed=11)
    h = fit_head(zero_head(), x, y)
    again = Head.from_arrays(h.to_arrays())
    assert np.array_equal(again.W, h.W) and again.W.dtype == np.float32
    h.save(tmp_path / "head.npz")
    loaded = Head.load(tmp_path / "head.npz")
    assert np.array_equal(loaded.W, h.W) and np.array_equal(loaded.b, h.b)
    assert loaded.probabilities(x).sum(axis=1) == pytest.approx(np.ones(100), abs=1e-5)


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {"missing": tmp / "absent.npz"}
    (tmp / "text.npz").write_text("not a zip")
    files["not an npz"] = tmp / "text.npz"
    np.savez(tmp / "no_b.npz", W=np.zeros((D, K)))
    files["no b"] = tmp / "no_b.npz"
    np.savez(tmp / "shape.npz", W=np.zeros((D, K)), b=np.zeros(K + 1))
    files["shape"] = tmp / "shape.npz"
    np.savez(tmp / "nan.npz", W=np.full((D, K), np.nan), b=np.zeros(K))
    files["nan"] = tmp / "nan.npz"
    np.savez(tmp / "obj.npz", W=np.array([[object()]], dtype=object), b=np.zeros(1))
    files["pickled"] = tmp / "obj.npz"
    return files


@pytest.mark.parametrize("case", ["missing", "not an npz", "no b", "shape", "nan", "pickled"])
def test_a_bad_file_is_one_line_from_the_error_root(tmp_path: Path, case: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(HeadError) as info:
        Head.load(path)
    assert isinstance(info.value, EdgeError) and isinstance(info.value, WearableEdgeError)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg


def test_bad_training_data_is_refused() -> None:
    x, y = blobs(20, seed=12)
    with pytest.raises(HeadError, match="labels"):
        fit_head(zero_head(), x, y + K)
    with pytest.raises(HeadError, match="shape"):
        fit_head(zero_head(), x[:, :3], y)
    with pytest.raises(HeadError, match="finite"):
        zero_head().logits(np.full((2, D), np.inf))


def test_macro_f1_matches_the_hand_count() -> None:
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 1 fp 1 fn 1 -> 0.5; class 2 absent
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 3) == pytest.approx(0.5)
    assert macro_f1(np.array([0, 1]), np.array([0, 1]), 3) == 1.0
