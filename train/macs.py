"""Parameter and multiply-accumulate counts, for the ≤100k params / ≤10M MACs budget.

What is counted: one MAC per multiply-add in matrix products and convolutions, i.e. every
``Linear``, ``Conv1d`` and explicit matmul (the student's attention ``q·kᵀ`` and ``att·v``),
for ONE window (batch 1) in eval mode. Not counted: element-wise work (softmax, LayerNorm,
GELU, additions, pooling), which is a few percent at these sizes and is what MAC budgets
conventionally leave out. Counting is done by ``torch.utils.flop_counter.FlopCounterMode``,
which sees the aten ops actually run (mm/addmm/bmm/convolution); its FLOPs are 2·MACs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_params"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_len: int) -> int:
    """MACs of one forward pass on one packed window ``(1, input_len)``."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, input_len, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)
