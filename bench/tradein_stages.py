"""One measured trade-in run (a child process of :mod:`bench.tradein`, so its peak memory
is the pipeline's alone): fetch → validate → load of one period from the feed server into
the warehouse, timing each stage. Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time

from consumption_monitor.pipeline.steps import extract_step, load_step, validate_step
from consumption_monitor.warehouse.migrate import ensure_schema

FEED = "tradein_transactions"


class TreeMemory:
    """The peak of the summed proportional set size (PSS, /proc smaps_rollup) of this process
    and its descendants: what the pipeline and its worker processes take together, pages
    shared after a fork counted once.

    Why not PSS every 0.2 s, as before: the kernel walks a process's page tables to write
    smaps_rollup, ~10 ms of CPU for a 700 MB process (measured 2026-12-01), so reading the
    tree five times a second took several seconds of CPU of a 75 s 1M-row run on 2 cores,
    CPU the pipeline is measured for and the peers (``getrusage``) never pay. Now the tree's
    summed RSS (/proc statm, microseconds) is read every ``POLL_S``, and PSS when that RSS
    reaches a new high (at most every ``HIGH_S``) and every ``EVERY_S`` besides: PSS never
    exceeds RSS, and between the run's processes the pages RSS counts twice (libraries)
    stay nearly constant, so PSS peaks where RSS does."""

    POLL_S = 0.1
    HIGH_S = 0.5
    EVERY_S = 2.0

    def __init__(self) -> None:
        self.peak_kb = 0
        self.reads = 0  # PSS reads of the tree, for the record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        high_rss, last = 0, 0.0
        while not self._stop.wait(self.POLL_S):
            pids = _tree(os.getpid())
            rss = sum(_rss_kb(pid) for pid in pids)
            now = time.monotonic()
            due = now - last >= (self.HIGH_S if rss > high_rss else self.EVERY_S)
            if due:
                high_rss, last = max(high_rss, rss), now
                self.peak_kb = max(self.peak_kb, sum(_pss_kb(pid) for pid in pids))
                self.reads += 1

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kb / 1024, 1)


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (every thread's children)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):  # a process that ended meanwhile
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
    except (OSError, ValueError):
        return 0


def _peak_mb() -> float:
    """This process's peak plus the largest peak of its worker processes (validation's):
    an upper bound of the pipeline's peak, as if they had peaked at the same time."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + workers) / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--period", default="2025-03")
    args = parser.parse_args()
    ensure_schema(args.url)
    times: dict[str, float] = {}
    memory = TreeMemory()
    start = time.perf_counter()
    batch = extract_step(FEED, args.period, url=args.url)
    times["extract"] = time.perf_counter() - start
    peaks = {"extract": _peak_mb()}
    mark = time.perf_counter()
    validation = validate_step(FEED, batch, url=args.url)
    times["validate"] = time.perf_counter() - mark
    peaks["validate"] = _peak_mb()
    mark = time.perf_counter()
    load = load_step(FEED, batch, url=args.url)
    times["load"] = time.perf_counter() - mark
    times["e2e"] = time.perf_counter() - start
    peaks["load"] = _peak_mb()
    peak_pss = memory.stop()
    print(
        json.dumps(
            {
                "rows": batch["rows"]["transactions"],
                "load_outcome": load["outcome"],
                "loaded": load["rows"]["transactions"],
                "verdict": validation["verdict"],
                "seconds": times,
                "peak_rss_mb": peaks["load"],
                "peak_pss_mb": peak_pss,
                "pss_reads": memory.reads,
                "peak_rss_mb_after": peaks,
            }
        )
    )


if __name__ == "__main__":
    main()
