"""LiteRT (TFLite) backend: ``ai_edge_litert`` if installed, else ``tflite_runtime``.

Imports the interpreter only when an engine is created. XNNPACK (LiteRT's default CPU
delegate) is on unless ``xnnpack=False``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

from edge.bundle import Bundle, TensorSpec
from edge.engines.base import InferenceEngine, dequantize, quantize
from edge.errors import BundleError, EngineError

__all__ = ["TfliteEngine", "load_interpreter_class"]

log = logging.getLogger(__name__)

# LiteRT's C++ logger prints this on every start, to the process's stderr, past Python's
# logging and every environment switch: it says nothing a user can act on
_CHATTER: Final = re.compile(r"Created TensorFlow Lite XNNPACK delegate")


@contextlib.contextmanager
def _native_stderr_into_log() -> Iterator[None]:
    """Route what native code writes to fd 2 meanwhile into the log: the XNNPACK chatter at
    DEBUG, anything else at WARNING (so a real native error is still seen). Used only while
    an interpreter is built, before the event loop runs."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a detached process): nothing to route
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.log(logging.DEBUG if _CHATTER.search(line) else logging.WARNING,
                            "tflite: %s", line)

# The interpreter reports scale/zero-point in float32; the manifest stores JSON floats.
_SCALE_RTOL = 1e-5


def load_interpreter_class() -> Any:
    """``Interpreter`` from ai_edge_litert, else tflite_runtime; EngineError if neither."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as e:
            raise EngineError(
                "tflite: neither ai_edge_litert nor tflite_runtime is installed "
                "(pip install ai-edge-litert)"
            ) from e
    return Interpreter


class TfliteEngine(InferenceEngine):
    """One ``.tflite`` file of a bundle in a LiteRT interpreter."""

    name = "tflite"

    def __init__(
        self, bundle: Bundle, key: str, *, threads: int = 1, xnnpack: bool = True
    ) -> None:
        entry = bundle.entry(key)
        super().__init__(entry, source=str(bundle.path_of(key)))
        if entry.format != "tflite":
            raise EngineError(f"tflite:{self.source}: {key!r} is a {entry.format} file")
        interpreter_cls = load_interpreter_class()
        try:
            model = bundle.read_verified(key)
        except BundleError as e:
            raise EngineError(f"tflite:{self.source}: {e}") from e
        kwargs: dict[str, Any] = {"model_content": model, "num_threads": max(1, int(threads))}
        if not xnnpack:
            resolver = _resolver_without_delegates()
            if resolver is not None:
                kwargs["experimental_op_resolver_type"] = resolver
        try:
            with _native_stderr_into_log():
                self._interp: Any = interpreter_cls(**kwargs)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EngineError(f"tflite:{self.source}: cannot load model: {e}") from e
        (inp,) = self._interp.get_input_details()
        outs = self._interp.get_output_details()
        out = _output_named(outs, entry.output.name) or outs[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = np.dtype(inp["dtype"])
        _check_io(inp, entry.input, f"tflite:{self.source}: input")
        _check_io(out, entry.output, f"tflite:{self.source}: output")
        self._emb_index: int | None = None
        if entry.embedding is not None:
            emb = _output_named(outs, entry.embedding.name)
            if emb is None:
                raise EngineError(f"tflite:{self.source}: no output {entry.embedding.name!r} "
                                  f"(the manifest's embedding); outputs are "
                                  f"{[d['name'] for d in outs]}")
            _check_io(emb, entry.embedding, f"tflite:{self.source}: embedding")
            self._emb_index = emb["index"]
        self.threads = kwargs["num_threads"]

    def _run_one(self, x: np.ndarray, with_embedding: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self._interp is None:
            raise EngineError(f"tflite:{self.source}: engine is closed")
        feed = quantize(x, self.entry.input) if self.entry.input.quantized else x
        e = None
        try:
            self._interp.set_tensor(self._in_index, feed.astype(self._in_dtype, copy=False))
            self._interp.invoke()
            y = self._interp.get_tensor(self._out_index)  # a copy, safe after the next invoke
            if with_embedding and self._emb_index is not None:
                e = self._interp.get_tensor(self._emb_index)
        except (ValueError, RuntimeError) as err:
            raise EngineError(f"tflite:{self.source}: inference failed: {err}") from err
        emb = None
        if e is not None and self.entry.embedding is not None:
            emb = _to_float(e, self.entry.embedding)
        return _to_float(y, self.entry.output), emb

    def close(self) -> None:
        self._interp = None


def _to_float(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    return dequantize(y, spec) if spec.quantized else np.asarray(y, dtype=np.float32)


def _output_named(details: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((d for d in details if d["name"] == name), None)


def _check_io(detail: dict[str, Any], spec: TensorSpec, where: str) -> None:
    """The manifest's I/O description must match the model's (else quantization is wrong)."""
    dtype = np.dtype(detail["dtype"]).name
    if dtype != spec.dtype:
        raise EngineError(f"{where} dtype {dtype} != manifest's {spec.dtype}")
    if spec.scale is not None:
        scale, zero_point = detail["quantization"]
        if not np.isclose(scale, spec.scale, rtol=_SCALE_RTOL) or zero_point != spec.zero_point:
            raise EngineError(
                f"{where} quantization ({scale}, {zero_point}) != manifest's "
                f"({spec.scale}, {spec.zero_point})"
            )


def _resolver_without_delegates() -> Any:
    try:
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError:
        try:
            from tflite_runtime.interpreter import OpResolverType
        except ImportError:
            return None
    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
