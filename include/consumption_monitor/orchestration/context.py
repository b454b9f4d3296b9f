"""Reading an Airflow task's context: the one place that does.

Everything below ``orchestration`` takes plain arguments; the tasks and the notifier
callbacks turn their context into them here: the period a run loads, the run context the
warehouse records and the alerts cite, and the bureau's "today" of a daily run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from consumption_monitor.common.periods import BUREAU_TZ, period_of_interval_start
from consumption_monitor.common.runs import RunContext


def context_period(context: Mapping[str, Any]) -> str:
    """The period of a feed DAG run: the month its data interval starts in (bureau time)."""
    return str(period_of_interval_start(context["data_interval_start"]))


def context_today(context: Mapping[str, Any]) -> date:
    """A daily run's "today": the end of its data interval in the bureau's time zone."""
    return context["data_interval_end"].astimezone(BUREAU_TZ).date()


def run_context(context: Mapping[str, Any]) -> RunContext:
    """Who is running: the task instance's DAG, run, task, try and log link."""
    ti = context.get("ti")
    if ti is None:
        return RunContext()
    try:
        log_url = ti.log_url
    except Exception:  # no API base URL configured
        log_url = None
    return RunContext(
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
        log_url=log_url,
    )
