"""DAG integrity: imports cleanly, follows the conventions, parses without heavy imports,
and runs end to end through Airflow (``dag.test()``) against the real feed server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import airflow_env

from cm_devtools import dagparse
from consumption_monitor.feeds.spec import list_feeds, load_feed

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))
HEAVY = ("pandas", "great_expectations", "psycopg", "requests", "openpyxl", "numpy")
# Generous: catches a heavy import at parse time (seconds), not scheduling noise. The
# tighter 0.2 s goal per file is a benchmark (bench/), not a test.
PARSE_BUDGET_S = 1.0

pytestmark = pytest.mark.airflow


def test_there_are_dag_files() -> None:
    assert [p.name for p in DAG_FILES] == sorted(p.name for p in DAG_FILES)
    assert "retail_monthly.py" in [p.name for p in DAG_FILES]


def test_dagbag_imports_without_errors_and_follows_conventions(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow_env(monkeypatch, airflow_home)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "retail_monthly" in bag.dag_ids
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no documentation"
        assert dag.catchup is False
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries}"
    for feed in list_feeds():  # a DAG per feed, built from its spec and the measure catalog
        assert bag.get_dag(feed) is not None, f"feed {feed} has no DAG"
        _assert_built_from_spec_and_catalog(bag.get_dag(feed), load_feed(feed))
    retail = bag.get_dag("retail_monthly")
    assert [t.task_id for t in retail.topological_sort()] == [
        "extract",
        "validate",
        "load",
        "snapshot",
    ]
    outlets = retail.get_task("load").outlets
    assert [a.uri for a in outlets] == ["cm://warehouse/core/retail_monthly"]


def _assert_built_from_spec_and_catalog(dag, spec) -> None:
    """The DAG fires at 06:00 bureau time on the spec's release day from its first period,
    and is tagged with the spec's tags and the catalog's measures of the feed."""
    import pendulum

    from consumption_monitor.common.periods import BUREAU_TIMEZONE, Period
    from consumption_monitor.indicators.catalog import load_catalog

    timetable = dag.timetable
    expression = getattr(timetable, "expression", None) or timetable._expression
    assert expression == f"0 6 {spec.release_day} * *", (spec.name, expression)
    assert str(timetable.timezone) == BUREAU_TIMEZONE
    first = Period.parse(spec.first_period)
    start = pendulum.datetime(first.year, first.month, spec.release_day, tz=BUREAU_TIMEZONE)
    assert dag.start_date == start, (spec.name, dag.start_date)
    measures = [m.number for m in load_catalog().measures_for_feed(spec.name)]
    assert measures, f"no KPI of the catalog reads {spec.name}"
    expected = {"consumption-monitor", "feed", *spec.tags, *(f"measure-{n}" for n in measures)}
    assert set(dag.tags) == expected, (spec.name, dag.tags)


def test_the_feed_dag_follows_its_spec(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Change the spec, and the built DAG changes with it: nothing is written twice."""
    from dataclasses import replace

    from consumption_monitor.common.periods import BUREAU_TZ

    airflow_env(monkeypatch, airflow_home)
    from consumption_monitor.orchestration import feed_dag

    spec = replace(
        load_feed("employment_monthly"), release_day=27, first_period="2025-07", tags=("x", "y")
    )
    monkeypatch.setattr(feed_dag, "load_feed", lambda name: spec)
    dag = feed_dag.build_feed_dag("employment_monthly", doc_md="doc")
    _assert_built_from_spec_and_catalog(dag, spec)
    assert {"measure-1", "measure-6", "x", "y"} <= set(dag.tags)
    assert str(dag.start_date.astimezone(BUREAU_TZ).date()) == "2025-07-27"
    assert dag.doc_md == "doc"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_fast_without_heavy_imports(dag_file: Path) -> None:
    result = dagparse.measure(dag_file)
    heavy = [m for m in result["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time"
    assert not [
        m
        for m in result["new_modules"]
        if m.startswith(("consumption_monitor.pipeline.steps", "consumption_monitor.warehouse"))
    ]
    assert result["seconds"] < PARSE_BUDGET_S, result["seconds"]


@pytest.mark.slow
def test_dag_test_runs_a_period_end_to_end(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    """``dag.test()`` executes every task through Airflow's task runner."""
    import pendulum

    airflow_env(monkeypatch, airflow_home)
    warehouse = f"sqlite:///{tmp_path / 'dagtest.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", warehouse)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "retail_monthly.py")).get_dag("retail_monthly")
    # A run is due at the end of its interval: the run of 15 April loads March.
    run = dag.test(logical_date=pendulum.datetime(2025, 4, 15, 6, tz="Asia/Shanghai"))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}

    from sqlalchemy import text

    from consumption_monitor.warehouse.db import engine_for

    with engine_for(warehouse).connect() as conn:
        periods = conn.execute(text("select distinct period from core_retail_above_quota"))
        runs = conn.execute(text("select dag_id, task_id from audit_load_run where step='load'"))
        assert periods.scalars().all() == ["2025-03"]
        assert runs.fetchall() == [("retail_monthly", "load")]


