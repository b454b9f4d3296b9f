"""What a topology runs: the feed backfill and the snapshot runs, through the REST API.

Submission and run tracking are the demo's (``cm_devtools.demo.backfill``, ``.runs``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cm_devtools.demo.backfill import backfill_runs_in_flight, submit_backfill
from cm_devtools.demo.common import SNAPSHOT_DAG_ID, DemoError
from cm_devtools.demo.console import Console, format_duration
from cm_devtools.demo.data import drop_sample_files, file_drop_feeds
from cm_devtools.demo.processes import Started, wait_for
from cm_devtools.demo.rest import AirflowApi, ApiError
from cm_devtools.demo.runs import (
    TERMINAL_STATES,
    RunTally,
    describe_failures,
    trigger_run,
    watch_runs,
)
from cm_devtools.topology.cluster import Topology
from consumption_monitor.common.periods import Period, period_range

FEED_TAG = "feed"  # every DAG built by orchestration.build_feed_dag carries it


def feed_dag_ids(api: AirflowApi) -> list[str]:
    """Every parsed DAG tagged as a feed: discovered, not listed by hand."""
    data = api.call("GET", "/dags", params={"tags": FEED_TAG, "limit": 100})
    return sorted(d["dag_id"] for d in data["dags"])


def wait_for_dag_files(topology: Topology, *, timeout_s: float = 300) -> list[str]:
    """Wait until every file in dags/ is parsed without import errors; the feed DAG ids."""
    api = topology.api
    assert api is not None
    files = {p.name for p in topology.layout.dags.glob("*.py")}

    def parsed() -> bool:
        topology.check_alive()
        errors = api.import_errors()
        if errors:
            first = errors[0]
            raise DemoError(
                f"DAG import error in {first.get('filename')}:\n"
                f"{(first.get('stack_trace') or '')[-1500:]}"
            )
        dags = api.call("GET", "/dags", params={"limit": 100})["dags"]
        return files <= {Path(d.get("fileloc") or "").name for d in dags}

    wait_for(parsed, what="DAG files parsed", timeout_s=timeout_s, interval_s=2)
    return feed_dag_ids(api)


def backfill(
    topology: Topology,
    dag_ids: Iterable[str],
    first: Period,
    last: Period,
    *,
    timeout_s: float,
    console: Console | None = None,
) -> dict[str, RunTally]:
    """Backfill ``first`` .. ``last`` for each DAG through the REST API and wait for the runs.

    Same submission as ``make demo`` (sample ledger files dropped first, file-drop feeds one
    run at a time, the rest sharing the runs in flight).
    """
    api = topology.api
    assert api is not None
    console = console or Console(json_mode=True)
    feeds = tuple(dag_ids)
    file_feeds = file_drop_feeds(feeds)
    incoming = topology.layout.data / "incoming"
    for feed in file_feeds:
        drop_sample_files(feed, incoming, topology.layout.demo / f"staging-{feed}", first, last)
    t0 = time.monotonic()
    expected: dict[str, list[Period]] = {}
    in_flight = {
        feed: backfill_runs_in_flight(feed, feeds, file_feeds=file_feeds) for feed in feeds
    }
    for feed in feeds:
        expected[feed], _ = submit_backfill(
            api, first, last, rerun_all=False, dag_id=feed, max_active_runs=in_flight[feed]
        )
    for feed in feeds:
        api.set_paused(feed, False)
    tallies, timed_out = watch_runs(
        api,
        expected,
        (first, last),
        console,
        t0=t0,
        deadline=t0 + timeout_s,
        airflow=topology.started["scheduler"],
        runs_in_flight=in_flight,
    )
    if timed_out:
        topology.check_alive()
    return tallies


def failures(topology: Topology, tallies: Mapping[str, RunTally]) -> list[dict[str, Any]]:
    """Unsuccessful runs with their unfinished tasks and log paths (empty when all passed)."""
    assert topology.api is not None
    return [
        item
        for feed, tally in tallies.items()
        if tally.failed_runs or not tally.done
        for item in describe_failures(topology.api, tally, topology.layout, feed)
    ]


@dataclass
class SnapshotRuns:
    """The snapshot DAG's runs after the feed backfill, as the REST API last listed them.

    ``manual`` maps each period to the run triggered for it; ``runs`` holds every run of the
    DAG by run id, those the scheduler started from the feeds' asset events included.
    """

    manual: dict[Period, str]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    timed_out: bool = False

    def state(self, period: Period) -> str:
        return str(self.runs.get(self.manual[period], {}).get("state") or "missing")

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r.get("state") not in TERMINAL_STATES]

    @property
    def settled(self) -> bool:
        """Every manual run listed and no run of the DAG queued or running."""
        return set(self.manual.values()) <= set(self.runs) and not self.unfinished

    @property
    def unsuccessful(self) -> list[dict[str, Any]]:
        """Runs that did not succeed (manual or asset-triggered), and manual runs not listed."""
        missing = [
            {"dag_run_id": run_id, "period": str(p), "state": "missing"}
            for p, run_id in self.manual.items()
            if run_id not in self.runs
        ]
        return missing + [
            {k: r.get(k) for k in ("dag_run_id", "run_type", "state", "conf")}
            for r in self.runs.values()
            if r.get("state") != "success"
        ]

    @property
    def asset_triggered(self) -> int:
        return sum(1 for r in self.runs.values() if r.get("run_type") == "asset_triggered")


def run_snapshots(
    api: AirflowApi,
    periods: Iterable[Period],
    *,
    timeout_s: float,
    airflow: Started | None = None,
    console: Console | None = None,
) -> SnapshotRuns:
    """Unpause ``indicator_snapshots``, trigger one manual run per period (params
    ``{"periods": [p]}``) and wait until no run of the DAG is queued or running.

    Every run counts, not only ours: where the scheduler creates asset-triggered runs (the
    demo's standalone Airflow, once the DAG is unpaused) they recompute snapshots too, so
    they are waited for and must succeed as well. In the topology none are expected: Airflow
    queues asset events only for unpaused consumers, and ``use_job_schedule=False`` turns
    off the scheduler's run creation. The DAG runs one run at a time (``max_active_runs=1``).
    A minute without an answer from the API, or the scheduler (``airflow``) exiting, ends the
    wait with an error; the deadline with ``timed_out``.
    """
    import requests

    console = console or Console(json_mode=True)
    dag_id = SNAPSHOT_DAG_ID
    tag = uuid.uuid4().hex[:6]
    result = SnapshotRuns(manual={})
    for period in periods:
        result.manual[period] = trigger_run(
            api,
            dag_id,
            {"periods": [str(period)]},
            f"指标快照 {period}",
            run_id=f"cm_snapshot__{period}__{tag}",
        )
    t0 = time.monotonic()
    failing_since: float | None = None
    while True:
        now = time.monotonic()
        try:
            result.runs = {r["dag_run_id"]: r for r in api.dag_runs(dag_id)}
            failing_since = None
        except (requests.RequestException, ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"{dag_id}: Airflow not answering: {exc}") from exc
        done = sum(1 for p in result.manual if result.state(p) in TERMINAL_STATES)
        line = (
            f"      {dag_id} {done}/{len(result.manual)} periods, "
            f"{len(result.unfinished)} runs unfinished, {len(result.runs)} runs "
            f"· {format_duration(now - t0)}"
        )
        if result.settled:
            console.final_status(line)
            return result
        if now - t0 > timeout_s:
            console.final_status(line)
            result.timed_out = True
            return result
        console.status(line)
        time.sleep(3)


def snapshots(
    topology: Topology,
    first: Period,
    last: Period,
    *,
    timeout_s: float,
    console: Console | None = None,
) -> SnapshotRuns:
    """``run_snapshots`` for ``first`` … ``last`` on the topology, after the feed backfill."""
    assert topology.api is not None
    result = run_snapshots(
        topology.api,
        period_range(first, last),
        timeout_s=timeout_s,
        airflow=topology.started["scheduler"],
        console=console,
    )
    if result.timed_out:
        topology.check_alive()
    return result
