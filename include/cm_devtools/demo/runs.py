"""Watching runs: per-period tallies, progress lines, manual runs, the catch-up run, failures.

A few failed polls are tolerated (the API server is busy while many runs start); Airflow
having exited, or not answering for a minute, ends a wait with an error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cm_devtools.demo.backfill import (
    BACKFILL_MAX_ACTIVE_RUNS,
    backfill_body,
    backfill_window,
    period_of_logical_date,
)
from cm_devtools.demo.common import CATCHUP_DAG_ID, DAG_ID, SNAPSHOT_DAG_ID, DemoError, Layout
from cm_devtools.demo.console import Console, format_duration
from cm_devtools.demo.processes import Started
from cm_devtools.demo.rest import AirflowApi, ApiError
from consumption_monitor.common.periods import Period

TERMINAL_STATES = ("success", "failed")
MISSING_RUN_GRACE_S = 45.0


@dataclass
class RunTally:
    """State of the runs the demo waits for, one (latest) run per expected period."""

    expected: list[Period]
    runs: dict[Period, dict[str, Any]] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for run in self.runs.values() if run.get("state") == state)

    @property
    def finished(self) -> int:
        return sum(1 for run in self.runs.values() if run.get("state") in TERMINAL_STATES)

    @property
    def missing(self) -> list[Period]:
        return [p for p in self.expected if p not in self.runs]

    @property
    def done(self) -> bool:
        return not self.missing and self.finished == len(self.expected)

    @property
    def failed_runs(self) -> list[dict[str, Any]]:
        return [
            self.runs[p] for p in self.expected if self.runs.get(p, {}).get("state") == "failed"
        ]


def tally_runs(expected: Iterable[Period], runs: Iterable[Mapping[str, Any]]) -> RunTally:
    """Keep, per expected period, the run started last (a period has one run per logical date,
    but a cleared or re-triggered run must not be counted twice)."""
    tally = RunTally(expected=sorted(set(expected)))
    wanted = set(tally.expected)
    for run in runs:
        logical = run.get("logical_date")
        if not logical:
            continue
        period = period_of_logical_date(logical)
        if period not in wanted:
            continue
        current = tally.runs.get(period)
        if current is None or str(run.get("run_after") or "") >= str(
            current.get("run_after") or ""
        ):
            tally.runs[period] = dict(run)
    return tally


def progress_line(tally: RunTally, elapsed_s: float) -> str:
    """One compact status line: '已完成 12/34 期 · 运行中 2 · 排队 3 · 失败 0 · 已用时 1:05'.

    Runs not created yet count as queued (排队), so the numbers always add up.
    """
    return _progress(
        finished=tally.finished,
        expected=len(tally.expected),
        running=tally.count("running"),
        queued=tally.count("queued") + len(tally.missing),
        failed=tally.count("failed"),
        elapsed_s=elapsed_s,
    )


def _progress(
    *, finished: int, expected: int, running: int, queued: int, failed: int, elapsed_s: float
) -> str:
    return (
        f"已完成 {finished}/{expected} 期 · 运行中 {running} · 排队 {queued} · 失败 {failed}"
        f" · 已用时 {format_duration(elapsed_s)}"
    )


def progress_line_all(tallies: Mapping[str, RunTally], elapsed_s: float) -> str:
    """``progress_line`` over several DAGs, with each DAG's finished/expected in front:
    'retail_monthly 3/4 · work_ledgers 1/4 | 已完成 4/8 期 · 运行中 2 · …'."""
    if len(tallies) == 1:
        return progress_line(next(iter(tallies.values())), elapsed_s)
    per_dag = " · ".join(f"{d} {t.finished}/{len(t.expected)}" for d, t in tallies.items())
    tally = list(tallies.values())
    return f"{per_dag} | " + _progress(
        finished=sum(t.finished for t in tally),
        expected=sum(len(t.expected) for t in tally),
        running=sum(t.count("running") for t in tally),
        queued=sum(t.count("queued") + len(t.missing) for t in tally),
        failed=sum(t.count("failed") for t in tally),
        elapsed_s=elapsed_s,
    )


def task_log_path(logs_root: Path, ti: Mapping[str, Any]) -> Path:
    """Where Airflow's default ``log_filename_template`` puts a task attempt's log."""
    path = (
        logs_root
        / f"dag_id={ti['dag_id']}"
        / f"run_id={ti.get('dag_run_id') or ti.get('run_id')}"
        / f"task_id={ti['task_id']}"
    )
    map_index = int(ti.get("map_index", -1) or -1)
    if map_index >= 0:
        path /= f"map_index={map_index}"
    return path / f"attempt={max(1, int(ti.get('try_number') or 1))}.log"


def watch_runs(
    api: AirflowApi,
    expected: Mapping[str, list[Period]],
    window: tuple[Period, Period],
    console: Console,
    *,
    t0: float,
    deadline: float,
    airflow: Started | None = None,
    runs_in_flight: Mapping[str, int] | None = None,
) -> tuple[dict[str, RunTally], bool]:
    """Poll run states of every DAG until all expected periods finished or the deadline passed.

    ``expected`` maps DAG id to its periods. A few failed polls are tolerated (the API server
    is busy while many runs start); Airflow having exited, or not answering for a minute,
    ends the wait with an error. Periods that still have no run after a while (a backfill
    creation that SQLite cut short) get a new backfill, which creates only the missing runs.
    """
    import requests

    start, end = backfill_window(*window)
    tallies = {dag_id: tally_runs(periods, []) for dag_id, periods in expected.items()}
    failing_since: float | None = None
    missing_since: dict[str, float] = {}
    while True:
        now = time.monotonic()
        try:
            for dag_id, periods in expected.items():
                if tallies[dag_id].done:
                    continue
                tally = tallies[dag_id] = tally_runs(periods, api.dag_runs(dag_id, start, end))
                if not tally.missing:
                    missing_since.pop(dag_id, None)
                    continue
                since = missing_since.setdefault(dag_id, now)
                if now - since > MISSING_RUN_GRACE_S:
                    del missing_since[dag_id]
                    if api.active_backfill(dag_id) is None:
                        in_flight = (runs_in_flight or {}).get(dag_id, BACKFILL_MAX_ACTIVE_RUNS)
                        with contextlib.suppress(ApiError):  # 409: one was created meanwhile
                            api.create_backfill(
                                backfill_body(dag_id, start, end, max_active_runs=in_flight)
                            )
                            console.say(
                                f"      {dag_id} 补建缺少的运行: "
                                + ", ".join(map(str, tally.missing))
                            )
            failing_since = None
        except (requests.RequestException, ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"Airflow 无响应或已停止，无法继续跟踪运行: {exc}") from exc
        line = progress_line_all(tallies, time.monotonic() - t0)
        done = all(t.done for t in tallies.values())
        if done or time.monotonic() > deadline:
            console.final_status(line)
            return tallies, not done
        console.status(line)
        time.sleep(3)


def trigger_run(
    api: AirflowApi,
    dag_id: str,
    conf: Mapping[str, Any],
    note: str,
    *,
    run_id: str | None = None,
) -> str:
    """Unpause ``dag_id`` and queue one manual run with ``conf``; returns its run id (by
    default one per second: callers queuing several at once pass their own)."""
    run_id = run_id or f"demo__{int(time.time())}"
    api.set_paused(dag_id, False)
    api.call(
        "POST",
        f"/dags/{dag_id}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf), "note": note},
    )
    return run_id


def trigger_catchup(api: AirflowApi, feeds: Iterable[str], first: Period, last: Period) -> str:
    """Queue one feed_catchup run for ``feeds`` over ``first`` … ``last``; returns its run id."""
    conf = {"feeds": list(feeds), "from": str(first), "to": str(last)}
    return trigger_run(api, CATCHUP_DAG_ID, conf, "make demo: 历史补数")


def run_state(api: AirflowApi, dag_id: str, run_id: str) -> str:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").get("state") or "queued"


def report_run(
    api: AirflowApi, period: Period, *, deadline: float, airflow: Started | None = None
) -> dict[str, Any]:
    """The indicator_snapshots DAG for ``period``: every KPI's snapshot and the monthly
    report (HTML + XLSX). Unpaused, it also follows the feeds' Assets from now on."""
    run_id = trigger_run(
        api, SNAPSHOT_DAG_ID, {"periods": [str(period)]}, "make demo: 指标快照与月报"
    )
    state = "queued"
    while time.monotonic() < deadline:
        if airflow is not None and airflow.exited() is not None:
            break
        with contextlib.suppress(ApiError, OSError):
            state = run_state(api, SNAPSHOT_DAG_ID, run_id)
        if state in TERMINAL_STATES:
            break
        time.sleep(3)
    return {"run_id": run_id, "state": state, "period": str(period)}


