"""What the operator console shows (``/cm-console/`` in the Airflow UI), gathered in one
plain dict: the rendering is ``console_page.py``, the web app ``console_web.py``.

* a feed × period matrix of the last :data:`MATRIX_PERIODS` periods; a cell's state:
  已入库（通过）/已入库（有警告） (the period's current batch and its verdict), 拒收 (no
  current batch, the newest one rejected), 逾期 (not loaded, past its due date and within
  the lateness window ``alerts/lateness.py`` alerts on), 未到期 (not loaded, not yet due),
  无数据 (not loaded, older than that window or before the feed's first period), and
  与2月合并发布 for the months a feed does not publish alone (January, with February).
  Each cell carries the path of its newest validation report and the Airflow run that last
  worked on it (``audit_load_run``), and the rows its current batch quarantined;
* the open alerts, the next due date of each feed (``status.operations_status``);
* the 19 measures with their KPIs' statuses in the latest period with snapshots.

Read-only, from the audit tables, the snapshot mart and the feed specs.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, func, select, text

from consumption_monitor.alerts.lateness import candidate_periods, due_date
from consumption_monitor.common.periods import Period, bureau_today
from consumption_monitor.feeds.spec import FeedSpec, list_feeds, load_feed
from consumption_monitor.indicators.catalog import load_catalog
from consumption_monitor.pipeline.status import operations_status
from consumption_monitor.validation.reports import URL_PREFIX, report_path
from consumption_monitor.warehouse import schema

MATRIX_PERIODS = 13
PASSED, WARNING, REJECTED = "已入库（通过）", "已入库（有警告）", "拒收"
LATE, NOT_DUE, NO_DATA, MERGED = "逾期", "未到期", "无数据", "与2月合并发布"
STATES = (PASSED, WARNING, REJECTED, LATE, NOT_DUE, NO_DATA, MERGED)
INDICATOR_STATUS = "监测指标"  # economic indicators have no target and no status
REPORTS_PREFIX = "/cm-reports"


def matrix_periods(today: date, count: int = MATRIX_PERIODS) -> list[str]:
    """The last ``count`` periods ended by ``today`` (the last full month last), oldest first."""
    last = Period.of(today).shift(-1)
    return [str(last.shift(-n)) for n in range(count - 1, -1, -1)]


def _batches(engine: Engine, periods: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(feed, period) -> current batch, newest batch, newest validation run, newest DAG run."""
    b, r, q = schema.audit_load_batch, schema.audit_load_run, schema.audit_quarantine
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(
            select(b).where(b.c.period.in_(periods)).order_by(b.c.first_seen_at)
        ).mappings():
            entry = found.setdefault((row["feed"], row["period"]), {})
            entry["newest"] = dict(row)  # ordered by first seen: the last one wins
            if row["is_current"]:
                entry["current"] = dict(row)
        for row in conn.execute(
            select(r).where(r.c.period.in_(periods)).order_by(r.c.started_at)
        ).mappings():
            entry = found.setdefault((row["feed"], row["period"]), {})
            if row["step"] == "validate" and row["outcome"] != "failed":
                entry["validation_run"] = row["run_id"]
            if row["dag_id"] and row["dag_run_id"]:
                entry["dag_run"] = (row["dag_id"], row["dag_run_id"])
        current = select(b.c.batch_id).where(b.c.is_current)
        for feed, period, n in conn.execute(
            select(q.c.feed, q.c.period, func.count())
            .where(q.c.period.in_(periods), q.c.batch_id.in_(current))
            .group_by(q.c.feed, q.c.period)
        ):
            found.setdefault((feed, period), {})["quarantined"] = int(n)
    return found


