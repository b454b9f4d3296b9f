"""Forked worker pools end when a stage fails, even in a process whose SIGTERM has a
Python handler (Airflow installs one): the pool's workers take the default action.

The case runs in a child interpreter with a deadline, so a hang fails the test instead of
stalling the suite. The same script with ``plain`` (multiprocessing's own pool, workers
keeping the handler) hung past a 20 s deadline when this was written.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import signal, sys
    from multiprocessing import get_context
    from consumption_monitor.common.forking import fork_pool

    def big(i):
        return b"x" * (4 << 20)  # 4 MB: far more than a pipe holds

    signal.signal(signal.SIGTERM, lambda *a: None)  # as Airflow's task runner does
    pool_of = fork_pool if sys.argv[1] == "fork_pool" else get_context("fork").Pool
    try:
        with pool_of(2) as pool:
            results = pool.imap(big, range(64))
            next(results)
            raise RuntimeError("the stage failed")
    except RuntimeError:
        print("ended")
    """
)


def _run(kind: str, seconds: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, timeout=seconds
    )


def test_a_failing_stage_ends_its_workers_despite_a_sigterm_handler() -> None:
    done = _run("fork_pool", 120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ended"