def catchup_progress(tis: Iterable[Mapping[str, Any]], feeds: Sequence[str]) -> dict[str, str]:
    """State of each feed's catch-up task. The mapped task instances follow the order of
    ``feeds`` (the plan keeps it); Airflow renders their labels only when they finish."""
    out: dict[str, str] = {}
    for ti in tis:
        index = ti.get("map_index")
        if ti.get("task_id") != "catch_up" or index is None or index < 0:
            continue  # -1: the task is not expanded yet
        label = ti.get("rendered_map_index") or (feeds[index] if index < len(feeds) else str(index))
        out[str(label)] = ti.get("state") or "queued"
    return out


def wait_for_catchup(
    api: AirflowApi,
    run_id: str,
    feeds: Sequence[str],
    console: Console,
    *,
    t0: float,
    deadline: float,
    airflow: Started | None = None,
) -> dict[str, Any]:
    """Poll the catch-up run until it ends (or the deadline); returns its state per feed."""
    import requests

    failing_since: float | None = None
    state, states = "queued", {}
    while True:
        now = time.monotonic()
        try:
            run = api.call("GET", f"/dags/{CATCHUP_DAG_ID}/dagRuns/{run_id}")
            state = run.get("state") or "queued"
            states = catchup_progress(api.task_instances(CATCHUP_DAG_ID, run_id), feeds)
            failing_since = None
        except (requests.RequestException, ApiError) as exc:
            failing_since = failing_since or now
            if (airflow is not None and airflow.exited() is not None) or now - failing_since > 60:
                raise DemoError(f"Airflow 无响应或已停止，无法继续跟踪补数: {exc}") from exc
        done = sum(1 for s in states.values() if s in TERMINAL_STATES)
        line = (
            f"      补数 {done}/{len(feeds)} 个数据源完成"
            + "".join(f" · {f} {s}" for f, s in states.items() if s not in TERMINAL_STATES)
            + f" · 已用 {format_duration(time.monotonic() - t0)}"
        )
        if state in TERMINAL_STATES or time.monotonic() > deadline:
            console.final_status(line)
            return {"run_id": run_id, "state": state, "feeds": states}
        console.status(line)
        time.sleep(3)


def describe_failures(
    api: AirflowApi, tally: RunTally, layout: Layout, dag_id: str = DAG_ID
) -> list[dict[str, Any]]:
    """Failed or unfinished runs with their unfinished tasks and log files, for the operator."""
    import requests

    out: list[dict[str, Any]] = []
    for period in tally.expected:
        run = tally.runs.get(period)
        if run is None:
            out.append({"dag_id": dag_id, "period": str(period), "state": "missing", "tasks": []})
            continue
        if run.get("state") == "success":
            continue
        tasks = []
        with contextlib.suppress(DemoError, requests.RequestException):
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                if ti.get("state") in ("success", "skipped"):
                    continue
                entry = {"task_id": ti["task_id"], "state": ti.get("state") or "none"}
                if ti.get("state") in ("failed", "running", "up_for_retry"):
                    entry["log"] = str(task_log_path(layout.task_logs, {**ti, "dag_id": dag_id}))
                tasks.append(entry)
        out.append(
            {
                "dag_id": dag_id,
                "period": str(period),
                "state": run.get("state"),
                "run_id": run["dag_run_id"],
                "tasks": tasks,
            }
        )
    return out
