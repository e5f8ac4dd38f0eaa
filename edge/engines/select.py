"""Choosing and opening an engine for a bundle: explicit, or ``auto`` by measurement.

``auto`` opens every format this machine can run and the manifest marks acceptable
(parity thresholds met at export), times a few single-window runs of each, keeps the
fastest and closes the rest. The :class:`SelectionReport` says what was tried and why the
winner won, and is logged, so an operator can see the choice without reading code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from edge.bundle import Bundle, FileEntry
from edge.engines.base import InferenceEngine
from edge.errors import EngineError

__all__ = ["BACKENDS", "Candidate", "SelectionReport", "open_engine", "open_file"]

_LOG = logging.getLogger(__name__)

BACKENDS: Final = ("auto", "onnx", "tflite")
WARMUP_RUNS: Final = 3  # first runs pay for allocation and XNNPACK packing; not representative
TIMED_RUNS: Final = 15  # a median of 15 single-window runs is stable to a few %, in well under 1 s
PRECISION_ORDER: Final = ("int8", "fp16", "fp32")  # tie-break: smaller model first


@dataclass
class Candidate:
    """One model file considered by ``auto``."""

    key: str
    backend: str
    precision: str
    acceptable: bool  # the manifest's accuracy verdict
    median_ms: float | None = None  # None when not measured
    error: str | None = None  # why it could not be opened, if it could not


@dataclass
class SelectionReport:
    """What ``open_engine`` chose and why."""

    chosen: str
    reason: str
    candidates: list[Candidate] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        for c in self.candidates:
            if c.error:
                parts.append(f"{c.key}: unavailable ({c.error})")
            elif c.median_ms is not None:
                ok = "" if c.acceptable else ", accuracy not acceptable"
                parts.append(f"{c.key}: {c.median_ms:.3f} ms{ok}")
            else:
                parts.append(f"{c.key}: skipped (accuracy not acceptable)")
        return f"chose {self.chosen}: {self.reason} [" + "; ".join(parts) + "]"


def open_file(bundle: Bundle, key: str, *, threads: int = 1) -> InferenceEngine:
    """The engine for model file ``key``, with its backend imported only now."""
    entry = bundle.entry(key)
    if entry.format == "onnx":
        from edge.engines.onnx import OnnxEngine

        return OnnxEngine(bundle, key, threads=threads)
    if entry.format == "tflite":
        from edge.engines.tflite import TfliteEngine

        return TfliteEngine(bundle, key, threads=threads)
    raise EngineError(f"{entry.format}:{bundle.path_of(key)}: no engine for this format")


def open_engine(
    bundle: Bundle,
    backend: str = "auto",
    precision: str | None = None,
    threads: int = 1,
) -> InferenceEngine:
    """Open the engine for ``bundle``. With ``backend="auto"`` (or no ``precision``) the
    fastest acceptable format is measured and chosen; ``engine.selection`` holds the
    :class:`SelectionReport` (None when backend and precision named one file).
    """
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    entries = [
        e
        for e in bundle.files.values()
        if (backend == "auto" or e.format == backend) and (precision is None or e.precision == precision)
    ]
    if not entries:
        raise EngineError(
            f"bundle {bundle.source} has no {backend}/{precision or 'any'} model "
            f"(it has {sorted(bundle.files)})"
        )
    if backend != "auto" and precision is not None:
        (entry,) = entries[:1]
        engine = open_file(bundle, entry.key, threads=threads)
        engine.selection = None
        _LOG.info("engine %s (%s) opened as requested", entry.key, engine.source)
        return engine
    engine, report = _measure_and_choose(bundle, entries, threads)
    engine.selection = report
    _LOG.info("engine selection: %s", report.summary())
    return engine


def _measure_and_choose(
    bundle: Bundle, entries: list[FileEntry], threads: int
) -> tuple[InferenceEngine, SelectionReport]:
    entries = sorted(entries, key=lambda e: (PRECISION_ORDER.index(e.precision)
                                             if e.precision in PRECISION_ORDER else 99, e.key))
    candidates: list[Candidate] = []
    opened: dict[str, InferenceEngine] = {}
    x = np.zeros((1, bundle.contract.input_length), np.float32)  # normalized-space centre
    try:
        for e in entries:
            cand = Candidate(e.key, e.format, e.precision, e.acceptable)
            candidates.append(cand)
            if not e.acceptable:
                continue
            try:
                engine = open_file(bundle, e.key, threads=threads)
                cand.median_ms = _median_latency_ms(engine, x)
            except EngineError as err:
                cand.error = str(err)
                continue
            opened[e.key] = engine
        if not opened:
            errors = "; ".join(f"{c.key}: {c.error or 'not acceptable'}" for c in candidates)
            raise EngineError(f"no usable model in bundle {bundle.source}: {errors}")
        best = min(
            (c for c in candidates if c.key in opened),
            key=lambda c: c.median_ms if c.median_ms is not None else float("inf"),
        )
        others = [c for c in candidates if c.key in opened and c is not best]
        reason = f"fastest acceptable format ({best.median_ms:.3f} ms median single-window"
        reason += f", {threads} thread{'s' if threads != 1 else ''})"
        if others:
            runner = min(others, key=lambda c: c.median_ms or float("inf"))
            reason += f", next {runner.key} {runner.median_ms:.3f} ms"
        chosen = opened.pop(best.key)
        return chosen, SelectionReport(best.key, reason, candidates)
    finally:
        for engine in opened.values():
            engine.close()


def _median_latency_ms(engine: InferenceEngine, x: np.ndarray) -> float:
    for _ in range(WARMUP_RUNS):
        engine.run(x)
    times = []
    for _ in range(TIMED_RUNS):
        t0 = time.perf_counter()
        engine.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)
