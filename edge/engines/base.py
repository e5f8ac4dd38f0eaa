"""The inference engine contract: packed windows in, logits (and the embedding) out, one model file per engine.

An engine runs one model file of a bundle (``edge.bundle.FileEntry``) with one runtime.
Backends live in their own modules (``onnx.py``, ``tflite.py``) and import their runtime
only when constructed, so ``import edge.engines`` never needs onnxruntime or LiteRT.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Final

import numpy as np

from edge.bundle import FileEntry, TensorSpec
from edge.errors import EngineError

if TYPE_CHECKING:
    from edge.engines.select import SelectionReport

__all__ = ["InferenceEngine", "dequantize", "quantize"]

_INT_RANGES: Final = {"int8": (-128, 127), "uint8": (0, 255)}  # the two TFLite/ORT int I/O types


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """float32 -> the spec's integer dtype: ``clip(round(x / scale) + zero_point)``."""
    assert spec.scale is not None and spec.zero_point is not None  # checked by TensorSpec
    lo, hi = _INT_RANGES[spec.dtype]
    q = np.round(x / np.float32(spec.scale)) + spec.zero_point
    return np.clip(q, lo, hi).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The spec's integer dtype -> float32: ``(q - zero_point) * scale``."""
    assert spec.scale is not None and spec.zero_point is not None
    return ((q.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)).astype(
        np.float32
    )


class InferenceEngine(abc.ABC):
    """Runs ``(B, L)`` float32 packed windows -> ``(B, K)`` float32 logits; with
    :meth:`run_outputs` also the ``(B, D)`` embedding the classifier reads, when the
    bundle exports one (``embedding_dim`` is then D, else None).

    Models are exported with a static batch of 1 (the hub classifies one window at a time),
    so a batch is run row by row. Use as a context manager or call :meth:`close`.
    """

    name: str = "?"  # backend name: "onnx" | "tflite"
    # set by open_engine: what was measured and why this file was chosen (None if named)
    selection: SelectionReport | None = None

    def __init__(self, entry: FileEntry, *, source: str) -> None:
        self.entry = entry
        self.source = source  # the model file, for errors and logs
        self.input_length = entry.input.shape[-1]
        self.n_classes = entry.output.shape[-1]
        self.embedding_dim = entry.embedding.shape[-1] if entry.embedding is not None else None

    @property
    def precision(self) -> str:
        return self.entry.precision

    @property
    def key(self) -> str:
        return self.entry.key

    def run(self, x: np.ndarray) -> np.ndarray:
        """``x`` (B, L) float32 (or (L,)) -> logits (B, K) float32."""
        return self._run(x, with_embedding=False)[0]

    def run_outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``x`` (B, L) -> (logits (B, K), embedding (B, D) or None without one), float32."""
        return self._run(x, with_embedding=self.embedding_dim is not None)

    def _run(self, x: np.ndarray, *, with_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.input_length:
            raise EngineError(
                f"{self.name}:{self.source}: input shape {x.shape} != (B, {self.input_length})"
            )
        out = np.empty((x.shape[0], self.n_classes), np.float32)  # (B, K)
        emb = np.empty((x.shape[0], self.embedding_dim or 0), np.float32) if with_embedding else None
        for i in range(x.shape[0]):
            logits, e = self._run_one(np.ascontiguousarray(x[i : i + 1]), with_embedding)
            out[i] = logits[0]
            if emb is not None:
                if e is None:
                    raise EngineError(f"{self.name}:{self.source}: the model returned no embedding")
                emb[i] = e[0]
        return out, emb

    @abc.abstractmethod
    def _run_one(self, x: np.ndarray, with_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(1, L) float32 -> ((1, K) float32, (1, D) float32 if ``with_embedding`` else None)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the runtime session; the engine cannot run afterwards."""

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r}, {self.source!r})"
