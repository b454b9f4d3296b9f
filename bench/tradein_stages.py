"""One measured trade-in run (a child process of :mod:`bench.tradein`, so its peak memory
is the pipeline's alone): fetch → validate → load of one period from the feed server into
the warehouse, timing each stage. Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import resource
import time

from consumption_monitor.pipeline.steps import extract_step, load_step, validate_step
from consumption_monitor.warehouse.migrate import ensure_schema

FEED = "tradein_transactions"


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
    print(
        json.dumps(
            {
                "rows": batch["rows"]["transactions"],
                "load_outcome": load["outcome"],
                "loaded": load["rows"]["transactions"],
                "verdict": validation["verdict"],
                "seconds": times,
                "peak_rss_mb": peaks["load"],
                "peak_rss_mb_after": peaks,
            }
        )
    )


if __name__ == "__main__":
    main()
