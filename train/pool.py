"""Runs fold jobs (and subject loading) in worker processes, or inline with one worker.

Processes are spawned, not forked (a forked child of a process whose OpenMP pool has run
can deadlock), with the BLAS/OpenMP thread variables set to ``threads`` before they start.
Fold-job workers map ``X`` from one ``.npy`` file (shared page cache, no copy per worker)
and receive the :class:`train.plan.JobPlan` once, at start. Every job is seeded by its own
key, so results do not depend on how many jobs run at once.

Torch and the job code are imported inside the functions that need them, so a process that
only loads subjects never imports torch.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from train.metrics import evaluate, softmax
from train.progress import ProgressEvent, ProgressFn, no_progress

if TYPE_CHECKING:
    from train.job import JobResult
    from train.plan import FoldJob, JobPlan

__all__ = ["PoolSettings", "process_pool", "run_jobs", "thread_env"]

log = logging.getLogger(__name__)

# BLAS/OpenMP pools read these when a process starts; a spawned worker gets `threads`
THREAD_ENV: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class PoolSettings:
    """How jobs run: ``workers`` processes (1: inline) of ``threads`` torch/BLAS threads."""

    workers: int = 1
    threads: int = 1
    deterministic: bool = True  # torch.use_deterministic_algorithms in every worker


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables for processes spawned inside the block."""
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(threads) for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def process_pool(
    workers: int,
    threads: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[cf.ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes, each started with ``threads`` BLAS threads."""
    with (
        thread_env(threads),
        cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=initializer,
            initargs=initargs,
        ) as ex,
    ):
        yield ex


_WORKER: dict[str, Any] = {}  # the plan and X of a fold-job worker (set by _init_worker)


def _init_worker(plan: JobPlan, x_path: str, threads: int, deterministic: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    _WORKER["plan"] = plan
    _WORKER["X"] = np.load(x_path, mmap_mode="r")  # shared page cache, no copy per worker


def _run_job_in_worker(job: FoldJob) -> JobResult:
    from train.job import run_job

    return run_job(_WORKER["plan"], _WORKER["X"], job)


def run_jobs(
    plan: JobPlan,
    X: np.ndarray,
    jobs: Sequence[FoldJob],
    work_dir: Path,
    settings: PoolSettings,
    progress: ProgressFn = no_progress,
) -> dict[str, JobResult]:
    """Run the jobs inline (one worker) or in a pool of spawned processes; results by key.

    ``work_dir`` holds ``X`` for the workers while they run. Epoch progress is reported
    only inline (a worker's epochs are its own); job progress always."""
    from train.job import run_job

    description = "cross-validation + deployable models"
    progress(ProgressEvent("jobs", description, 0, len(jobs)))
    test_of = {j.key: j.test for j in jobs}
    results: dict[str, JobResult] = {}

    def done(r: JobResult) -> None:
        results[r.key] = r
        f1 = {
            n: evaluate(plan.y[test_of[r.key]], softmax(z), plan.contract.class_names)["macro_f1"]
            for n, z in r.test_logits.items()
        }
        log.info(
            "job %s (%.0f s, %.0f s CPU): macro-F1 %s",
            r.key,
            r.seconds,
            r.cpu_seconds,
            " ".join(f"{n}={v:.3f}" for n, v in f1.items()),
        )
        progress(ProgressEvent("jobs", description, len(results), len(jobs)))

    workers = min(settings.workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            done(run_job(plan, X, job, progress))
        return results
    x_path = work_dir / "X.npy"
    np.save(x_path, X)
    try:
        with process_pool(
            workers,
            settings.threads,
            initializer=_init_worker,
            initargs=(plan, str(x_path), settings.threads, settings.deterministic),
        ) as ex:
            futures = [ex.submit(_run_job_in_worker, job) for job in jobs]
            for fut in cf.as_completed(futures):
                done(fut.result())
    finally:
        x_path.unlink(missing_ok=True)
    return results
