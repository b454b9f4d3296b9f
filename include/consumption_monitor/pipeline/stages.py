"""Rows and seconds per stage of a period's run (extract, validate, load, snapshot), as
dlt's trace reports them: each step returns its ``stage`` record and logs one line (the
Airflow task log), ``run_period`` gathers them under ``stages`` and ``cm run --json``
prints them per period.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)


class Stopwatch:
    """Seconds since it was started (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def stage_record(
    stage: str, feed: str, period: str, rows: int | None, watch: Stopwatch
) -> dict[str, Any]:
    """The stage's record (rows, seconds, rows per second) and its log line."""
    seconds = watch.seconds()
    rate = round(rows / seconds) if rows and seconds > 0 else None
    log.info(
        "stage %s %s %s: %s rows in %.2f s (%s rows/s)",
        stage, feed, period, rows if rows is not None else "-", seconds, rate or "-",
    )  # fmt: skip
    return {"stage": stage, "rows": rows, "seconds": round(seconds, 3), "rows_per_s": rate}


def gather(steps: dict[str, dict[str, Any]], watch: Stopwatch) -> dict[str, Any]:
    """The stages of one run, and the whole run (``e2e``: rows as extracted)."""
    stages = {name: out["stage"] for name, out in steps.items() if "stage" in out}
    rows = stages.get("extract", {}).get("rows")
    seconds = watch.seconds()
    stages["e2e"] = {
        "stage": "e2e",
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if rows and seconds > 0 else None,
    }
    return stages
