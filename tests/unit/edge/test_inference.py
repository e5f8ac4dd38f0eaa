"""edge.inference: the worker hands back each window's embedding beside its probabilities
when the engine returns one, and None from an engine that gives logits only."""

from __future__ import annotations

import asyncio

import numpy as np

from edge.inference import InferenceResult, InferenceWorker, Job


class _LogitsOnly:
    def run(self, x: np.ndarray) -> np.ndarray:
        return np.stack([x[:, 0], -x[:, 0]], axis=1)  # (B, 2)


class _WithEmbedding(_LogitsOnly):
    def run_outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.run(x), 2.0 * x  # (B, 2), (B, L)


def _results(engine: object, n: int = 5) -> list[InferenceResult]:
    async def go() -> list[InferenceResult]:
        got: list[InferenceResult] = []
        worker = InferenceWorker(engine, got.append, max_batch=3)  # type: ignore[arg-type]
        worker.start()
        for i in range(n):
            worker.submit(Job(np.full(4, float(i), np.float32), meta=i))
        async with asyncio.timeout(30):
            await worker.drain()
        worker.stop()
        return got

    return asyncio.run(go())


def test_embedding_travels_with_each_window_in_order() -> None:
    results = _results(_WithEmbedding())
    assert [r.job.meta for r in results] == list(range(5))
    for r in results:
        assert r.embedding is not None and r.probabilities is not None
        assert np.array_equal(r.embedding, np.full(4, 2.0 * r.job.meta, np.float32))


def test_engine_without_embedding_gives_none() -> None:
    results = _results(_LogitsOnly())
    assert len(results) == 5 and all(r.embedding is None for r in results)
    assert all(r.probabilities is not None for r in results)
