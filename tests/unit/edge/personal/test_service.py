"""edge.personal.service and store: a wearer's own head is used only when it beats the
shared head on their held-back confirmed labels; embeddings and labels meet in the hub DB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.personal.options import PersonalOptions
from edge.personal.service import PersonalService, SharedModel, fit_wearers, shared_head
from edge.personal.store import EmbeddingRow, PersonalStore
from tests.fakes.bundles import write_fake_bundle
from tests.fakes.inputs import small_contract

CLASSES = ("baseline", "stress", "amusement")
HOP = 5.0


def _centres(W: np.ndarray) -> np.ndarray:
    """(K, D) embeddings the shared head ``W`` classifies as class k, with a clear margin."""
    target = 4.0 * np.eye(W.shape[1]) - 2.0  # (K, K) logits
    return target @ np.linalg.pinv(W)  # (K, D): centre @ W == target


def _resident(
    store: PersonalStore,
    resident: str,
    model_id: str,
    centres: np.ndarray,
    shift: int,
    n: int = 90,
    seed: int = 0,
) -> np.ndarray:
    """``n`` windows whose true class cycles; class k looks like the shared head's class
    ``k + shift``. Every window gets its own confirmed label. Returns the labels."""
    rng = np.random.default_rng(seed)
    K = len(centres)
    y = np.repeat(np.arange(K), 5)[np.arange(n) % (5 * K)]
    rows = []
    for i, k in enumerate(y):
        emb = centres[(k + shift) % K] + rng.normal(0, 0.05, centres.shape[1])
        t0 = 1000.0 + i * HOP
        rows.append(EmbeddingRow(resident, model_id, "0", t0, t0 + HOP, emb.astype(np.float32)))
        store.add_label(resident, t0 + 0.5, t0 + HOP - 0.5, CLASSES[k], "manual")
    store.add_embeddings(rows)
    return y


@pytest.fixture
def bundle(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=8, model_id="m")
    with load_bundle(tmp_path / "b") as b:
        yield b


def test_personal_head_is_chosen_only_when_it_beats_the_shared_one(tmp_path: Path, bundle) -> None:  # type: ignore[no-untyped-def]
    shared = shared_head(bundle)
    assert shared is not None
    centres = _centres(shared.W)
    db = tmp_path / "edge.db"
    with PersonalStore(db) as store:
        _resident(store, "anna", "m", centres, shift=1)  # the shared head is wrong for her
        _resident(store, "ben", "m", centres, shift=0, seed=1)  # and right for him
    results = {
        r.resident: r
        for r in fit_wearers(db, {"m": SharedModel(shared, CLASSES, "0")}, PersonalOptions())
    }
    anna, ben = results["anna"], results["ben"]
    assert anna.chosen and anna.personal_f1 > anna.shared_f1 + 0.5
    assert not ben.chosen and ben.shared_f1 >= ben.personal_f1
    assert anna.n_holdout > 0 and anna.n_labels == 90
    assert "personal head chosen" in anna.line() and "shared head kept" in ben.line()

    service = PersonalService(PersonalOptions(), db, [bundle])
    try:
        assert set(service.personal) == {("anna", "m")}  # only the chosen head is applied
        emb = centres[2].astype(np.float32)  # looks like shared "amusement": anna's "stress"
        p_anna = service.on_window("anna", "m", 0.0, 5.0, emb)
        assert p_anna is not None and CLASSES[int(np.argmax(p_anna))] == "stress"
        assert service.on_window("ben", "m", 0.0, 5.0, emb) is None  # the engine's logits stand
        assert service.writer.flush()
    finally:
        service.close()
    with PersonalStore(db) as store:
        assert store.count_embeddings() == 180 + 2


def test_too_few_labels_fit_nothing(tmp_path: Path, bundle) -> None:  # type: ignore[no-untyped-def]
    shared = shared_head(bundle)
    assert shared is not None
    db = tmp_path / "edge.db"
    with PersonalStore(db) as store:
        _resident(store, "anna", "m", _centres(shared.W), shift=1, n=10)
    (r,) = fit_wearers(db, {"m": SharedModel(shared, CLASSES, "0")}, PersonalOptions(min_labels=20))
    assert not r.chosen and "needs 20" in r.skipped
    with PersonalStore(db) as store:
        assert store.heads() == []
    assert (
        fit_wearers(db, {"m": SharedModel(shared, CLASSES, "0")}, PersonalOptions(), only_due=True)
        == []
    )


def test_refit_only_when_enough_new_labels(tmp_path: Path, bundle) -> None:  # type: ignore[no-untyped-def]
    shared = shared_head(bundle)
    assert shared is not None
    db = tmp_path / "edge.db"
    with PersonalStore(db) as store:
        _resident(store, "anna", "m", _centres(shared.W), shift=1, n=30)
    opts = PersonalOptions(refit_new_labels=20)
    assert len(fit_wearers(db, {"m": SharedModel(shared, CLASSES, "0")}, opts, only_due=True)) == 1
    assert (
        fit_wearers(db, {"m": SharedModel(shared, CLASSES, "0")}, opts, only_due=True) == []
    )  # nothing new


def test_newest_label_wins_and_unknown_states_are_skipped(tmp_path: Path) -> None:
    with PersonalStore(tmp_path / "edge.db") as store:
        store.add_embeddings(
            [
                EmbeddingRow("a", "m", "0", t, t + 5, np.full(4, t, np.float32))
                for t in (0.0, 5.0, 10.0)
            ]
        )
        store.add_label("a", 0, 15, "baseline", "manual")
        store.add_label("a", 4, 9, "stress", "manual")  # a later correction of the middle
        store.add_label("a", 10, 15, "anxious", "manual")  # not a class: ignored
        store.add_label("b", 0, 15, "stress", "manual")  # another wearer
        emb, y, t = store.labelled("a", "m", "0", CLASSES)
    assert [CLASSES[i] for i in y] == ["baseline", "stress", "baseline"]
    assert emb[:, 0].tolist() == [0.0, 5.0, 10.0] and t.tolist() == [5.0, 10.0, 15.0]


def test_bundle_without_embedding_has_no_shared_head(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=None)
    with load_bundle(tmp_path / "b") as b:
        assert shared_head(b) is None
        service = PersonalService(PersonalOptions(), tmp_path / "edge.db", [b])
        try:
            assert service.on_window("a", b.model_id, 0, 5, np.zeros(8, np.float32)) is None
        finally:
            service.close()
