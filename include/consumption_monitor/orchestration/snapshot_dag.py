"""The snapshot DAG: indicator snapshots and the monthly report after any feed loads."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, AssetAny, Param, dag, get_current_context, task

from consumption_monitor.orchestration.assets import feed_asset, periods_of_events
from consumption_monitor.orchestration.defaults import DEFAULT_ARGS, PACKAGE_TAG

SNAPSHOT_DAG_ID = "indicator_snapshots"


def build_snapshot_dag(*, feeds: list[str], doc_md: str | None = None) -> DAG:
    """Recompute the indicator snapshots of every period a feed load affects.

    Scheduled on the feeds' Assets (any of them): the loads' periods come from the events'
    ``extra``; a manual run takes ``periods`` from its params (empty: nothing to do).
    """
    condition = AssetAny(*(feed_asset(f) for f in feeds))

    @dag(
        dag_id=SNAPSHOT_DAG_ID,
        schedule=condition,
        start_date=None,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[PACKAGE_TAG, "snapshot", "measure-catalog"],
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
            from consumption_monitor.pipeline.steps import snapshot_periods

            return snapshot_periods(loaded)

        @task(task_display_name="月报 report")
        def report(done: dict[str, Any]) -> dict[str, Any] | None:
            """The HTML and XLSX report of the latest recomputed period."""
            from consumption_monitor.pipeline.steps import report_step

            return report_step(done["periods"])

        report(snapshot(periods()))

    return snapshot_dag()
