"""Inference engines: one model file of a bundle, run by ONNX Runtime or LiteRT.

``open_engine(bundle, backend="auto"|"onnx"|"tflite", precision=None, threads=1)`` returns
an :class:`InferenceEngine` (``run((B, L) float32) -> (B, K) float32 logits``). Importing
this package imports no runtime: each backend is imported when chosen.
"""

from edge.engines.base import InferenceEngine
from edge.engines.select import BACKENDS, Candidate, SelectionReport, open_engine, open_file

__all__ = [
    "BACKENDS",
    "Candidate",
    "InferenceEngine",
    "SelectionReport",
    "open_engine",
    "open_file",
]
