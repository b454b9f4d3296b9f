"""Who is running a step or sending an alert: one run context for the whole package.

Outside Airflow (the CLI, the tests) every field is ``None``. Inside Airflow the only adapter
from a task's context is ``orchestration.context.run_context``; the warehouse records
``dag_id``, ``dag_run_id``, ``task_id`` and ``try_number`` in its audit tables, and alerts
also link to ``log_url``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    """The Airflow run and task behind a step or an alert, when there is one."""

    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    log_url: str | None = None  # the task's log in the Airflow UI (alerts link it; not stored)
