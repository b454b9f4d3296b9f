"""Forked workers end when a stage fails or stops early, even in a process whose SIGTERM
has a Python handler (Airflow installs one) and while results larger than a pipe holds are
in flight.

Each case runs in a child interpreter with a deadline (killed, since the child ignores
SIGTERM), so a hang fails the test instead of stalling the suite. The "fails" script on
multiprocessing's own ``Pool`` (what ``fork_pool`` was) hung in 5 of 30 runs under a busy
CPU when this was written, waiting in ``Pool.terminate`` for the result queue's lock held
by a worker blocked in a 4 MB write. Each case runs several times with the CPU kept busy
by a spinning process, as when the hang was seen in CI.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import signal, sys
    from consumption_monitor.common.forking import fork_pool, in_order

    def big(i):
        if i == int(sys.argv[2]):
            raise ValueError("a worker failed")
        return b"x" * (4 << 20)  # 4 MB: far more than a pipe holds

    signal.signal(signal.SIGTERM, lambda *a: None)  # as Airflow's task runner does
    how = sys.argv[1]
    try:
        with fork_pool(2) as pool:
            results = in_order(pool, big, range(64), ahead=8)
            next(results)
            if how == "stops":
                results.close()
                print("ended")
            elif how == "fails":
                raise RuntimeError("the stage failed")
            else:
                sum(len(r) for r in results)
    except RuntimeError:
        print("ended")
    except ValueError as error:
        print(error)
    """
)

SPIN = "while True: pass"


def _run(how: str, failing_item: int = -1, seconds: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, how, str(failing_item)],
        capture_output=True,
        text=True,
        timeout=seconds,
    )


@pytest.fixture
def busy_cpu():
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    yield
    spinner.kill()
    spinner.wait()


@pytest.mark.parametrize("how", ["fails", "stops"])
def test_workers_end_when_the_stage_fails_or_stops_with_big_results_in_flight(
    busy_cpu, how: str
) -> None:
    for _ in range(5):
        done = _run(how)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ended"


def test_a_workers_error_reaches_the_stage_and_the_workers_end(busy_cpu) -> None:
    done = _run("reads", failing_item=5)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a worker failed"


def test_results_come_in_the_items_order() -> None:
    script = textwrap.dedent(
        """
        import random, time
        from consumption_monitor.common.forking import fork_pool, in_order

        def slow(i):
            time.sleep(random.random() / 100)
            return i * i

        with fork_pool(2) as pool:
            squares = list(in_order(pool, slow, iter(range(40)), ahead=5))
        print(squares == [i * i for i in range(40)])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "True", done.stderr
