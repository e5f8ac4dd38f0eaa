"""train.teachers: every fusion's forward and backward, late fusion in probability space, a
teacher reading only its own modalities of the packed vector, rebuild from model_args."""

from __future__ import annotations

import json

import pytest
import torch

from core.contract import WESAD_CHEST_MODALITIES, WESAD_WRIST_MODALITIES, InputContract
from train.teachers import FusionTeacher, ModalityTeacher, TeacherConfig, build_teacher

CLASSES = ("baseline", "stress", "amusement")
WRIST = InputContract(WESAD_WRIST_MODALITIES, CLASSES)
FULL = InputContract(WESAD_WRIST_MODALITIES + WESAD_CHEST_MODALITIES, CLASSES)


def _x(contract: InputContract, batch: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, contract.input_length, generator=g)


@pytest.mark.parametrize("fusion", ["early", "mid", "late"])
def test_fusion_teacher_forward_backward(fusion: str) -> None:
    cfg = TeacherConfig.from_contract(FULL, fusion=fusion)
    teacher = FusionTeacher(cfg)
    x, y = _x(FULL, batch=4), torch.tensor([0, 1, 2, 1])
    out = teacher.forward_features(x)
    assert out.logits.shape == (4, 3)
    assert out.features.shape == (4, teacher.feature_dim)
    torch.nn.functional.cross_entropy(out.logits, y).backward()
    for name, p in teacher.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in teacher.parameters())


def test_late_fusion_prob_space_averages_probabilities() -> None:
    cfg = TeacherConfig.from_contract(WRIST, fusion="late", late_space="prob")
    teacher = FusionTeacher(cfg).eval()
    x = _x(WRIST)
    xs = teacher._inputs(x)
    probs = [
        torch.softmax(clf(head(enc(xm))), -1)
        for enc, head, clf, xm in zip(
            teacher.encoders, teacher.heads, teacher.classifiers, xs, strict=True
        )
    ]
    torch.testing.assert_close(torch.softmax(teacher(x), -1), torch.stack(probs).mean(0))


def test_chest_teacher_reads_only_its_modalities() -> None:
    teacher = ModalityTeacher(TeacherConfig.from_contract(FULL, modalities=["ecg", "resp"])).eval()
    x = _x(FULL, batch=2)
    x2 = x.clone()
    x2[:, : WRIST.input_length] = 0.0  # the wrist block comes first in FULL
    torch.testing.assert_close(teacher(x2), teacher(x))
    ecg = FULL.layout()[4]
    assert ecg.modality.name == "ecg"
    x2[:, ecg.offset + 100] += 10.0
    assert not torch.allclose(teacher(x2), teacher(x))


@pytest.mark.parametrize("fusion", ["early", "mid", "late"])
def test_teacher_rebuild_from_model_args(fusion: str) -> None:
    cfg = TeacherConfig.from_contract(FULL, modalities=["ecg", "eda", "acc"], fusion=fusion)
    teacher = FusionTeacher(cfg).eval()
    args = json.loads(json.dumps(cfg.to_dict()))
    rebuilt = build_teacher(args).eval()
    rebuilt.load_state_dict(teacher.state_dict())
    x = _x(FULL, batch=2)
    torch.testing.assert_close(rebuilt(x), teacher(x), rtol=0, atol=0)


def test_teacher_config_rejects_unknown_fusion_and_modality() -> None:
    with pytest.raises(ValueError, match="fusion"):
        TeacherConfig.from_contract(WRIST, fusion="deep")
    from core.errors import ContractError

    with pytest.raises(ContractError):
        TeacherConfig.from_contract(WRIST, modalities=["ecg"])
