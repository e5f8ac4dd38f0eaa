"""Inference off the event loop: one worker thread, a bounded queue, a counted drop policy.

The loop hands over packed windows with :meth:`InferenceWorker.submit`, which never blocks:
when the queue is full the *oldest* waiting window is dropped (a stale window is worth
less than a fresh one) and counted as ``dropped_queue_full``. The worker takes up to
``max_batch`` windows at a time, runs the engine once on the ``(B, L)`` batch (ONNX Runtime
and TFLite release the GIL while they compute; a job may name its own engine, for a hub
with one model per kind of wearable, and a batch then runs each engine on its own windows), turns logits into probabilities (keeping the embedding the classifier read, when the
engine returns one: what personalization learns from) and hands
the results back to the loop with ``call_soon_threadsafe``. :meth:`drain` waits until every
accepted window has been answered: SIGTERM loses no window already cut.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from core.errors import WearableEdgeError
from edge.decisions import softmax

__all__ = ["Engine", "InferenceResult", "InferenceWorker", "Job", "LatencyTracker", "run_outputs"]

log = logging.getLogger(__name__)

LATENCY_SAMPLES: Final = 4096  # recent latencies kept for p50/p99: ~6 h of one wearable at 5 s


class Engine(Protocol):
    """What the worker needs of an ``edge.engines`` engine."""

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(B, L)`` float32 -> ``(B, K)`` logits."""
        ...


