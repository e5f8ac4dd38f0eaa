"""train.attention: modality importance is a distribution over the modalities; patch maps
have one value per patch."""

from __future__ import annotations

import pytest
import torch

from core.contract import WESAD_WRIST_MODALITIES, InputContract
from train.attention import modality_importance, patch_importance
from train.models import Student, StudentConfig

CLASSES = ("baseline", "stress", "amusement")
WRIST = InputContract(WESAD_WRIST_MODALITIES, CLASSES)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_modality_importance_is_a_distribution(pooling: str) -> None:
    model = Student(StudentConfig.from_contract(WRIST, pooling=pooling)).eval()
    x = torch.randn(2, WRIST.input_length, generator=torch.Generator().manual_seed(0))
    imp = modality_importance(model, x)
    assert set(imp) == set(WRIST.modality_names)
    total = torch.stack(list(imp.values())).sum(0)
    torch.testing.assert_close(total, torch.ones(2))
    patches = patch_importance(model, x)
    assert patches["bvp"].shape == (2, 12)
    assert all(bool((v >= 0).all()) for v in patches.values())
