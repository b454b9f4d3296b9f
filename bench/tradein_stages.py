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
    and its descendants, sampled every 0.2 s: what the pipeline and its worker processes
    take together, pages shared after a fork counted once."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, _tree_pss_kb(os.getpid()))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kb / 1024, 1)


def _tree_pss_kb(root: int) -> int:
    total, pids = 0, [root]
    while pids:
        pid = pids.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    pids.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):  # a process that ended meanwhile
            continue
    return total


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
                "peak_rss_mb_after": peaks,
            }
        )
    )


if __name__ == "__main__":
    main()
