"""ONNX Runtime backend. Imports onnxruntime only when an engine is created."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.bundle import Bundle, TensorSpec
from edge.engines.base import InferenceEngine, dequantize, quantize
from edge.errors import BundleError, EngineError

__all__ = ["OnnxEngine"]


class OnnxEngine(InferenceEngine):
    """One ONNX file of a bundle in an ``onnxruntime.InferenceSession`` on the CPU.

    ``threads`` sets intra-op parallelism; execution is sequential (one small graph, and a
    hub shares its cores with BLE and the database).
    """

    name = "onnx"

    def __init__(self, bundle: Bundle, key: str, *, threads: int = 1) -> None:
        entry = bundle.entry(key)
        super().__init__(entry, source=str(bundle.path_of(key)))
        if entry.format != "onnx":
            raise EngineError(f"onnx:{self.source}: {key!r} is a {entry.format} file")
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise EngineError(f"onnx:{self.source}: onnxruntime is not installed ({e})") from e
        try:
            model = bundle.read_verified(key)  # the bytes that were hashed, not a re-open
        except BundleError as e:
            raise EngineError(f"onnx:{self.source}: {e}") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: ORT's info logs are noise on a hub
        try:
            self._session: Any = ort.InferenceSession(
                model, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT's errors derive from Exception only
            raise EngineError(f"onnx:{self.source}: cannot load model: {e}") from e
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise EngineError(f"onnx:{self.source}: expected one input, got {len(inputs)}")
        self._input_name = inputs[0].name
        names = [o.name for o in outputs]
        self._output_name = entry.output.name if entry.output.name in names else names[0]
        self._embedding_name: str | None = None
        if entry.embedding is not None:
            if entry.embedding.name not in names:
                raise EngineError(f"onnx:{self.source}: no output {entry.embedding.name!r} "
                                  f"(the manifest's embedding); outputs are {names}")
            self._embedding_name = entry.embedding.name
        self.threads = opts.intra_op_num_threads

    def _run_one(self, x: np.ndarray, with_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self._session is None:
            raise EngineError(f"onnx:{self.source}: engine is closed")
        feed = quantize(x, self.entry.input) if self.entry.input.quantized else x
        names = [self._output_name]
        if with_embedding and self._embedding_name is not None:
            names.append(self._embedding_name)
        try:
            ys = self._session.run(names, {self._input_name: feed})
        except Exception as e:  # ORT's errors derive from Exception only
            raise EngineError(f"onnx:{self.source}: inference failed: {e}") from e
        logits = _to_float(ys[0], self.entry.output)
        emb = _to_float(ys[1], self.entry.embedding) if len(ys) > 1 and self.entry.embedding else None
        return logits, emb

    def close(self) -> None:
        self._session = None


def _to_float(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    return dequantize(y, spec) if spec.quantized else np.asarray(y, dtype=np.float32)
