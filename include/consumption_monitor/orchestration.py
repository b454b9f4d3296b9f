"""Airflow glue shared by every feed DAG: one builder, thin DAG files.

Only ``airflow.sdk`` and this package's light modules are imported at parse time; the
pipeline (pandas, SQLAlchemy, Great Expectations) is imported inside the tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, dag, get_current_context, task

from consumption_monitor.periods import period_of_interval_start

TIMEZONE = "Asia/Shanghai"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "区统计局",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def feed_asset(feed: str) -> Asset:
    """The Asset a feed DAG updates when it loads a period (consumed by snapshot DAGs)."""
    return Asset(name=f"cm.{feed}", uri=f"cm://warehouse/core/{feed}", group="warehouse")


def _period(context: dict[str, Any]) -> str:
    return str(period_of_interval_start(context["data_interval_start"], TIMEZONE))


def _run_context(context: dict[str, Any]):
    from consumption_monitor.warehouse.loader import RunContext

    ti = context["ti"]
    return RunContext(
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
    )


def build_feed_dag(
    feed: str,
    *,
    schedule: Any,
    start_date: Any,
    tags: list[str],
    doc_md: str | None = None,
    max_active_runs: int = 2,
) -> DAG:
    """extract → validate → load → snapshot for the period of each run's data interval."""
    asset = feed_asset(feed)

    @dag(
        dag_id=feed,
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=max_active_runs,
        default_args=DEFAULT_ARGS,
        tags=["consumption-monitor", "feed", *tags],
        doc_md=doc_md,
        render_template_as_native_obj=True,
    )
    def feed_dag() -> None:
        @task(task_display_name="抽取 extract")
        def extract() -> dict[str, Any]:
            """Fetch the period into the raw archive; January-style gaps skip the run."""
            from airflow.sdk.exceptions import AirflowSkipException

            from consumption_monitor.feeds.errors import PeriodNotPublished
            from consumption_monitor.pipeline import extract_step

            context = get_current_context()
            try:
                return extract_step(feed, _period(context), run=_run_context(context))
            except PeriodNotPublished as exc:
                raise AirflowSkipException(str(exc)) from exc

        @task(task_display_name="校验 validate")
        def validate(batch: dict[str, Any]) -> dict[str, Any]:
            """Run the GX suites; a rejected batch fails at once (retrying cannot fix it)."""
            from airflow.sdk.exceptions import AirflowFailException

            from consumption_monitor.pipeline import BatchRejected, validate_step

            try:
                return validate_step(feed, batch, run=_run_context(get_current_context()))
            except BatchRejected as exc:
                raise AirflowFailException(str(exc)) from exc

        @task(task_display_name="入库 load", outlets=[asset])
        def load(batch: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
            """Make the batch the current version of its period, atomically."""
            from consumption_monitor.pipeline import load_step

            context = get_current_context()
            result = load_step(feed, batch, run=_run_context(context))
            context["outlet_events"][asset].extra = {
                "period": batch["period"],
                "batch_id": batch["batch_id"],
                "outcome": result["outcome"],
                "verdict": validation["verdict"],
            }
            return result

        @task(task_display_name="指标快照 snapshot")
        def snapshot(loaded: dict[str, Any]) -> dict[str, Any]:
            from consumption_monitor.pipeline import snapshot_step

            return snapshot_step(feed, loaded["period"])

        batch = extract()
        snapshot(load(batch, validate(batch)))

    return feed_dag()


def periods_of_events(events: Any) -> list[str]:
    """The periods named in the ``extra`` of triggering asset events (feed loads)."""
    periods: set[str] = set()
    for key in list(events or {}):
        for event in events[key]:
            period = (getattr(event, "extra", None) or {}).get("period")
            if period:
                periods.add(str(period))
    return sorted(periods)


def build_snapshot_dag(*, feeds: list[str], doc_md: str | None = None) -> DAG:
    """Recompute the indicator snapshots of every period a feed load affects.

    Scheduled on the feeds' Assets (any of them): the loads' periods come from the events'
    ``extra``; a manual run takes ``periods`` from its params (empty: nothing to do).
    """
    from airflow.sdk import AssetAny, Param

    condition = AssetAny(*(feed_asset(f) for f in feeds))

    @dag(
        dag_id="indicator_snapshots",
        schedule=condition,
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["consumption-monitor", "snapshot", "measure-catalog"],
        doc_md=doc_md,
        params={"periods": Param([], type="array", description="periods YYYY-MM for a manual run")},
    )
    def snapshot_dag() -> None:
        @task(task_display_name="受影响期别 periods")
        def periods() -> list[str]:
            """The periods loaded by the triggering feed runs, or the manual params."""
            context = get_current_context()
            found = periods_of_events(context.get("triggering_asset_events"))
            return found or [str(p) for p in context["params"].get("periods") or []]

        @task(task_display_name="指标快照 snapshot")
        def snapshot(loaded: list[str]) -> dict[str, Any]:
            """Every KPI of those periods and of the later ones they affect."""
            from consumption_monitor.pipeline import snapshot_periods

            return snapshot_periods(loaded)

        @task(task_display_name="月报 report")
        def report(done: dict[str, Any]) -> dict[str, Any] | None:
            """The HTML and XLSX report of the latest recomputed period."""
            from consumption_monitor.pipeline import report_step

            return report_step(done["periods"])

        report(snapshot(periods()))

    return snapshot_dag()
