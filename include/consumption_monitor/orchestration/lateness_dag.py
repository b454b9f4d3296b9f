"""The lateness DAG: once a day, every feed's periods past due and not loaded alert once."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, dag, get_current_context, task

from consumption_monitor.orchestration.context import context_today
from consumption_monitor.orchestration.defaults import DEFAULT_ARGS, PACKAGE_TAG

LATENESS_DAG_ID = "feed_lateness"


def build_lateness_dag(*, schedule: Any, start_date: Any, doc_md: str | None = None) -> DAG:
    """One task a day: every feed's periods past their due date and not loaded alert once."""

    @dag(
        dag_id=LATENESS_DAG_ID,
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[PACKAGE_TAG, "alerts"],
        doc_md=doc_md,
    )
    def lateness_dag() -> None:
        @task(task_display_name="逾期检查 check")
        def check() -> list[dict[str, Any]]:
            """Today is the end of the run's interval in the bureau's time zone."""
            from consumption_monitor.alerts.channels import configured_channels
            from consumption_monitor.alerts.service import check_lateness

            today = context_today(get_current_context())
            return [d.__dict__ for d in check_lateness(configured_channels(), today)]

        check()

    return lateness_dag()
