"""The production topology, natively: Airflow with CeleryExecutor on PostgreSQL and Redis.

Why this module exists: ``docker-compose.yaml`` and the Helm values describe a distributed
Airflow (API server, scheduler, DAG processor, Celery workers, Redis broker, PostgreSQL for
the metadata and the warehouse), but no Docker engine runs here or in CI. This module starts
the same components as plain processes on the local PostgreSQL and Redis, each in databases
and a Redis key prefix of its own, so the native Celery test and the backfill benchmark prove
the topology for real. It reuses the demo's machinery (configuration merge, process spawning
and stopping, the REST API client, backfill submission and run tracking) instead of a copy.

Decisions (2-core reference machine):

* Two ``airflow celery worker`` processes, ``WORKER_CONCURRENCY`` task slots each; they skip
  the log-serving sub-process (both would bind the same port) and write task logs to the
  shared log folder, which the API server reads.
* Great Expectations takes 10-17 s to import. The workers import it (and pandas, SQLAlchemy)
  once at start-up through ``[celery] celery_config_options`` pointing at
  ``consumption_monitor.orchestration.celery_config`` with ``CM_CELERY_PRELOAD=1`` in their
  environment:
  the prefork pool children and the task processes forked from them inherit the modules.
* No triggerer: no task of the feed DAGs defers. The compose file still has one.
* The snapshot DAG (``indicator_snapshots``) stays paused during the feed backfill, so the
  feed loads queue no asset events for it; afterwards ``run_snapshots`` unpauses it and
  triggers one manual run per period, as an operator recomputing the snapshots would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cm_devtools import demo
from cm_devtools.demo import (
    ADMIN_USER,
    AirflowApi,
    Console,
    DemoError,
    Layout,
    Started,
    airflow_ready,
    http_json,
    merge_airflow_cfg,
    spawn,
    stop_all,
    wait_for,
    write_private,
)
from consumption_monitor.common.periods import Period

WORKERS = 2
WORKER_CONCURRENCY = 2
PARALLELISM = WORKERS * WORKER_CONCURRENCY
CELERY_CONFIG = "consumption_monitor.orchestration.celery_config.CELERY_CONFIG"
FEED_TAG = "feed"  # every DAG built by orchestration.build_feed_dag carries it
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class StateLayout(Layout):
    """The demo's layout with its state (Airflow home, data, logs) under ``state``.

    DAGs and plugins still come from the repository; the warehouse URL is given (PostgreSQL
    in the Celery topology) instead of the embedded SQLite file.
    """

    state: Path = field(default=Path("."))
    warehouse: str = ""

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def data(self) -> Path:
        return self.state / "data"

    @property
    def warehouse_url(self) -> str:
        return self.warehouse or f"sqlite:///{self.warehouse_path}"


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Services:
    """The local PostgreSQL server (admin URL) and the Redis database the topology uses."""

    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    redis_url: str = DEFAULT_REDIS_URL

    @classmethod
    def from_env(cls) -> Services:
        return cls(
            pg_admin_url=os.environ.get("CM_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL),
            redis_url=os.environ.get("CM_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        )

    def unreachable(self) -> str | None:
        """Why PostgreSQL or Redis cannot be used, or None when both answer."""
        import psycopg
        import redis

        try:
            with psycopg.connect(self.pg_admin_url, connect_timeout=5) as conn:
                conn.execute("select 1")
        except Exception as exc:
            return f"PostgreSQL not reachable at {self.pg_admin_url}: {exc}"
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5)
            client.ping()
            client.close()
        except Exception as exc:
            return f"Redis not reachable at {self.redis_url}: {exc}"
        return None

    def db_url(self, name: str, driver: str = "postgresql+psycopg") -> str:
        base = self.pg_admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"{driver}://{base}/{name}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'create database "{name}"')

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def drop_redis_keys(self, prefix: str) -> int:
        """Delete the broker keys of one topology (its ``global_keyprefix``), nothing else."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            return int(client.delete(*keys)) if keys else 0
        finally:
            client.close()


# --------------------------------------------------------------------------- configuration


