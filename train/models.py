"""The distilled student, in one file (nanoGPT style), and the packed-input helpers teachers share.

Every model takes ONE packed float32 input ``(B, L)`` laid out by an
:class:`core.contract.InputContract` (modalities in contract order, each channel-major) and
slices it with constant offsets stored in its config, so a config alone (``model_args`` in a
checkpoint) rebuilds the model: ``Student(StudentConfig(**ckpt["model_args"]))``.

- :class:`Student`: a compact Transformer over the wrist modalities, made only of ops that
  export to ONNX and TFLite with static shapes (constant slices, reshape, transpose, matmul,
  softmax, layernorm, gelu, add, mean). Attention is written by hand so it exports as plain
  matmuls and its maps can be read for the report (:mod:`train.attention`).

The teachers (:mod:`train.teachers`) read the same packed vector through
:func:`slice_modality` and keep their configs hashable with :func:`tuplify_fields`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from core.contract import InputContract
from train.packed import check_layout, layout_fields

__all__ = [
    "ACTIVATIONS",
    "POOLINGS",
    "STEM_POOLS",
    "TOKENIZERS",
    "Student",
    "StudentConfig",
    "StudentOutput",
    "slice_modality",
    "tuplify_fields",
]

POOLINGS: Final = ("mean", "cls")  # how the student fuses its tokens into one vector
TOKENIZERS: Final = ("conv", "linear")  # how the student turns one patch into one token
STEM_POOLS: Final = ("mean", "meanstd")  # how a conv tokenizer summarises a patch over time
ACTIVATIONS: Final = ("gelu", "relu")  # both are single ops in ONNX (opset 17+) and TFLite
STD_EPS: Final = 1e-5  # conv tokenizer std floor; far below a unit-scale feature's spread


# -- helpers shared by all configs (the packed layout itself: train.packed) ----------------
def tuplify_fields(cfg: Any) -> None:
    # model_args that went through JSON come back as lists; keep configs hashable and equal
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, list):
            object.__setattr__(cfg, f.name, tuple(v))


def slice_modality(x: torch.Tensor, offset: int, channels: int, samples: int) -> torch.Tensor:
    """(B, L) -> (B, C, T) for one modality; constant bounds, so it exports as a static Slice."""
    return x[:, offset : offset + channels * samples].reshape(x.shape[0], channels, samples)


# -- student --------------------------------------------------------------------------------
@dataclass
class StudentConfig:
    """Hyperparameters and input layout of :class:`Student` (all fields JSON-able)."""

    # input layout, filled by from_contract: one entry per modality, in packed order
    modalities: tuple[str, ...] = ()
    offsets: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    samples: tuple[int, ...] = ()  # samples per channel in one window
    rates_hz: tuple[float, ...] = ()
    input_length: int = 0  # L of the packed vector
    n_classes: int = 3  # baseline / stress / amusement
    patch_s: float = 5.0  # 5 s holds several heartbeats and one SCR onset; 12 tokens per minute
    # width: narrower lost clearly in cross-validation; 48 stays well inside the parameter and
    # MAC budgets (train.acceptance). Measured scores and sizes: train/RESULTS.md
    d_model: int = 48
    n_heads: int = 4  # 12-dim heads: enough for time x modality routing at this width
    n_layers: int = 2  # two layers: one to mix within a modality, one across
    mlp_ratio: int = 2  # MLP hidden = 2 * d_model; the MLP dominates MACs, 4x buys little here
    dropout: float = 0.1  # small data (WESAD has 15 people): regularise
    pooling: str = "cls"  # "cls" (a learned query token; attention maps read off its row) or "mean"
    activation: str = "gelu"  # "gelu" or "relu"
    # "conv": a strided Conv1d stem per modality inside each patch (finds beats and SCR
    # shapes wherever they fall in the patch); "linear": one Linear over the raw patch
    # samples (phase-sensitive, so it sees HR/HRV in BVP poorly; kept for comparison)
    tokenizer: str = "conv"
    stem_channels: int = 16  # conv width; 16 is what the CNN teachers need to read BVP well
    stem_rate_hz: float = 8.0  # the first conv strides each modality down to about this rate
    # stride-2 convs after the first: 8 Hz -> 2 Hz inside a 5 s patch (one more, to 1 Hz,
    # scored lower: train/RESULTS.md)
    stem_layers: int = 2
    stem_kernel: int = 5  # taps of those convs (5 at 8 Hz spans ~0.6 s, about one heartbeat)
    # per-patch summary: "mean", or "meanstd" (level + variability, which a mean hides)
    stem_pool: str = "meanstd"
    patch_hidden: int = 0  # linear tokenizer only: >0 makes it Linear-act-Linear
    # conv tokenizer only: these modalities get one more token, their stem features pooled
    # (mean, std) over the whole window as the CNN teachers pool them: a 5 s patch holds a
    # handful of beats, too few for heart-rate variability. bvp alone: tokens for the other
    # modalities gained less than the fold noise and cost int8 bytes the bundle's size budget
    # does not have (train/RESULTS.md)
    global_modalities: tuple[str, ...] = ("bvp",)

    def __post_init__(self) -> None:
        tuplify_fields(self)
        check_layout(self)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r} not in {POOLINGS}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} not in {ACTIVATIONS}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer {self.tokenizer!r} not in {TOKENIZERS}")
        if self.stem_pool not in STEM_POOLS:
            raise ValueError(f"stem_pool {self.stem_pool!r} not in {STEM_POOLS}")
        if self.stem_channels < 1 or self.stem_layers < 0 or self.stem_rate_hz <= 0:
            raise ValueError("stem_channels >= 1, stem_layers >= 0 and stem_rate_hz > 0 needed")
        if self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise ValueError(f"stem_kernel={self.stem_kernel} must be odd (centred taps)")
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if min(self.patch_counts) < 1:
            raise ValueError(f"patch_s={self.patch_s} is longer than the window")

    @classmethod
    def from_contract(
        cls, contract: InputContract, modalities: Sequence[str] | None = None, **overrides: Any
    ) -> StudentConfig:
        """Layout from ``contract`` (all its modalities unless ``modalities``), hyperparameters
        from the defaults and ``overrides``. For deployment build it from the contract the
        checkpoint carries (the wrist subset), so offsets index the hub's packed vector."""
        return cls(**{**layout_fields(contract, modalities), **overrides})

    def to_dict(self) -> dict[str, Any]:
        """``model_args`` for a checkpoint (JSON-able)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def patch_samples(self) -> tuple[int, ...]:
        """Samples per channel in one patch, per modality (at least one)."""
        return tuple(max(1, round(self.patch_s * r)) for r in self.rates_hz)

    @property
    def patch_counts(self) -> tuple[int, ...]:
        """Tokens per modality; a tail shorter than one patch is dropped (static shapes)."""
        return tuple(s // p for s, p in zip(self.samples, self.patch_samples, strict=True))

    @property
    def global_names(self) -> tuple[str, ...]:
        """Modalities with a window-level token, in contract order (conv tokenizer only)."""
        if self.tokenizer != "conv":
            return ()
        return tuple(m for m in self.modalities if m in self.global_modalities)

    @property
    def n_tokens(self) -> int:
        """Sequence length the encoder sees: the CLS token if any, the patch tokens, then one
        window-level token per modality if any."""
        return sum(self.patch_counts) + (self.pooling == "cls") + len(self.global_names)


class StudentOutput(NamedTuple):
    logits: torch.Tensor  # (B, K)
    fused: torch.Tensor  # (B, D): what the classifier reads
    per_modality: dict[str, torch.Tensor]  # name -> (B, D): mean of that modality's tokens
    attention: torch.Tensor  # (B, nh, N, N) of the last layer; rows are queries


def _act(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU()


class SelfAttention(nn.Module):
    """Multi-head self-attention written out, so it exports as matmul + softmax and the
    attention map is a plain tensor (no fused SDPA kernel, no mask, no dynamic shapes)."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, N, D = x.shape
        hs = D // self.n_heads
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, N, D)
        q = q.reshape(B, N, self.n_heads, hs).transpose(1, 2)  # (B, nh, N, hs)
        k = k.reshape(B, N, self.n_heads, hs).transpose(1, 2)  # (B, nh, N, hs)
        v = v.reshape(B, N, self.n_heads, hs).transpose(1, 2)  # (B, nh, N, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, N, N)
        att = F.softmax(att, dim=-1)
        y = self.drop(att) @ v  # (B, nh, N, hs)
        y = y.transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.drop(self.proj(y)), att


