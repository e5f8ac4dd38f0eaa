"""ULGM on toy problems where the right answer is known."""

from __future__ import annotations

import pytest
import torch

from core.contract import WESAD_WRIST_MODALITIES, InputContract
from train.models import Student, StudentConfig
from train.ulgm import AuxHeads, UnimodalLabelGenerator

K, D, N = 3, 4, 90


def _toy(seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Three separable classes in the fused space and in modality "good"; in modality "odd"
    the first 6 class-0 samples sit on class 1's cluster (that modality sees class 1)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % K
    means = torch.eye(K, D) * 4.0  # (K, D) well-separated class means
    fused = means[y] + 0.3 * torch.randn(N, D, generator=g)
    good = 2.0 * means[y] + 0.3 * torch.randn(N, D, generator=g)  # other scale on purpose
    odd_cls = y.clone()
    odd_cls[(y == 0).nonzero()[:6, 0]] = 1
    odd = means[odd_cls] + 0.3 * torch.randn(N, D, generator=g)
    return fused, {"good": good, "odd": odd}, y, odd_cls


def _run(ulgm: UnimodalLabelGenerator, epochs: int, batch: int = 30) -> None:
    fused, feats, y, _ = _toy()
    for _ in range(epochs):
        for start in range(0, N, batch):
            idx = torch.arange(start, start + batch)
            ulgm.update({k: v[idx] for k, v in feats.items()}, fused[idx], idx, y[idx])


def test_centres_move_to_the_class_means() -> None:
    fused, feats, y, _ = _toy()
    ulgm = UnimodalLabelGenerator(N, K, ["good", "odd"], {"good": D, "odd": D}, momentum=0.5)
    assert not bool(ulgm.centre_seen.any())
    truth = torch.stack([feats["good"][y == k].mean(0) for k in range(K)])  # (K, D)
    errors = []
    for _ in range(15):
        _run(ulgm, epochs=1)
        errors.append(float((ulgm.centres("good") - truth).norm()))
    assert bool(ulgm.centre_seen.all())
    assert errors[-1] < 0.5 * errors[0] or errors[-1] < 0.1
    assert errors[-1] < 0.3
    fused_truth = torch.stack([fused[y == k].mean(0) for k in range(K)])
    assert float((ulgm.centres("fused") - fused_truth).norm()) < 0.3


def test_targets_move_toward_the_class_the_modality_sees() -> None:
    _, _, y, odd_cls = _toy()
    ulgm = UnimodalLabelGenerator(N, K, ["good", "odd"], [D, D], momentum=0.7)
    _run(ulgm, epochs=1)
    first = ulgm.targets(torch.arange(N))["odd"].clone()
    _run(ulgm, epochs=10)
    t = ulgm.targets(torch.arange(N))
    moved = odd_cls != y  # the 6 samples whose "odd" modality looks like class 1
    # the odd modality's label of those samples gains class-1 mass over the epochs
    assert bool((t["odd"][moved, 1] > first[moved, 1]).all())
    assert bool((t["odd"][moved, 1] > 0.2).all())
    # every other label stays on the fused (true) class
    assert bool((t["odd"][~moved].argmax(1) == y[~moved]).all())
    assert bool((t["good"].argmax(1) == y).all())
    assert float(t["good"][torch.arange(N), y].min()) > 0.8
    torch.testing.assert_close(t["odd"].sum(1), torch.ones(N))
    w = ulgm.weights(torch.arange(N), y)
    assert float(w["odd"][moved].min()) > float(w["odd"][~moved].max())


def test_loss_weights_zero_when_unimodal_equals_fused() -> None:
    fused, _, y, _ = _toy()
    ulgm = UnimodalLabelGenerator(N, K, ["a"], {"a": D}, momentum=0.5)
    idx = torch.arange(N)
    logits = {"a": torch.randn(N, K, requires_grad=True)}
    # fresh labels are the fused label: no unimodal loss yet
    assert float(ulgm.loss(logits, idx, y).detach()) == 0.0
    # a modality whose features ARE the fused features keeps the fused label forever
    for _ in range(5):
        ulgm.update({"a": fused}, fused, idx, y)
    torch.testing.assert_close(ulgm.targets(idx)["a"], torch.eye(K)[y])
    assert float(ulgm.weights(idx, y)["a"].abs().max()) == 0.0
    assert float(ulgm.loss(logits, idx, y).detach()) == 0.0


def test_loss_matches_formula_and_trains_the_aux_heads() -> None:
    *_, y, _ = _toy()
    ulgm = UnimodalLabelGenerator(N, K, ["good", "odd"], [D, D], momentum=0.5)
    _run(ulgm, epochs=5)
    idx = torch.arange(N)
    logits = {m: torch.randn(N, K, requires_grad=True) for m in ("good", "odd")}
    e = torch.eye(K)[y]
    expected = torch.zeros(())
    for m, z in logits.items():
        u = ulgm.targets(idx)[m]
        w = torch.tanh(0.5 * (u - e).abs().sum(1))
        expected = expected + (w * -(u * torch.log_softmax(z, 1)).sum(1)).mean()
    loss = ulgm.loss(logits, idx, y)
    torch.testing.assert_close(loss, expected)
    assert float(loss.detach()) > 0
    loss.backward()
    assert logits["odd"].grad is not None and float(logits["odd"].grad.abs().sum()) > 0


def test_targets_before_any_label_raise() -> None:
    ulgm = UnimodalLabelGenerator(4, K, ["a"], [D])
    with pytest.raises(ValueError, match="no unimodal label"):
        ulgm.targets(torch.tensor([0, 1]))


def test_with_student_features_and_aux_heads() -> None:
    contract = InputContract(WESAD_WRIST_MODALITIES, ("baseline", "stress", "amusement"))
    student = Student(StudentConfig.from_contract(contract))
    heads = AuxHeads(contract.modality_names, student.config.d_model, 3)
    ulgm = UnimodalLabelGenerator(
        8, 3, contract.modality_names, [student.config.d_model] * 4, momentum=0.5
    )
    x, y, idx = (
        torch.randn(8, contract.input_length),
        torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]),
        torch.arange(8),
    )
    out = student.forward_features(x)
    ulgm.update(out.per_modality, out.fused, idx, y)
    aux = heads(out.per_modality)
    assert set(aux) == set(contract.modality_names)
    loss = torch.nn.functional.cross_entropy(out.logits, y) + ulgm.loss(aux, idx, y)
    loss.backward()
    assert student.head.weight.grad is not None
    assert set(ulgm.state_dict()) >= {"labels", "centres_bvp", "centres_fused"}
    # aux heads are not part of the deployable student
    assert not any("aux" in k or "heads" in k for k in student.state_dict())