def celery_settings(
    layout: Layout,
    *,
    port_api: int,
    metadata_url: str,
    broker_url: str,
    result_backend: str,
    key_prefix: str,
) -> dict[str, dict[str, str]]:
    """airflow.cfg options of the Celery topology (the compose file sets the same ones)."""
    return {
        "core": {
            "dags_folder": str(layout.dags),
            "plugins_folder": str(layout.plugins),
            "load_examples": "False",
            "executor": "CeleryExecutor",
            "parallelism": str(PARALLELISM),
            "auth_manager": demo.SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(layout.password_file),
            "execution_api_server_url": f"http://127.0.0.1:{port_api}/execution/",
        },
        # psycopg 3 serves the async engine too (Airflow would default to asyncpg).
        "database": {"sql_alchemy_conn": metadata_url, "sql_alchemy_conn_async": metadata_url},
        "logging": {"base_log_folder": str(layout.task_logs)},
        "api": {"host": "127.0.0.1", "port": str(port_api), "workers": "1"},
        "celery": {
            "broker_url": broker_url,
            "result_backend": result_backend,
            "worker_concurrency": str(WORKER_CONCURRENCY),
            "celery_config_options": CELERY_CONFIG,
        },
        # Kombu's Redis transport prefixes every key: two topologies can share one Redis DB.
        "celery_broker_transport_options": {
            "global_keyprefix": key_prefix,
            "visibility_timeout": "21600",
        },
        "scheduler": {
            # Only the backfills run: unpausing a DAG must not add its latest scheduled
            # period (catchup=False still creates that one run), or the warehouse would hold
            # a period the comparison build does not.
            "use_job_schedule": "False",
            "task_instance_heartbeat_timeout": "60",
            "orphaned_tasks_check_interval": "30",
        },
        # The DAG files do not change while a test or benchmark runs: parse them once, not
        # every 30 s on cores the tasks need.
        "dag_processor": {"parsing_processes": "1", "min_file_process_interval": "600"},
    }


# --------------------------------------------------------------------------- the topology


@dataclass
class Topology:
    """A running Celery topology: its processes, API client and resources to clean up."""

    layout: StateLayout
    services: Services
    port_api: int
    port_feed: int
    metadata_db: str
    warehouse_db: str
    key_prefix: str
    token: str = ""
    password: str = ""
    started: dict[str, Started] = field(default_factory=dict)
    api: AirflowApi | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port_api}"

    @property
    def warehouse_url(self) -> str:
        return self.layout.warehouse_url

    @property
    def feed_url(self) -> str:
        return f"http://127.0.0.1:{self.port_feed}"

    def env(self, *, preload: bool = False) -> dict[str, str]:
        env = demo.process_env(self.layout, port_feed=self.port_feed, token=self.token)
        if preload:
            env["CM_CELERY_PRELOAD"] = "1"
        return env

    def check_alive(self) -> None:
        """Fail with the log tail of any component that exited."""
        for name, proc in self.started.items():
            if proc.exited() is not None:
                raise DemoError(
                    f"{name} exited ({proc.exited()}), log {proc.log}:\n{demo.tail(proc.log, 30)}"
                )


def new_topology(
    state: Path, *, port_api: int, port_feed: int, services: Services | None = None
) -> Topology:
    """Names (databases, Redis prefix) for a topology under ``state``; nothing started yet."""
    services = services or Services.from_env()
    tag = f"cm_celery_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    warehouse_db = f"{tag}_wh"
    layout = StateLayout(repo=demo.REPO_DIR, state=state, warehouse=services.db_url(warehouse_db))
    return Topology(
        layout=layout,
        services=services,
        port_api=port_api,
        port_feed=port_feed,
        metadata_db=f"{tag}_af",
        warehouse_db=warehouse_db,
        key_prefix=f"{tag}:",
    )


def _airflow(layout: Layout, *args: str) -> list[str]:
    return [str(layout.venv_bin / "airflow"), *args]


