"""Forked worker processes: one home for how many workers a stage takes, how they are made
and how they end.

Used by the extract (pages pseudonymised side by side, ``feeds/protect_workers.py``) and by
validation (chunks checked side by side, ``validation/parallel.py``).

Why an executor and not ``multiprocessing.Pool``: leaving a ``Pool`` while results are in
flight (a stage that fails, a consumer that stops early) calls ``Pool.terminate``, which
puts a sentinel on the result queue under the lock the workers write under. Its result
thread stops reading after a few results; a worker then blocks writing a result larger
than a pipe holds (a protected page is ~500 kB) while holding that lock, and the stage
waits for ever. The suite's case (``tests/test_forking.py``, 4 MB results) hung in 5 of
30 runs on a loaded machine and failed a CI run. ``ProcessPoolExecutor`` keeps reading
results until every worker has ended; leaving ``fork_pool`` cancels the work not started
and waits for what runs (at most two tasks per worker and one more).

Why the initializer: a worker is forked from a process that may have installed Python
handlers for SIGTERM (Airflow's task runner and its in-process execution API do). Workers
take the default SIGTERM action (end at once) and ignore SIGINT (the parent handles
Ctrl-C and ends them).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Off unless asked for (CM_EXTRACT_WORKERS / CM_VALIDATE_WORKERS = 2): forking a process
# that runs other threads (Airflow's task runner, a test's feed server) can leave a worker
# waiting for ever on a lock another thread held at the fork; the suite hung so once in a
# fresh-clone run, and the measured gain was small on 2 cores (README: Benchmark).
DEFAULT_WORKERS = 1


def worker_count(env: str) -> int:
    """Workers for a stage: the environment variable ``env`` when set, else
    ``DEFAULT_WORKERS`` (at most one per CPU); always 1 in a daemonic process (it may not
    have children)."""
    if multiprocessing.current_process().daemon:
        return 1
    raw = os.environ.get(env)
    return max(1, int(raw)) if raw else max(1, min(DEFAULT_WORKERS, os.cpu_count() or 1))


def _worker_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> None:
    """The first task: makes the executor fork every worker at once."""


@contextmanager
def fork_pool(processes: int) -> Iterator[ProcessPoolExecutor]:
    """``processes`` workers forked now (before the caller starts any thread of its own),
    with default signal handling. Leaving, an error included, cancels the tasks not
    started and waits for the running ones."""
    pool = ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals
    )
    try:
        pool.submit(_ready).result()
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def in_order(
    pool: ProcessPoolExecutor, fn: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """``fn`` over ``items`` in the pool's workers, the results in the items' order; at most
    ``ahead`` items are taken from ``items`` before their results are read (memory stays
    bounded, and a lazy ``items`` is read as the workers go). A worker's error is raised
    here; stopping early cancels what has not started."""
    inflight: deque[Future[R]] = deque()
    try:
        for item in items:
            inflight.append(pool.submit(fn, item))
            if len(inflight) >= ahead:
                yield inflight.popleft().result()
        while inflight:
            yield inflight.popleft().result()
    finally:
        for future in inflight:
            future.cancel()
