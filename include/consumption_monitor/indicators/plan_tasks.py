"""The plan's qualitative tasks (``plan_tasks.yaml``) as raw milestone KPIs for the catalog.

Why a file of its own beside ``measures.yaml`` (issue 15 §5): about forty tasks of the
plan had no KPI and were invisible in every report; each task is now a milestone KPI
quoted from the plan with its 责任单位 and reported through the ledger 重点任务进度. The
numeric targets and the economic indicators stay in ``measures.yaml``; every task lives
here, so a revised plan is checked clause by clause against one list
(``tests/test_catalog.py``: each clause is quoted by a KPI, covered by a named indicator or
excluded with a reason). This module only reads and defaults the file; the catalog checks
the KPIs like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from consumption_monitor.feeds.spec import YAML_LOADER

TASKS_FILE = Path(__file__).resolve().parent / "plan_tasks.yaml"
DEFAULTS = {  # every task is read from the ledger 重点任务进度
    "kind": "milestone",
    "source": "mart_ledger_milestones_monthly",
    "feed": "work_ledgers",
    "aggregation": "milestone",
}


class TasksError(ValueError):
    """A task entry the catalog cannot take."""


def task_kpis(data: dict[str, Any] | None) -> dict[int, list[dict[str, Any]]]:
    """Raw milestone KPIs per measure number, defaults applied (``task`` = ``name``)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for raw in (data or {}).get("tasks") or ():
        where = f"plan task {raw.get('id')!r}"
        missing = [k for k in ("id", "measure", "name", "seed", "units") if not raw.get(k)]
        if missing:
            raise TasksError(f"{where}: missing {missing}")
        if not str(raw["id"]).startswith(f"m{int(raw['measure']):02d}_"):
            raise TasksError(f"{where}: the id starts with m<measure, two digits>_")
        kpi = {**DEFAULTS, "task": raw["name"], **raw}
        if kpi["kind"] != "milestone":
            raise TasksError(f"{where}: plan tasks are milestones")
        if len(kpi["task"]) > 128:
            raise TasksError(f"{where}: a ledger task name has at most 128 characters")
        out.setdefault(int(kpi.pop("measure")), []).append(kpi)
    return out


def read_tasks(path: Path | None = None) -> dict[str, Any]:
    source = path or TASKS_FILE
    if not source.exists():
        return {}
    return yaml.load(source.read_text(encoding="utf-8"), Loader=YAML_LOADER)  # C loader: DAG parse