def start(topology: Topology, *, console: Console | None = None, timeout_s: float = 240) -> None:
    """Create the databases, migrate both, start every component and wait until healthy."""
    import subprocess

    t, layout, services = topology, topology.layout, topology.services
    for port in (t.port_api, t.port_feed):
        if not demo.port_free(port):
            raise DemoError(f"port {port} is taken ({demo.port_holder(port) or 'unknown'})")
    for path in (layout.airflow_home, layout.demo, layout.data / "archive", layout.task_logs):
        path.mkdir(parents=True, exist_ok=True)
    services.create_database(t.metadata_db)
    services.create_database(t.warehouse_db)
    metadata_url = services.db_url(t.metadata_db)
    write_private(
        layout.airflow_cfg,
        merge_airflow_cfg(
            None,
            celery_settings(
                layout,
                port_api=t.port_api,
                metadata_url=metadata_url,
                broker_url=services.redis_url,
                result_backend="db+" + metadata_url,
                key_prefix=t.key_prefix,
            ),
        ),
    )
    t.password = demo.ensure_admin_password(layout.password_file)
    t.token = secrets.token_urlsafe(24)
    demo.migrate_warehouse(t.warehouse_url)
    env = t.env()
    migrated = subprocess.run(
        _airflow(layout, "db", "migrate"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if migrated.returncode:
        raise DemoError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
    t.started["feed-server"] = spawn(
        layout, "feed-server", demo.feed_command(t.port_feed, t.token), env
    )
    for name, argv in (
        ("api-server", _airflow(layout, "api-server", "--port", str(t.port_api))),
        ("scheduler", _airflow(layout, "scheduler")),
        ("dag-processor", _airflow(layout, "dag-processor")),
    ):
        t.started[name] = spawn(layout, name, argv, env)
    worker_env = t.env(preload=True)
    for n in range(1, WORKERS + 1):
        name = f"worker-{n}"
        argv = _airflow(
            layout,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}-{t.key_prefix.rstrip(':')}@%h",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--skip-serve-logs",
        )
        t.started[name] = spawn(layout, name, argv, worker_env)
    wait_for(
        lambda: (http_json(f"{t.feed_url}/health") or {}).get("status") == "ok",
        what="feed server",
        timeout_s=60,
        started=t.started["feed-server"],
        interval_s=0.5,
    )
    deadline = time.monotonic() + timeout_s

    def healthy() -> bool:
        t.check_alive()
        return airflow_ready(http_json(f"{t.api_url}/api/v2/monitor/health"))

    wait_for(healthy, what="Airflow (Celery)", timeout_s=timeout_s, interval_s=2, console=console)
    t.api = AirflowApi(t.api_url, ADMIN_USER, t.password)
    wait_for(
        lambda: t.check_alive() is None and workers_ready(t) >= WORKERS,
        what="Celery workers",
        timeout_s=max(30.0, deadline - time.monotonic()),
        interval_s=2,
        console=console,
    )


def workers_ready(topology: Topology) -> int:
    """How many workers logged Celery's "ready." line (connected to the broker, consuming)."""
    return sum(
        1
        for name, proc in topology.started.items()
        if name.startswith("worker-") and " ready." in demo.tail(proc.log, 400)
    )


def stop(topology: Topology, *, drop: bool = True) -> None:
    """Stop every process, then drop the databases and the broker keys (best effort each).

    The demo's stop: SIGTERM to the process groups from the pid files and to everything
    carrying this topology's marker, SIGKILL after a grace period.
    """
    with contextlib.suppress(Exception):
        stop_all(topology.layout, grace_s=30, services=topology.started)
    for proc in topology.started.values():
        with contextlib.suppress(Exception):
            proc.proc.wait(timeout=10)
    if not drop:
        return
    from consumption_monitor.warehouse.db import engine_for

    engine_for.cache_clear()  # pooled connections of this process
    for name in (topology.metadata_db, topology.warehouse_db):
        with contextlib.suppress(Exception):
            topology.services.drop_database(name)
    with contextlib.suppress(Exception):
        topology.services.drop_redis_keys(topology.key_prefix)


@contextlib.contextmanager
def running(
    state: Path,
    *,
    port_api: int,
    port_feed: int,
    services: Services | None = None,
    console: Console | None = None,
) -> Iterator[Topology]:
    """Start a topology for the ``with`` block; stop it and drop its databases afterwards."""
    topology = new_topology(state, port_api=port_api, port_feed=port_feed, services=services)
    try:
        start(topology, console=console)
        yield topology
    finally:
        stop(topology)


# --------------------------------------------------------------------------- DAG runs


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
) -> dict[str, demo.RunTally]:
    """Backfill ``first`` .. ``last`` for each DAG through the REST API and wait for the runs.

    Same submission as ``make demo`` (sample ledger files dropped first, file-drop feeds one
    run at a time, the rest sharing the runs in flight).
    """
    api = topology.api
    assert api is not None
    console = console or Console(json_mode=True)
    feeds = tuple(dag_ids)
    file_feeds = demo.file_drop_feeds(feeds)
    incoming = topology.layout.data / "incoming"
    for feed in file_feeds:
        demo.drop_sample_files(
            feed, incoming, topology.layout.demo / f"staging-{feed}", first, last
        )
    t0 = time.monotonic()
    expected: dict[str, list[Period]] = {}
    in_flight = {
        feed: demo.backfill_runs_in_flight(feed, feeds, file_feeds=file_feeds) for feed in feeds
    }
    for feed in feeds:
        expected[feed], _ = demo.submit_backfill(
            api, first, last, rerun_all=False, dag_id=feed, max_active_runs=in_flight[feed]
        )
    for feed in feeds:
        api.set_paused(feed, False)
    tallies, timed_out = demo.watch_runs(
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
        return [r for r in self.runs.values() if r.get("state") not in demo.TERMINAL_STATES]

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
    dag_id = demo.SNAPSHOT_DAG_ID
    tag = uuid.uuid4().hex[:6]
    result = SnapshotRuns(manual={})
    for period in periods:
        result.manual[period] = demo.trigger_run(
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
        except (requests.RequestException, demo.ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"{dag_id}: Airflow not answering: {exc}") from exc
        done = sum(1 for p in result.manual if result.state(p) in demo.TERMINAL_STATES)
        line = (
            f"      {dag_id} {done}/{len(result.manual)} periods, "
            f"{len(result.unfinished)} runs unfinished, {len(result.runs)} runs "
            f"· {demo.format_duration(now - t0)}"
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
        demo._months(first, last),
        timeout_s=timeout_s,
        airflow=topology.started["scheduler"],
        console=console,
    )
    if result.timed_out:
        topology.check_alive()
    return result


def failures(topology: Topology, tallies: Mapping[str, demo.RunTally]) -> list[dict[str, Any]]:
    """Unsuccessful runs with their unfinished tasks and log paths (empty when all passed)."""
    assert topology.api is not None
    return [
        item
        for feed, tally in tallies.items()
        if tally.failed_runs or not tally.done
        for item in demo.describe_failures(topology.api, tally, topology.layout, feed)
    ]


# --------------------------------------------------------------------------- embedded build


def build_embedded(
    feeds: Iterable[str],
    first: Period,
    last: Period,
    *,
    url: str,
    data_dir: Path,
    snapshots: bool = False,
) -> None:
    """The embedded default's warehouse for the same data: ``cm run`` of every feed and period.

    Runs in this process with ``CM_DATA_DIR`` (archive, incoming folder) set to ``data_dir``
    for the duration; the caller points ``CM_FEED_BASE_URL``/``CM_FEED_TOKEN`` at the feed
    server. File-drop feeds get the same sample files the topology got. ``snapshots`` then
    recomputes every KPI of the periods with the snapshot DAG's own step
    (``pipeline.snapshot_periods``): the counterpart of ``run_snapshots``.
    """
    from consumption_monitor.feeds.errors import PeriodNotPublished
    from consumption_monitor.pipeline.steps import run_period, snapshot_periods

    feeds = tuple(feeds)
    saved = os.environ.get("CM_DATA_DIR")
    os.environ["CM_DATA_DIR"] = str(data_dir)
    try:
        demo.migrate_warehouse(url)
        for feed in demo.file_drop_feeds(feeds):
            demo.drop_sample_files(
                feed, data_dir / "incoming", data_dir / f"staging-{feed}", first, last
            )
        for feed in feeds:
            for period in demo._months(first, last):
                with contextlib.suppress(PeriodNotPublished):
                    run_period(feed, str(period), url=url)
        if snapshots:
            snapshot_periods([str(p) for p in demo._months(first, last)], url=url)
    finally:
        if saved is None:
            os.environ.pop("CM_DATA_DIR", None)
        else:
            os.environ["CM_DATA_DIR"] = saved


def digests(url: str) -> dict[str, dict[str, Any]]:
    """``cm digest --exclude-volatile`` of a warehouse: sha256 and rows per analytic table."""
    from consumption_monitor.warehouse.db import make_engine
    from consumption_monitor.warehouse.digest import warehouse_digest

    engine = make_engine(url)
    try:
        return warehouse_digest(engine, exclude_volatile=True)
    finally:
        engine.dispose()