class MLP(nn.Module):
    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        hidden = config.mlp_ratio * config.d_model
        self.fc = nn.Linear(config.d_model, hidden)
        self.act = _act(config.activation)
        self.out = nn.Linear(hidden, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.out(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-norm encoder layer."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, att = self.attn(self.ln_1(x))
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att


class PatchEmbed(nn.Module):
    """One modality's (B, C, T) -> (B, P, D) patch tokens."""

    def __init__(self, channels: int, patch: int, n_patches: int, config: StudentConfig) -> None:
        super().__init__()
        self.channels, self.patch, self.n_patches = channels, patch, n_patches
        d_in = channels * patch
        if config.patch_hidden > 0:
            self.proj: nn.Module = nn.Sequential(
                nn.Linear(d_in, config.patch_hidden),
                _act(config.activation),
                nn.Linear(config.patch_hidden, config.d_model),
            )
        else:
            self.proj = nn.Linear(d_in, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = x[:, :, : self.n_patches * self.patch]  # (B, C, P*p) drop the tail (constant bound)
        x = x.reshape(B, self.channels, self.n_patches, self.patch)  # (B, C, P, p)
        x = x.transpose(1, 2).reshape(B, self.n_patches, self.channels * self.patch)  # (B, P, C*p)
        return self.proj(x)  # (B, P, D)


class ConvPatchEmbed(nn.Module):
    """One modality's (B, C, T) -> (B, P, D) patch tokens through a small strided conv stem.

    Each patch is convolved on its own (patches are folded into the batch, zero padding at
    patch edges), so token i depends only on the samples of patch i: the time alignment of
    tokens across modalities, and what an attention map means, are those of the linear
    tokenizer. The stem mirrors the teachers' encoder: one conv striding down to about
    ``stem_rate_hz``, then ``stem_layers`` stride-2 convs, each followed by the activation;
    the features are summarised over the patch by their mean (and standard deviation, which
    carries beat-to-beat variability) and projected to ``d_model``. Conv + activation + mean
    are plain Conv / ReduceMean in ONNX and CONV_2D / MEAN in TFLite, and quantize to int8.

    With ``global_token`` the same stem features are also pooled over the whole window into
    one more token, as the CNN teachers pool them: heart-rate variability needs more beats
    than a patch holds (``StudentConfig.global_modalities`` says which modalities get one).
    """

    def __init__(
        self,
        channels: int,
        patch: int,
        n_patches: int,
        rate_hz: float,
        config: StudentConfig,
        global_token: bool = False,
    ) -> None:
        super().__init__()
        self.channels, self.patch, self.n_patches = channels, patch, n_patches
        self.meanstd = config.stem_pool == "meanstd"
        w = config.stem_channels
        stride = max(1, min(patch, round(rate_hz / config.stem_rate_hz)))
        k = 2 * stride + 1  # odd, spans two output steps so no input sample is skipped
        layers: list[nn.Module] = [
            nn.Conv1d(channels, w, k, stride=stride, padding=k // 2),
            _act(config.activation),
        ]
        ks = config.stem_kernel
        for _ in range(config.stem_layers):
            layers += [nn.Conv1d(w, w, ks, stride=2, padding=ks // 2), _act(config.activation)]
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Conv1d):
                # variance-preserving init: with PyTorch's default (a third of this variance)
                # the unnormalized stack shrinks the signal layer by layer until a token is
                # mostly its position embedding, and a small data set sits at chance for
                # hundreds of steps (He's, twice this, fixed that as well; train/RESULTS.md)
                nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
                nn.init.zeros_(layer.bias)
        self.proj = nn.Linear(w * (1 + self.meanstd), config.d_model)
        # the window-level token: the stem features' mean and std over every patch at once,
        # projected on their own: they summarise a window, not a patch (sharing ``proj`` scored
        # lower, train/RESULTS.md)
        self.global_proj = nn.Linear(2 * w, config.d_model) if global_token else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, T) -> patch tokens (B, P, D) and the window-level token (B, 1, D) or None."""
        B = x.shape[0]
        P, p = self.n_patches, self.patch
        x = x[:, :, : P * p].reshape(B, self.channels, P, p)  # (B, C, P, p) drop the tail
        x = x.transpose(1, 2).reshape(B * P, self.channels, p)  # (B*P, C, p) one patch per row
        h = self.net(x)  # (B*P, w, p')
        feats = _mean_std(h) if self.meanstd else h.mean(dim=2)  # (B*P, 2w) or (B*P, w)
        tokens = self.proj(feats).reshape(B, P, -1)  # (B, P, D)
        if self.global_proj is None:
            return tokens, None
        w, q = h.shape[1], h.shape[2]
        hw = h.reshape(B, P, w, q).transpose(1, 2).reshape(B, w, P * q)  # (B, w, P*p')
        return tokens, self.global_proj(_mean_std(hw)).reshape(B, 1, -1)  # (B, 1, D) no Unsqueeze


def _mean_std(h: torch.Tensor) -> torch.Tensor:
    """(N, w, t) -> (N, 2w): mean and standard deviation over time, written with ops that
    export and quantize cleanly (export/ keeps this variance chain in float)."""
    mean = h.mean(dim=2)  # (N, w)
    dev = h - h.mean(dim=2, keepdim=True)  # (N, w, t) keepdim: no Unsqueeze op
    var = (dev * dev).mean(dim=2)  # (N, w); a product, not Pow, in ONNX and TFLite
    # the epsilon keeps the gradient of sqrt finite on a flat (e.g. dead-ReLU) channel
    return torch.cat([mean, torch.sqrt(var + STD_EPS)], dim=1)


class Student(nn.Module):
    """Per-modality patch tokens + modality and time embeddings -> pre-norm Transformer ->
    CLS or mean pooling -> linear classifier. Patches have the same duration in every
    modality, so token i of each modality covers the same seconds and shares a time embedding.
    """

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        D = config.d_model
        self.embed = nn.ModuleList(
            ConvPatchEmbed(c, p, n, r, config, name in config.global_names)
            if config.tokenizer == "conv"
            else PatchEmbed(c, p, n, config)
            for name, c, p, n, r in zip(
                config.modalities,
                config.channels,
                config.patch_samples,
                config.patch_counts,
                config.rates_hz,
                strict=True,
            )
        )
        self.modality_emb = nn.Parameter(torch.zeros(len(config.modalities), D))  # (M, D)
        self.pos_emb = nn.Parameter(torch.zeros(max(config.patch_counts), D))  # (P_max, D)
        self.cls = nn.Parameter(torch.zeros(1, 1, D)) if config.pooling == "cls" else None
        # marks window-level tokens apart from patch tokens (they have no time position)
        self.global_emb = nn.Parameter(torch.zeros(D)) if config.global_names else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, config.n_classes)
        self.apply(self._init_weights)
        nn.init.normal_(self.modality_emb, std=0.02)
        nn.init.normal_(self.pos_emb, std=0.02)
        if self.cls is not None:
            nn.init.normal_(self.cls, std=0.02)
        if self.global_emb is not None:
            nn.init.normal_(self.global_emb, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @property
    def token_slices(self) -> dict[str, tuple[int, int]]:
        """Modality -> [start, stop) of its tokens in the encoder sequence."""
        out, start = {}, int(self.config.pooling == "cls")
        for name, n in zip(self.config.modalities, self.config.patch_counts, strict=True):
            out[name] = (start, start + n)
            start += n
        return out

    @property
    def global_index(self) -> dict[str, int]:
        """Modality -> position of its window-level token (after every patch token); empty
        without global tokens."""
        names = self.config.global_names
        start = self.config.n_tokens - len(names)
        return {name: start + i for i, name in enumerate(names)}

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        toks, glob = [], []
        for i, emb in enumerate(self.embed):
            xm = slice_modality(x, c.offsets[i], c.channels[i], c.samples[i])  # (B, C, T)
            n = c.patch_counts[i]
            if isinstance(emb, ConvPatchEmbed):
                patches, g = emb(xm)  # (B, P_m, D), (B, 1, D) or None
            else:
                patches, g = emb(xm), None
            toks.append(patches + self.modality_emb[i] + self.pos_emb[:n])  # (B, P_m, D)
            if g is not None and self.global_emb is not None:
                glob.append(g + self.modality_emb[i] + self.global_emb)  # (B, 1, D)
        if self.cls is not None:
            toks.insert(0, self.cls.expand(x.shape[0], -1, -1))  # (B, 1, D)
        h = self.drop(torch.cat(toks + glob, dim=1))  # (B, N, D)
        att = h.new_zeros(())
        for block in self.blocks:
            h, att = block(h)
        return self.ln_f(h), att  # (B, N, D), (B, nh, N, N)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        if self.cls is not None:
            return h[:, 0]  # (B, D)
        return h.mean(dim=1)  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) packed windows -> (B, K) logits. The export path."""
        h, _ = self._encode(x)
        return self.head(self._pool(h))

    def forward_features(self, x: torch.Tensor) -> StudentOutput:
        """Everything training and the report need: logits, fused and per-modality features
        (for hints and ULGM auxiliary heads) and the last layer's attention."""
        h, att = self._encode(x)
        fused = self._pool(h)
        glob = self.global_index
        per_modality = {}  # the mean of each modality's tokens, its window-level one included
        for name, (a, b) in self.token_slices.items():
            mine = h[:, a:b]  # (B, P_m, D)
            if name in glob:
                mine = torch.cat([mine, h[:, glob[name], None]], dim=1)  # (B, P_m + 1, D)
            per_modality[name] = mine.mean(dim=1)  # (B, D)
        return StudentOutput(self.head(fused), fused, per_modality, att)