def cell_state(spec: FeedSpec, period: str, seen: dict[str, Any], today: date) -> str:
    """One of :data:`STATES` for (feed, period) given what the audit tables hold."""
    p = Period.parse(period)
    if p.month not in spec.published_months:
        return MERGED
    current = seen.get("current")
    if current is not None:
        return WARNING if current["verdict"] == "warning" else PASSED
    newest = seen.get("newest")
    if newest is not None and (newest["verdict"] == "rejected" or newest["status"] == "rejected"):
        return REJECTED
    if p < Period.parse(spec.first_period):
        return NO_DATA
    if today <= due_date(spec, p):
        return NOT_DUE
    return LATE if p in candidate_periods(spec, today) else NO_DATA


def _cell(spec: FeedSpec, period: str, seen: dict[str, Any], today: date) -> dict[str, Any]:
    state = cell_state(spec, period, seen, today)
    report = None
    run_id = seen.get("validation_run")
    if run_id and report_path(spec.name, period, run_id).is_file():
        report = f"{URL_PREFIX}/validation/{spec.name}/{period}/{run_id}.html"
    dag_run = seen.get("dag_run")
    return {
        "period": period,
        "state": state,
        "report": report,
        "dag_run": f"/dags/{quote(dag_run[0], safe='')}/runs/{quote(dag_run[1], safe='')}"
        if dag_run
        else None,
        "quarantined": seen.get("quarantined", 0),
        "due": None if state == MERGED else due_date(spec, period).isoformat(),
    }


def _matrix(engine: Engine, periods: list[str], today: date) -> list[dict[str, Any]]:
    seen = _batches(engine, periods)
    rows = []
    for feed in list_feeds():
        spec = load_feed(feed)
        cells = [_cell(spec, p, seen.get((feed, p), {}), today) for p in periods]
        rows.append({"feed": feed, "title": spec.title, "cells": cells})
    return rows


def _latest_snapshot_period(engine: Engine) -> str | None:
    sql = text(
        "select max(period) from mart_indicator_snapshot_latest "
        "where actual_ytd is not null or milestone_status is not null"
    )
    with engine.connect() as conn:
        return conn.execute(sql).scalar()


def _measures(engine: Engine) -> dict[str, Any]:
    """The 19 measures, each with its KPIs' statuses in the latest period with snapshots."""
    period = _latest_snapshot_period(engine)
    statuses: dict[str, str | None] = {}
    if period is not None:
        sql = text("select kpi_id, status from mart_indicator_snapshot_latest where period = :p")
        with engine.connect() as conn:
            statuses = dict(conn.execute(sql, {"p": period}).all())
    measures = []
    for measure in load_catalog().measures:
        kpis = [
            {
                "id": kpi.id,
                "name": kpi.name,
                "status": INDICATOR_STATUS
                if kpi.kind == "indicator"
                else (statuses.get(kpi.id) or "暂无数据"),
            }
            for kpi in measure.kpis
        ]
        measures.append(
            {"number": measure.number, "title": measure.title, "action": measure.action}
            | {"kpis": kpis}
        )
    report = f"{REPORTS_PREFIX}/{period}.html" if period else None
    return {"period": period, "report": report, "measures": measures}


def console_data(engine: Engine, today: date | None = None) -> dict[str, Any]:
    """Everything the console page shows, as plain data (JSON-serialisable)."""
    today = today or bureau_today()
    periods = matrix_periods(today)
    status = operations_status(engine, today)
    matrix = _matrix(engine, periods, today)
    return {
        "as_of": today.isoformat(),
        "warnings": status["warnings"],  # the calendar's end, sources that disagree
        "periods": periods,
        "matrix": matrix,
        "quarantine": [
            {"feed": row["feed"], "title": row["title"], "period": c["period"], "rows": n}
            for row in matrix
            for c in row["cells"]
            if (n := c["quarantined"])
        ],
        "alerts": [
            {"feed": f["feed"], "title_feed": f["title"], **alert}
            for f in status["feeds"]
            for alert in f["open_alerts"]
        ],
        "calendar": sorted(
            (
                {"feed": f["feed"], "title": f["title"], **f["next_due"], "late": len(f["late"])}
                for f in status["feeds"]
            ),
            key=lambda x: (x["due"], x["feed"]),
        ),
        "measures": _measures(engine),
    }
