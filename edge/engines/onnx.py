"""ONNX Runtime backend. Imports onnxruntime only when an engine is created."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.bundle import Bundle
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
        self._output_name = outputs[0].name
        self.threads = opts.intra_op_num_threads

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise EngineError(f"onnx:{self.source}: engine is closed")
        feed = quantize(x, self.entry.input) if self.entry.input.quantized else x
        try:
            (y,) = self._session.run([self._output_name], {self._input_name: feed})
        except Exception as e:  # ORT's errors derive from Exception only
            raise EngineError(f"onnx:{self.source}: inference failed: {e}") from e
        if self.entry.output.quantized:
            return dequantize(y, self.entry.output)
        return np.asarray(y, dtype=np.float32)

    def close(self) -> None:
        self._session = None
