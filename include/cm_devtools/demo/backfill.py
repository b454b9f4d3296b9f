"""Periods into Airflow runs: backfill windows, the runs in flight, backfill submission.

A run's period is the calendar month (Asia/Shanghai) of its logical date. Four backfill runs
are in flight at once, shared between the demo's DAGs (at least one each); file-drop feeds
run one period at a time (every run takes files in from the same folder). Existing runs that
must run again are cleared one at a time: a backfill that "reprocesses" them does it in one
long transaction that SQLite refuses while the scheduler writes. The DAG is paused while its
runs are being queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cm_devtools.demo.common import DAG_ID, DemoError
from cm_devtools.demo.rest import AirflowApi, ApiError
from consumption_monitor.common.periods import BUREAU_TZ as SHANGHAI
from consumption_monitor.common.periods import Period, period_range

# Backfill runs in flight at once: enough to keep the task slots (``airflow_home.PARALLELISM``)
# busy while a run waits for the scheduler to queue its next task.
BACKFILL_MAX_ACTIVE_RUNS = 4


def backfill_window(first: Period, last: Period) -> tuple[datetime, datetime]:
    """Backfill from/to dates covering exactly the runs of periods ``first`` .. ``last``.

    A run's logical date is its data-interval start, which lies inside the period's month
    (15th 06:00 Asia/Shanghai for retail_monthly), and Airflow includes every run whose
    logical date is within [from, to]. Whole months in the DAG's timezone make the mapping
    independent of the cron's day and hour.
    """
    if last < first:
        raise DemoError(f"--to {last} 早于 --from {first}")
    start = datetime(first.year, first.month, 1, tzinfo=SHANGHAI)
    after = last.shift(1)
    end = datetime(after.year, after.month, 1, tzinfo=SHANGHAI) - timedelta(seconds=1)
    return start, end


def period_of_logical_date(value: str | datetime) -> Period:
    """The period a run handles: the calendar month (Asia/Shanghai) of its logical date."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"naive logical date {value!r}")
    local = moment.astimezone(SHANGHAI)
    return Period(local.year, local.month)


def backfill_body(
    dag_id: str,
    start: datetime,
    end: datetime,
    reprocess: str = "none",
    max_active_runs: int = BACKFILL_MAX_ACTIVE_RUNS,
) -> dict[str, Any]:
    """POST /backfills body for ``dag_id`` between ``start`` and ``end`` (inclusive)."""
    return {
        "dag_id": dag_id,
        "from_date": start.isoformat(),
        "to_date": end.isoformat(),
        "reprocess_behavior": reprocess,
        "max_active_runs": max_active_runs,
        "run_backwards": False,
    }


def backfill_runs_in_flight(dag_id: str, feeds: Iterable[str], *, file_feeds: Iterable[str]) -> int:
    """Backfill ``max_active_runs`` of one DAG: the demo's budget shared by its DAGs.

    File-drop feeds get one run at a time: every run takes files in from the same folder.
    """
    if dag_id in set(file_feeds):
        return 1
    return max(1, BACKFILL_MAX_ACTIVE_RUNS // max(1, len(list(feeds))))


def runs_to_rerun(runs: Iterable[Mapping[str, Any]], *, rerun_all: bool) -> list[dict[str, Any]]:
    """Existing runs the demo clears so they run again.

    Normally only failed runs: successful ones already loaded their period, and queued or
    running ones are about to. With ``rerun_all`` (the warehouse is empty) every run,
    whatever its state - a run that extracted into a warehouse since deleted cannot finish.
    """
    return [dict(r) for r in runs if rerun_all or r.get("state") == "failed"]


def submit_backfill(
    api: AirflowApi,
    first: Period,
    last: Period,
    *,
    rerun_all: bool,
    dag_id: str = DAG_ID,
    max_active_runs: int = BACKFILL_MAX_ACTIVE_RUNS,
) -> tuple[list[Period], list[str]]:
    """Queue a run for every period and return the periods whose runs we wait for.

    * Periods without a run get one from a backfill (``reprocess_behavior=none``).
    * Existing runs that must run again are cleared one by one. Letting the backfill
      reprocess them instead clears all of them in one long transaction, which SQLite
      refuses while the scheduler writes ("Database is locked ... not supported on SQLite").
    * The expected periods come from Airflow (a dry run that ignores existing runs, plus the
      runs already in the window), so they follow the DAG's timetable: periods whose data
      interval has not ended yet cannot run and are reported, not waited for.
    """
    start, end = backfill_window(first, last)
    notes: list[str] = []
    body = backfill_body(dag_id, start, end, max_active_runs=max_active_runs)
    # Paused, the scheduler leaves the DAG's runs alone while we clear and create them (fewer
    # SQLite write conflicts); the caller unpauses it to release everything at once.
    api.set_paused(dag_id, True)
    runnable = {
        period_of_logical_date(d)
        for d in api.dry_run(backfill_body(dag_id, start, end, "completed"))
    }
    existing = [r for r in api.dag_runs(dag_id, start, end) if r.get("logical_date")]
    expected = sorted(runnable | {period_of_logical_date(r["logical_date"]) for r in existing})
    if not expected:
        raise DemoError(f"{first} … {last} 之间没有可运行的期别（数据区间尚未结束？）")
    skipped = [p for p in period_range(first, last) if p not in set(expected)]
    if skipped:
        notes.append("尚未到运行时间、本次不运行的期别: " + ", ".join(map(str, skipped)))
    rerun = runs_to_rerun(existing, rerun_all=rerun_all)
    for run in rerun:
        api.clear_run(dag_id, run["dag_run_id"])
    if rerun:
        why = "仓库为新建，全部重跑" if rerun_all else "重跑失败的期别"
        notes.append(f"{why}: 已清除 {len(rerun)} 个已有运行 (cleared existing runs)")
    if existing and not rerun:
        notes.append(f"已有 {len(existing)} 期运行成功或进行中，不重跑 (already done)")
    new_runs = len(runnable - {period_of_logical_date(r["logical_date"]) for r in existing})
    if not new_runs:
        return expected, notes
    active = api.active_backfill(dag_id)
    if active is not None:
        notes.append(f"沿用进行中的回填 #{active['id']} (reuse running backfill)")
        return expected, notes
    try:
        created = api.create_backfill(body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        notes.append("已有回填在运行，沿用它 (backfill already running)")
        return expected, notes
    notes.append(
        f"回填 #{created['id']}: 新建 {new_runs} 期运行，同时运行至多 "
        f"{created['max_active_runs']} 期 (backfill created)"
    )
    return expected, notes
