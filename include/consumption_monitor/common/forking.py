"""Forked worker pools: one home for how many workers a stage takes and how they are made.

Used by the extract (pages pseudonymised side by side, ``feeds/protect_workers.py``) and by
validation (chunks checked side by side, ``validation/parallel.py``).

Why the initializer: a worker is forked from a process that may have installed Python
handlers for SIGTERM (Airflow's task runner and its in-process execution API do). A worker
inherits them; blocked in a write to the pool's result pipe when the stage fails, it then
catches the pool's SIGTERM, returns to the write and never ends, and the stage hangs in
``Pool.terminate`` (seen in the suite: a cursor-loop extract after an Airflow DAG test).
Workers therefore take the default SIGTERM action (end at once) and ignore SIGINT (the
parent handles Ctrl-C and terminates them).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool

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


@contextmanager
def fork_pool(processes: int) -> Iterator[Pool]:
    """A pool of ``processes`` forked workers with default signal handling; terminated on
    leaving (an error included)."""
    with multiprocessing.get_context("fork").Pool(processes, initializer=_worker_signals) as pool:
        yield pool
