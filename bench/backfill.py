"""Backfill of 24 periods of every feed: the Celery topology vs the embedded default.

Both run in the same benchmark, one after the other, on the same machine, end to end (start
of the components, migrations, DAG parsing, backfill until every run finished):

* Celery: ``cm_devtools.topology`` (API server, scheduler, DAG processor, two Celery
  workers, PostgreSQL metadata and warehouse, Redis broker), backfill through the REST API;
* embedded: ``make demo-full``'s code path (``airflow standalone``, LocalExecutor, SQLite
  metadata and warehouse; every period through its feed DAG, no ``feed_catchup``), with its
  state in a temporary folder instead of .airflow/ and data/.

Both then run the snapshot DAG the same way (``workload.run_snapshots``: one manual
``indicator_snapshots`` run per period, until no run of it is left), included in the time.

``backfill.celery_vs_embedded`` is the Celery time over the embedded time: below 1 the Celery
topology is faster. On a 2-core machine it is not expected to be (more processes share the
same cores); what it buys is workers on other machines. Slow (tens of minutes): run it with
``python -m bench backfill``; plain ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cm_devtools.demo.common import REPO_DIR
from cm_devtools.demo.console import Console
from cm_devtools.demo.data import available_feeds
from cm_devtools.demo.driver import run_demo
from cm_devtools.demo.processes import stop_all
from cm_devtools.demo.rest import AirflowApi
from cm_devtools.topology import cluster, workload
from cm_devtools.topology.settings import StateLayout
from consumption_monitor.common.periods import Period, period_range

FIRST, LAST = Period(2024, 1), Period(2025, 12)  # 24 periods
PORTS_CELERY = (8133, 8134)
PORTS_EMBEDDED = (8135, 8136)
TIMEOUT_S = 60 * 60


def _check_snapshots(side: str, snaps: workload.SnapshotRuns) -> None:
    if snaps.timed_out or snaps.unsuccessful:
        problems = snaps.unsuccessful or snaps.unfinished
        raise RuntimeError(f"{side}: snapshot DAG runs not all successful: {problems[:3]}")


def _celery(state: Path) -> tuple[float, int]:
    t0 = time.monotonic()
    topo = cluster.new_topology(state, port_api=PORTS_CELERY[0], port_feed=PORTS_CELERY[1])
    try:
        cluster.start(topo)
        feeds = workload.wait_for_dag_files(topo)
        tallies = workload.backfill(topo, feeds, FIRST, LAST, timeout_s=TIMEOUT_S)
        failed = workload.failures(topo, tallies)
        if failed:
            raise RuntimeError(f"Celery backfill had unsuccessful runs: {failed[:3]}")
        snaps = workload.snapshots(topo, FIRST, LAST, timeout_s=TIMEOUT_S)
        _check_snapshots("Celery", snaps)
        runs = sum(len(t.expected) for t in tallies.values())
        return time.monotonic() - t0, runs
    finally:
        cluster.stop(topo)


def _embedded(state: Path) -> tuple[float, int]:
    t0 = time.monotonic()
    layout = StateLayout(repo=REPO_DIR, state=state)
    args = argparse.Namespace(
        period_from=FIRST,
        period_to=LAST,
        port_ui=PORTS_EMBEDDED[0],
        port_feed=PORTS_EMBEDDED[1],
        json=True,
        timeout_min=TIMEOUT_S / 60,
        feeds=tuple(available_feeds()),
        recent=None,  # every period by its own DAG run, as on the Celery side
    )
    try:
        result, tallies = run_demo(args, layout, Console(json_mode=True))
        if not result["ok"]:
            raise RuntimeError(f"embedded backfill failed: {result['failures'][:3]}")
        api = AirflowApi(result["ui_url"], result["username"], result["password"])
        snaps = workload.run_snapshots(api, period_range(FIRST, LAST), timeout_s=TIMEOUT_S)
        _check_snapshots("embedded", snaps)
        runs = sum(len(t.expected) for t in tallies.values())
        return time.monotonic() - t0, runs
    finally:
        stop_all(layout)


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cm-bench-backfill-") as tmp:
        celery_s, celery_runs = _celery(Path(tmp) / "celery")
        embedded_s, embedded_runs = _embedded(Path(tmp) / "embedded")
    return [
        {"name": "backfill.celery_s", "value": round(celery_s, 1), "unit": "s"},
        {"name": "backfill.embedded_s", "value": round(embedded_s, 1), "unit": "s"},
        {"name": "backfill.runs", "value": celery_runs, "unit": "runs"},
        {
            "name": "backfill.celery_vs_embedded",
            "value": round(celery_s / embedded_s, 3),
            "unit": "x",
            "goal": "report (2 cores: no speed-up expected)",
        },
    ] + (
        []
        if embedded_runs == celery_runs
        else [{"name": "backfill.embedded_runs", "value": embedded_runs, "unit": "runs"}]
    )
