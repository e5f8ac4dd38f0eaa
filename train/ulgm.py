"""Self-MM-style unimodal label generation (ULGM), adapted to classification.

Self-MM (Yu et al., AAAI 2021) trains one auxiliary head per modality next to the fused
head. The auxiliary heads are not trained on the fused label but on *generated* unimodal
labels: a modality whose features sit closer to another class than the fused features do
gets a label shifted toward that class. Self-MM does this for a scalar regression label
(``ŷ_s = y_m + δ_s − δ_f``); here every class has a centre and the labels are soft.

For each representation ``r`` (the fused feature ``f`` and every modality ``s``) and
class ``k``, with ``h^r_i`` the feature of sample ``i`` and ``c^r_k`` the class centre:

    d^r_ik = ‖h^r_i − c^r_k‖₂                          distance to each class centre
    ρ^r_ik = d^r_ik / mean_j d^r_ij                     relative, so feature spaces of different
                                                        scale compare (Self-MM's δ divides too)
    q^r_i  = softmax_k(−ρ^r_ik / τ)                     where the sample sits among the classes
    ŷ^s_i  = normalise(max(e_{y_i} + q^s_i − q^f_i, 0)) the fused label shifted by δ_s − δ_f

``e_y`` is the one-hot fused (ground-truth) label. If modality ``s`` places the sample among
the classes as the fused feature does, ``ŷ^s = e_y``; mass moves to class ``k`` by as much
as the modality is nearer ``k``'s centre than the fused feature is. Then, as in Self-MM:

- centres: per class, an exponential moving average (``centre_momentum``) of the batch mean
  of the features of samples with that (fused) label;
- labels: per sample, ``u^s_i ← m·u^s_i + (1−m)·ŷ^s_i`` each time the sample is seen (once
  per epoch), starting from ``u^s_i = e_{y_i}``;
- loss: ``Σ_s mean_i w^s_i · CE(u^s_i, z^s_i)`` with ``w^s_i = tanh(TV(u^s_i, e_{y_i}))``,
  ``TV`` the total-variation distance (Self-MM: ``tanh(|y_s − y_m|)``). It is zero while the
  unimodal labels equal the fused one, as in Self-MM: the heads learn only where the
  modalities disagree with the fusion.

Use in a training loop (an option; the fused loss is the loop's own CE / distillation):

    out = student.forward_features(x)                      # x: (B, L), idx: (B,) sample ids
    aux = aux_heads(out.per_modality)
    if epoch > 0:                                          # Self-MM skips the first epoch
        ulgm.update(out.per_modality, out.fused, idx, y)
    loss = fused_loss + ulgm_weight * ulgm.loss(aux, idx, y)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AuxHeads", "UnimodalLabelGenerator"]

FUSED = "fused"  # key of the fused representation's centres


class AuxHeads(nn.Module):
    """One linear classifier per modality on the student's per-modality features.

    Training only: not part of the student, never exported."""

    def __init__(self, modalities: Sequence[str], d_model: int, n_classes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({m: nn.Linear(d_model, n_classes) for m in modalities})

    def forward(self, per_modality: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: head(per_modality[m]) for m, head in self.heads.items()}  # name -> (B, K)


class UnimodalLabelGenerator(nn.Module):
    """Per-sample soft unimodal labels for the auxiliary heads (formulas in the module doc).

    ``n_samples``: size of the training set; ``indices`` passed to the methods are positions
    in it (the data loader must yield them). ``feature_dims``: modality -> feature size
    (a mapping, or a sequence aligned with ``modalities``). State lives in buffers, so
    ``.to(device)`` and ``state_dict()`` work as for any module.
    """

    def __init__(
        self,
        n_samples: int,
        n_classes: int,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int] | Sequence[int],
        momentum: float = 0.9,  # per-sample label EMA; ~10 epochs to move a label halfway
        *,
        fused_dim: int | None = None,  # default: the first modality's feature size
        centre_momentum: float = 0.9,  # per-batch centre EMA; smooths batch-to-batch noise
        tau: float = 1.0,  # softness of q over classes; relative distances are O(1)
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        if not self.modalities or FUSED in self.modalities:
            raise ValueError(f"need modalities, none named {FUSED!r}")
        dims = (
            dict(feature_dims)
            if isinstance(feature_dims, Mapping)
            else dict(zip(self.modalities, feature_dims, strict=True))
        )
        if not (0.0 <= momentum < 1.0 and 0.0 <= centre_momentum < 1.0 and tau > 0):
            raise ValueError("momenta must be in [0, 1) and tau positive")
        self.n_classes = n_classes
        self.momentum, self.centre_momentum, self.tau = momentum, centre_momentum, tau
        dims[FUSED] = fused_dim if fused_dim is not None else dims[self.modalities[0]]
        for key in (FUSED, *self.modalities):
            self.register_buffer(f"centres_{key}", torch.zeros(n_classes, dims[key]))  # (K, D)
        self.register_buffer("centre_seen", torch.zeros(n_classes, dtype=torch.bool))  # (K,)
        self.register_buffer(
            "labels", torch.zeros(n_samples, len(self.modalities), n_classes)
        )  # (N, M, K)
        self.register_buffer("label_seen", torch.zeros(n_samples, dtype=torch.bool))  # (N,)

    def centres(self, key: str) -> torch.Tensor:
        """``(K, D)`` class centres of ``key`` (a modality or ``"fused"``)."""
        c = getattr(self, f"centres_{key}")
        assert isinstance(c, torch.Tensor)
        return c

    # -- centres ----------------------------------------------------------------------------
    @torch.no_grad()
    def update_centres(
        self, features: Mapping[str, torch.Tensor], fused_features: torch.Tensor, y: torch.Tensor
    ) -> None:
        """EMA of each class's mean feature, in every modality's space and the fused one."""
        onehot = F.one_hot(y, self.n_classes).float()  # (B, K)
        counts = onehot.sum(0)  # (K,)
        present = counts > 0
        new = present & ~self.centre_seen
        old = present & self.centre_seen
        reps = {FUSED: fused_features, **{m: features[m] for m in self.modalities}}
        for key, h in reps.items():
            c = self.centres(key)
            means = (onehot.T @ h.detach().float()) / counts.clamp_min(1).unsqueeze(1)  # (K, D)
            c[new] = means[new]
            c[old] = self.centre_momentum * c[old] + (1 - self.centre_momentum) * means[old]
        self.centre_seen |= present

    def _assign(self, h: torch.Tensor, key: str) -> torch.Tensor:
        """``q``: (B, D) -> (B, K) soft position among the class centres (unseen classes get 0)."""
        d = torch.cdist(h.detach().float(), self.centres(key))  # (B, K)
        seen = self.centre_seen.unsqueeze(0)  # (1, K)
        mean_d = (d * seen).sum(1, keepdim=True) / seen.sum().clamp_min(1)  # (B, 1)
        rho = d / mean_d.clamp_min(1e-12)
        return F.softmax((-rho / self.tau).masked_fill(~seen, float("-inf")), dim=1)

    # -- labels -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, features: Mapping[str, torch.Tensor], fused_features: torch.Tensor, y: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """This batch's fresh targets ``ŷ^s`` (before the momentum update): name -> (B, K)."""
        e = F.one_hot(y, self.n_classes).float()  # (B, K)
        q_f = self._assign(fused_features, FUSED)
        out = {}
        for m in self.modalities:
            t = (e + self._assign(features[m], m) - q_f).clamp_min(0)  # (B, K)
            out[m] = t / t.sum(1, keepdim=True)  # the true class keeps >= 0 mass, sum > 0
        return out

    def _init_rows(self, indices: torch.Tensor, y: torch.Tensor) -> None:
        fresh = ~self.label_seen[indices]
        if bool(fresh.any()):
            e = F.one_hot(y[fresh], self.n_classes).float()  # (b, K)
            self.labels[indices[fresh]] = e.unsqueeze(1).expand(-1, len(self.modalities), -1)
            self.label_seen[indices[fresh]] = True

    @torch.no_grad()
    def update_labels(
        self,
        features: Mapping[str, torch.Tensor],
        fused_features: torch.Tensor,
        indices: torch.Tensor,
        y: torch.Tensor,
    ) -> None:
        """Momentum update of the stored unimodal labels of this batch's samples."""
        self._init_rows(indices, y)
        fresh = self.generate(features, fused_features, y)
        new = torch.stack([fresh[m] for m in self.modalities], dim=1)  # (B, M, K)
        self.labels[indices] = self.momentum * self.labels[indices] + (1 - self.momentum) * new

    @torch.no_grad()
    def update(
        self,
        features: Mapping[str, torch.Tensor],
        fused_features: torch.Tensor,
        indices: torch.Tensor,
        y: torch.Tensor,
    ) -> None:
        """One training batch: centres, then labels."""
        self.update_centres(features, fused_features, y)
        self.update_labels(features, fused_features, indices, y)

    def targets(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stored unimodal labels ``u^s``: name -> (B, K)."""
        if not bool(self.label_seen[indices].all()):
            raise ValueError("some samples have no unimodal label yet; call update() or loss()")
        u = self.labels[indices]  # (B, M, K)
        return {m: u[:, i] for i, m in enumerate(self.modalities)}

    def weights(self, indices: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """``w^s = tanh(TV(u^s, e_y))``: name -> (B,)."""
        e = F.one_hot(y, self.n_classes).float()
        return {m: torch.tanh(0.5 * (u - e).abs().sum(1)) for m, u in self.targets(indices).items()}

    def loss(
        self, aux_logits: Mapping[str, torch.Tensor], indices: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_s mean_i w^s_i · CE(u^s_i, z^s_i)`` over the auxiliary heads' logits."""
        with torch.no_grad():
            self._init_rows(indices, y)
            targets, weights = self.targets(indices), self.weights(indices, y)
        total = aux_logits[self.modalities[0]].new_zeros(())
        for m in self.modalities:
            ce = -(targets[m] * F.log_softmax(aux_logits[m], dim=1)).sum(1)  # (B,)
            total = total + (weights[m] * ce).mean()
        return total