def run_outputs(engine: Engine, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(logits, embedding or None)`` of ``engine`` on ``x``: engines of ``edge.engines``
    return both (``run_outputs``); any other engine gives its logits and no embedding."""
    both = getattr(engine, "run_outputs", None)
    if both is None:
        return np.asarray(engine.run(x)), None
    logits, emb = both(x)
    return np.asarray(logits), emb


@dataclass(slots=True)
class Job:
    x: np.ndarray  # (L,) float32, a packed window
    meta: Any  # opaque to the worker: who the window belongs to, its times
    enqueued: float = 0.0  # time.monotonic() at submit
    engine: Engine | None = None  # the model's engine when not the worker's own


@dataclass(slots=True)
class InferenceResult:
    job: Job
    probabilities: np.ndarray | None  # (K,) float64, None when the engine failed
    latency_ms: float  # submit -> result (queue wait + engine)
    engine_ms: float  # this window's share of the engine call
    error: str | None = None
    embedding: np.ndarray | None = None  # (D,) float32 the classifier read; None without one


class LatencyTracker:
    """Recent values (ms) and their percentiles; cheap enough to update per window."""

    def __init__(self, maxlen: int = LATENCY_SAMPLES) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)
            self.count += 1

    def percentiles(self, *qs: float) -> tuple[float, ...]:
        with self._lock:
            if not self._values:
                return tuple(float("nan") for _ in qs)
            a = np.fromiter(self._values, dtype=np.float64)
        return tuple(float(v) for v in np.percentile(a, qs))


class InferenceWorker:
    """Runs ``engine`` on a thread; ``on_result`` is called on the loop thread, in order."""

    def __init__(
        self,
        engine: Engine,
        on_result: Callable[[InferenceResult], None],
        *,
        queue_size: int = 256,
        max_batch: int = 16,
    ) -> None:
        self.engine = engine
        self.on_result = on_result
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.counters: Counter[str] = Counter()  # touched on the loop thread only
        self.latency = LatencyTracker()  # submit -> result
        self.engine_latency = LatencyTracker()  # engine time per window
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._busy = 0  # jobs taken by the worker, not yet delivered
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outstanding = 0  # accepted and neither delivered nor dropped (loop thread)
        self._idle: asyncio.Event | None = None
        self._delivered: asyncio.Event | None = None  # pulsed whenever results come back

    def start(self) -> None:
        """Start the thread; call from the running event loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._delivered = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue one window; never blocks. Drops (and counts) the oldest if the queue is full."""
        if self._stopping:
            self.counters["rejected_stopping"] += 1
            return
        job.enqueued = time.monotonic()
        with self._cond:
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.counters["dropped_queue_full"] += 1
                self._outstanding -= 1
            self._queue.append(job)
            self._cond.notify()
        self.counters["submitted"] += 1
        self._outstanding += 1
        if self._idle is not None:
            self._idle.clear()

    def qsize(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    @property
    def outstanding(self) -> int:
        return self._outstanding

    async def drain(self) -> None:
        """Wait until every accepted window has a result; bound it with ``asyncio.timeout``."""
        if self._idle is None or self._outstanding <= 0:
            return
        await self._idle.wait()

    async def wait_for_room(self, high_water: int) -> None:
        """Block the caller (a non-live source) while ``high_water`` windows are outstanding."""
        while self._delivered is not None and self._outstanding >= high_water:
            self._delivered.clear()
            await self._delivered.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the jobs it holds; call :meth:`drain` first to keep them."""
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("inference thread did not stop within %.1f s", timeout)

    def health(self) -> dict[str, Any]:
        p50, p99 = self.latency.percentiles(50, 99)
        e50, e99 = self.engine_latency.percentiles(50, 99)
        return {
            **self.counters,
            "queue": self.qsize(),
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "engine_p50_ms": e50,
            "engine_p99_ms": e99,
        }

    # -- worker thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return  # stopping and nothing left
                n = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy = n
            results = self._infer(batch)
            with self._cond:
                self._busy = 0
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._deliver, results)
            except RuntimeError:  # the loop closed under us (shutdown without drain)
                log.warning("event loop closed; %d results not delivered", len(results))
                return

    def _infer(self, batch: list[Job]) -> list[InferenceResult]:
        engines = {id(j.engine): j.engine for j in batch}
        if len(engines) == 1:
            return self._infer_one(batch, batch[0].engine or self.engine)
        by_engine: dict[int, list[int]] = {}
        for i, j in enumerate(batch):
            by_engine.setdefault(id(j.engine), []).append(i)
        out: list[InferenceResult | None] = [None] * len(batch)
        for idx in by_engine.values():
            eng = batch[idx[0]].engine or self.engine
            for i, r in zip(idx, self._infer_one([batch[i] for i in idx], eng), strict=True):
                out[i] = r
        return [r for r in out if r is not None]

    def _infer_one(self, batch: list[Job], engine: Engine) -> list[InferenceResult]:
        """One engine call on ``batch`` (windows of one model)."""
        x = np.stack([j.x for j in batch]).astype(np.float32, copy=False)  # (B, L)
        t0 = time.monotonic()
        try:
            logits, emb = run_outputs(engine, x)  # (B, K), (B, D) or None
            if logits.ndim != 2 or logits.shape[0] != len(batch):
                raise ValueError(f"engine returned shape {logits.shape} for a batch of {len(batch)}")
            probs = softmax(logits)  # (B, K)
            error = None
        except (WearableEdgeError, RuntimeError, ValueError, FloatingPointError) as e:
            probs, emb = None, None
            error = f"{type(e).__name__}: {e}"
        t1 = time.monotonic()
        per_window_ms = (t1 - t0) * 1000.0 / len(batch)
        out = []
        for i, job in enumerate(batch):
            p = None if probs is None else probs[i]
            err: str | None = error
            if p is not None and not np.all(np.isfinite(p)):
                p, err = None, "engine produced non-finite output"
            e = emb[i] if emb is not None and p is not None else None
            out.append(InferenceResult(job, p, (t1 - job.enqueued) * 1000.0, per_window_ms, err, e))
        return out

    def _deliver(self, results: list[InferenceResult]) -> None:
        for r in results:
            self._outstanding -= 1
            if r.probabilities is None:
                self.counters["engine_errors"] += 1
                if self.counters["engine_errors"] <= 5 or self.counters["engine_errors"] % 100 == 0:
                    log.error("inference failed (%d so far): %s",
                              self.counters["engine_errors"], r.error)
            else:
                self.counters["completed"] += 1
                self.latency.add(r.latency_ms)
                self.engine_latency.add(r.engine_ms)
            self.on_result(r)
        if self._outstanding <= 0 and self._idle is not None:
            self._idle.set()
        if self._delivered is not None:
            self._delivered.set()