@pytest.mark.slow
def test_a_january_run_is_skipped_not_failed(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    import pendulum

    airflow_env(monkeypatch, airflow_home)
    monkeypatch.setenv("CM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'jan.db'}")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "retail_monthly.py")).get_dag("retail_monthly")
    run = dag.test(logical_date=pendulum.datetime(2025, 2, 15, 6, tz="Asia/Shanghai"))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success"
    assert states["extract"] == "skipped" and states["load"] == "skipped"


@pytest.mark.slow
def test_catchup_dag_loads_a_range_of_periods_of_several_feeds(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    """One mapped task per feed; every period lands and is recorded under the catch-up DAG."""
    airflow_env(monkeypatch, airflow_home)
    warehouse = f"sqlite:///{tmp_path / 'catchup.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", warehouse)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "feed_catchup.py")).get_dag("feed_catchup")
    conf = {"feeds": ["retail_monthly", "employment_monthly"], "from": "2025-01", "to": "2025-03"}
    run = dag.test(run_conf=conf)
    tis = run.get_task_instances()
    assert str(run.state) == "success", {(t.task_id, t.map_index): str(t.state) for t in tis}
    mapped = [t for t in tis if t.task_id == "catch_up"]
    assert sorted(t.map_index for t in mapped) == [0, 1]

    from sqlalchemy import text

    from consumption_monitor.warehouse.db import engine_for

    with engine_for(warehouse).connect() as conn:
        retail = conn.execute(text("select distinct period from core_retail_above_quota"))
        employment = conn.execute(
            text("select distinct period from core_employment_monthly_figures")
        )
        runs = conn.execute(text("select distinct dag_id from audit_load_run"))
        assert sorted(retail.scalars().all()) == ["2025-02", "2025-03"]
        assert sorted(employment.scalars().all()) == ["2025-01", "2025-02", "2025-03"]
        assert runs.scalars().all() == ["feed_catchup"]


@pytest.mark.slow
def test_catchup_dag_fails_at_once_on_an_unknown_feed(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    airflow_env(monkeypatch, airflow_home)
    monkeypatch.setenv("CM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'nope.db'}")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "feed_catchup.py")).get_dag("feed_catchup")
    run = dag.test(run_conf={"feeds": ["no_such_feed"], "from": "2025-01", "to": "2025-02"})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    assert states["plan"] == "failed"


@pytest.mark.slow
def test_tradein_dag_runs_a_period_with_its_pii_key(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    """The trade-in DAG through Airflow's task runner: the run of 5 April loads March, the
    pseudonymisation key coming from the environment (as the demo sets it)."""
    import pendulum

    airflow_env(monkeypatch, airflow_home)
    monkeypatch.setenv("CM_TRADEIN_ROWS_PER_MONTH", "300")
    warehouse = f"sqlite:///{tmp_path / 'tradein.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", warehouse)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "tradein_transactions.py")).get_dag("tradein_transactions")
    run = dag.test(logical_date=pendulum.datetime(2025, 4, 5, 6, tz="Asia/Shanghai"))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    from sqlalchemy import text

    from consumption_monitor.warehouse.db import engine_for

    with engine_for(warehouse).connect() as conn:
        rows = conn.execute(
            text("select period, count(*) from core_tradein_transactions group by period")
        ).all()
    assert rows == [("2025-03", 300)]


