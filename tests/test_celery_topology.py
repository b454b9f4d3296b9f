"""The production topology for real: CeleryExecutor on the local PostgreSQL and Redis.

Starts the API server, scheduler, DAG processor, two Celery workers and the sample feed
server as processes (``cm_devtools.topology``), backfills twelve periods of every
feed DAG found in dags/ through the REST API, then unpauses the snapshot DAG
(``indicator_snapshots``) and triggers one manual run per period. It checks that every run
succeeded (feed runs, the snapshot runs and any asset-triggered snapshot run), that both
workers ran tasks, that ``mart_indicator_snapshot_latest`` holds every catalog KPI in every
period (the feed DAGs alone leave the KPIs without a feed out), and that the PostgreSQL
warehouse has the same content (table digests, volatile columns excluded) as the embedded
default's SQLite warehouse built with ``cm run`` from the same feed server plus the snapshot
DAG's step for the twelve periods. Processes, databases and broker keys are removed
afterwards. Under ``CI``/``CM_REQUIRE_POSTGRES`` a missing PostgreSQL or Redis fails the test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cm_devtools.demo.processes import pid_alive
from cm_devtools.topology import cluster, compare, workload
from cm_devtools.topology.services import Services
from cm_devtools.topology.settings import WORKERS
from consumption_monitor.common.periods import Period, period_range
from consumption_monitor.feeds.spec import list_feeds
from consumption_monitor.indicators.catalog import load_catalog
from tests.conftest import postgres_required

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.airflow]

FIRST, LAST = Period(2024, 1), Period(2024, 12)
PORT_API, PORT_FEED = 8131, 8132
TIMEOUT_S = 18 * 60  # under CI alone it takes a fraction of this; a shared machine is slower
SNAPSHOT_TIMEOUT_S = 10 * 60


@pytest.fixture
def services() -> Services:
    services = Services.from_env()
    problem = services.unreachable()
    if problem:
        if postgres_required():
            pytest.fail(problem)
        pytest.skip(problem)
    return services


def _databases(services: Services, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(services.pg_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "select datname from pg_database where datname like %s", (prefix + "%",)
        ).fetchall()
    return [r[0] for r in rows]


def _latest_snapshots(url: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(KPI, period) pairs of ``mart_indicator_snapshot_latest``, and the feeds (through the
    catalog) of its KPIs that have a value."""
    from sqlalchemy import text

    from consumption_monitor.warehouse.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "select kpi_id, period, coalesce(actual_month, actual_ytd) is not null "
                    "from mart_indicator_snapshot_latest"
                )
            ).all()
    finally:
        engine.dispose()
    catalog = load_catalog()
    feeds = {catalog.kpi(kpi).feed for kpi, _, valued in rows if valued}
    return {(kpi, period) for kpi, period, _ in rows}, feeds - {None}


@pytest.mark.timeout(TIMEOUT_S + SNAPSHOT_TIMEOUT_S + 600)
def test_celery_topology_builds_the_embedded_warehouse(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = time.monotonic()
    topo = cluster.new_topology(
        tmp_path / "celery", port_api=PORT_API, port_feed=PORT_FEED, services=services
    )
    tag = topo.key_prefix.rstrip(":")
    try:
        cluster.start(topo)
        feeds = workload.wait_for_dag_files(topo)
        assert feeds == list_feeds(), "every feed spec has a feed DAG and only those"

        tallies = workload.backfill(topo, feeds, FIRST, LAST, timeout_s=TIMEOUT_S)
        assert workload.failures(topo, tallies) == []
        for feed, tally in tallies.items():
            assert len(tally.expected) == 12, feed
            assert {r["state"] for r in tally.runs.values()} == {"success"}, feed
        t_snap = time.monotonic()
        snaps = workload.snapshots(topo, FIRST, LAST, timeout_s=SNAPSHOT_TIMEOUT_S)
        print(
            f"snapshot DAG: {len(snaps.runs)} runs ({snaps.asset_triggered} asset-triggered) "
            f"in {time.monotonic() - t_snap:.0f} s"
        )
        assert not snaps.timed_out, snaps.unfinished
        assert snaps.unsuccessful == []
        assert {snaps.state(p) for p in snaps.manual} == {"success"}
        assert len(snaps.manual) == 12
        for n in range(1, WORKERS + 1):
            log = topo.started[f"worker-{n}"].log.read_text(errors="replace")
            assert "Executing workload in Celery" in log, f"worker-{n} ran no task"
        celery_digest = compare.digests(topo.warehouse_url)
        assert sum(d["rows"] for d in celery_digest.values()) > 0

        monkeypatch.setenv("CM_FEED_BASE_URL", topo.feed_url)
        monkeypatch.setenv("CM_FEED_TOKEN", topo.token)
        monkeypatch.setenv("CM_PII_KEY", topo.env()["CM_PII_KEY"])  # the same pseudonyms
        embedded_url = f"sqlite:///{tmp_path / 'embedded.db'}"
        compare.build_embedded(
            feeds, FIRST, LAST, url=embedded_url, data_dir=tmp_path / "embedded", snapshots=True
        )
        embedded_digest = compare.digests(embedded_url)
        every_kpi = {(k.id, str(p)) for k in load_catalog().kpis for p in period_range(FIRST, LAST)}
        for url in (topo.warehouse_url, embedded_url):
            pairs, valued_feeds = _latest_snapshots(url)
            assert pairs == every_kpi, sorted(every_kpi ^ pairs)[:10]
            assert len(valued_feeds) > 1, valued_feeds
        differing = sorted(
            name
            for name in set(celery_digest) | set(embedded_digest)
            if celery_digest.get(name) != embedded_digest.get(name)
        )
        detail = {n: (celery_digest.get(n), embedded_digest.get(n)) for n in differing}
        assert differing == [], detail
    finally:
        pids = [s.proc.pid for s in topo.started.values()]
        cluster.stop(topo)
        print(f"celery topology test: {time.monotonic() - t0:.0f} s")
    assert not [pid for pid in pids if pid_alive(pid)]
    assert _databases(services, tag) == []