@pytest.mark.slow
def test_the_complaints_dag_pulls_open_months_again(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    """October 2025 pulled on 5 November has cases still 办理中; the run of 10 December
    loads November, then its repull task pulls October again (issue 15 §4)."""
    import datetime

    import pendulum
    from sqlalchemy import text

    from consumption_monitor.pipeline.repull import open_periods
    from consumption_monitor.pipeline.steps import run_period
    from consumption_monitor.warehouse.db import engine_for

    airflow_env(monkeypatch, airflow_home)
    warehouse = f"sqlite:///{tmp_path / 'complaints.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", warehouse)
    monkeypatch.setattr(feed_server, "as_of", datetime.date(2025, 11, 5))
    run_period("complaints_12315", "2025-10", url=warehouse)
    assert "2025-10" in open_periods(engine_for(warehouse), "complaints_12315").due
    monkeypatch.setattr(feed_server, "as_of", datetime.date(2025, 12, 20))
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "complaints_12315.py")).get_dag("complaints_12315")
    assert [t.task_id for t in dag.topological_sort()][-1] == "repull"
    run = dag.test(logical_date=pendulum.datetime(2025, 12, 10, 6, tz="Asia/Shanghai"))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    with engine_for(warehouse).connect() as conn:
        batches = dict(
            conn.execute(
                text(
                    "select period, count(*) from audit_load_batch "
                    "where feed = 'complaints_12315' group by period"
                )
            ).all()
        )
    assert batches == {"2025-10": 2, "2025-11": 1}  # October pulled again: a revision


def test_the_snapshot_dag_listens_to_every_feed_asset(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow_env(monkeypatch, airflow_home)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "indicator_snapshots.py")).get_dag("indicator_snapshots")
    assert [t.task_id for t in dag.topological_sort()] == ["periods", "snapshot", "report"]
    uris = {a.uri for a in dag.timetable.asset_condition.objects}
    assert uris == {f"cm://warehouse/core/{feed}" for feed in list_feeds()}
    assert len(list_feeds()) == 6


def test_periods_come_from_the_events_extra() -> None:
    from types import SimpleNamespace

    from consumption_monitor.orchestration.assets import periods_of_events

    events = {
        "a": [SimpleNamespace(extra={"period": "2025-03"}), SimpleNamespace(extra={})],
        "b": [SimpleNamespace(extra={"period": "2025-01"}), SimpleNamespace(extra=None)],
        "c": [SimpleNamespace(extra={"periods": ["2024-11", "2025-01"], "source": "catch-up"})],
    }
    assert periods_of_events(events) == ["2024-11", "2025-01", "2025-03"]
    assert periods_of_events(None) == []


@pytest.mark.slow
def test_the_snapshot_dag_runs_through_airflow(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, feed_server, tmp_path: Path
) -> None:
    """A manual run with a period: every KPI of the period gets a snapshot row."""
    airflow_env(monkeypatch, airflow_home)
    warehouse = f"sqlite:///{tmp_path / 'snap.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", warehouse)
    from airflow.dag_processing.dagbag import DagBag

    from consumption_monitor.pipeline.steps import run_period

    monkeypatch.setenv("CM_REPORTS_DIR", str(tmp_path / "reports"))
    run_period("retail_monthly", "2025-03", url=warehouse)
    dag = DagBag(dag_folder=str(DAGS / "indicator_snapshots.py")).get_dag("indicator_snapshots")
    run = dag.test(run_conf={"periods": ["2025-03"]})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states

    from sqlalchemy import text

    from consumption_monitor.warehouse.db import engine_for

    with engine_for(warehouse).connect() as conn:
        rows = conn.execute(
            text("select kpi_id, status from mart_indicator_snapshot_latest where period='2025-03'")
        ).fetchall()
    from consumption_monitor.indicators.catalog import load_catalog

    assert len(rows) == len(load_catalog().kpis)
    assert ("m19_retail_sales_total", None) in rows  # an indicator with data: no target
    assert (tmp_path / "reports" / "2025-03.html").exists()
    assert (tmp_path / "reports" / "2025-03.xlsx").exists()
