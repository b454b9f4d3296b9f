"""The snapshot engine's status logic on hand-computed cases, on SQLite and PostgreSQL.

Each test writes a few core rows and their batches (as the loader leaves them) into a
migrated warehouse, computes the snapshot in SQL and checks every component against
figures worked out by hand from the catalog's targets and thresholds (0.95 / 0.6).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from consumption_monitor.cli import main
from consumption_monitor.indicators.catalog import load_catalog
from consumption_monitor.indicators.snapshots import (
    affected_periods,
    compute_snapshot,
    read_snapshot,
)
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.migrate import upgrade

_ids = itertools.count(1)


@pytest.fixture
def engine(warehouse_url: str):
    upgrade(warehouse_url)
    return engine_for(warehouse_url)


def batch(engine, feed: str, period: str, verdict: str = "passed") -> str:
    """Register a current loaded batch of (feed, period), superseding the previous one."""
    batch_id = f"b{next(_ids):019d}"
    b = schema.audit_load_batch
    with engine.begin() as conn:
        conn.execute(
            update(b)
            .where(b.c.feed == feed, b.c.period == period, b.c.is_current)
            .values(is_current=False, status="superseded")
        )
        conn.execute(
            insert(b).values(
                batch_id=batch_id,
                feed=feed,
                period=period,
                revision=1,
                content_sha256="0" * 64,
                archive_dir="-",
                status="loaded",
                is_current=True,
                verdict=verdict,
                first_seen_at=datetime(2025, 1, 1, tzinfo=UTC),
                loaded_at=datetime(2025, 7, 1, 8, 0, tzinfo=UTC),
            )
        )
    return batch_id


def rows(engine, table: str, period: str, records: list[dict[str, Any]], feed: str) -> str:
    """Replace ``period`` of ``core_<table>`` by ``records`` under a new batch."""
    batch_id = batch(engine, feed, period)
    core = schema.metadata.tables[f"core_{table}"]
    with engine.begin() as conn:
        conn.execute(core.delete().where(core.c.period == period))
        if records:
            conn.execute(
                insert(core), [{**r, "period": period, "batch_id": batch_id} for r in records]
            )
    return batch_id


def ledger(engine, period: str, events=(), openings=(), milestones=()) -> str:
    """One work_ledgers batch for ``period`` with the given events/openings/milestones."""
    batch_id = batch(engine, "work_ledgers", period)
    with engine.begin() as conn:
        for table, items in (
            ("core_ledger_events", events),
            ("core_ledger_openings", openings),
            ("core_ledger_milestones", milestones),
        ):
            core = schema.metadata.tables[table]
            conn.execute(core.delete().where(core.c.period == period))
            records = [
                {
                    **item,
                    "period": period,
                    "unit": "区商务局",
                    "row_no": n + 5,
                    "batch_id": batch_id,
                }
                for n, item in enumerate(items)
            ]
            for record in records:  # rows differ in the columns they fill
                conn.execute(insert(core).values(**record))
    return batch_id


def snap(engine, period: str) -> dict[str, dict[str, Any]]:
    compute_snapshot(engine, period)
    return {r["kpi_id"]: r for r in read_snapshot(engine, period)}


def employment(engine, period: str, fairs: list[int], relief_ytd: int, relief_month: int) -> None:
    rows(
        engine,
        "employment_monthly_figures",
        period,
        [
            {
                "region_code": "510403",
                "work_relief_jobs_month": relief_month,
                "work_relief_jobs_ytd": relief_ytd,
                "public_welfare_placed_month": 2,
                "public_welfare_placed_ytd": 2,
            }
        ],
        "employment_monthly",
    )
    core = schema.metadata.tables["core_employment_job_fairs"]
    with engine.begin() as conn:
        conn.execute(core.delete().where(core.c.period == period))
        for n, jobs in enumerate(fairs):
            conn.execute(
                insert(core).values(
                    period=period, event_id=f"JF{period}{n}", jobs_offered=jobs, batch_id="x"
                )
            )


def test_january_pro_rates_a_yearly_target_over_one_month(engine) -> None:
    employment(engine, "2025-01", fairs=[100], relief_ytd=0, relief_month=0)
    s = snap(engine, "2025-01")
    fairs = s["m01_job_fairs"]  # 1 fair of 3 a year: expected 3 x 1/12 = 0.25, ratio 4
    assert (fairs["actual_ytd"], fairs["months_elapsed"]) == (1, 1)
    assert fairs["expected_to_date"] == pytest.approx(0.25)
    assert fairs["completion_ratio"] == pytest.approx(4.0)
    assert fairs["status"] == "正常推进"
    jobs = s["m01_jobs_offered"]  # 100 of 800: expected 66.67, ratio 1.5
    assert jobs["expected_to_date"] == pytest.approx(800 / 12, rel=1e-4)
    assert jobs["completion_ratio"] == pytest.approx(1.5)
    assert jobs["status"] == "正常推进"
    relief = s["m01_work_relief_jobs"]  # nothing yet of 20: ratio 0
    assert (relief["actual_ytd"], relief["completion_ratio"]) == (0, 0)
    assert relief["status"] == "严重滞后"
    # Retail publishes January with February: no January data, not a zero, and said so.
    assert s["m19_retail_sales_total"]["status"] == "与2月合并发布"
    assert s["m19_retail_sales_total"]["actual_ytd"] is None
    assert s["m01_job_fairs"]["validation_state"] == "passed"
    assert s["m01_job_fairs"]["data_period"] == "2025-01"
    # Recomputing adds nothing, also where PostgreSQL rounded a stored value (66.6667).
    assert compute_snapshot(engine, "2025-01")["added"] == []


def test_a_target_met_early_and_lagging_ones(engine) -> None:
    ledger(
        engine,
        "2025-05",
        events=[{"event_type": "首发首秀首展"}] * 3
        + [{"event_type": "消费促进活动", "sales_driven": 10000}] * 2,
        openings=[{"opening_type": "烟火小店"}] * 4,
    )
    ledger(
        engine,
        "2025-06",
        events=[{"event_type": "消费促进活动", "sales_driven": 5000}] * 4
        + [{"event_type": "汽车展销"}] * 2,
        openings=[{"opening_type": "烟火小店"}] * 6 + [{"opening_type": "24小时便利店"}] * 5,
    )
    s = snap(engine, "2025-06")
    assert s["m14_launch_events"]["actual_ytd"] == 3  # 3 of ">= 3" by May
    assert s["m14_launch_events"]["status"] == "已完成"
    shops = s["m08_smoke_shops"]  # 10 of "= 10" in June
    assert (shops["actual_ytd"], shops["actual_month"], shops["status"]) == (10, 6, "已完成")
    # 11 of 20 (the plan's 各类活动: every consumption event type, issue 15 §3; job
    # fairs are not among them): expected 10, ratio 1.1
    promo = s["m11_promotion_events"]
    assert promo["actual_ytd"] == 11 and promo["expected_to_date"] == pytest.approx(10)
    assert promo["completion_ratio"] == pytest.approx(1.1)
    assert promo["status"] == "正常推进"
    cars = s["m13_car_shows"]  # 2 of 5: expected 2.5, ratio 0.8; small target: 2 whole
    # events expected by June and 2 held -> on track (the ratio alone would say lagging)
    assert (cars["completion_ratio"], cars["status"]) == (pytest.approx(0.8), "正常推进")
    money = s["m11_consumption_driven"]  # 40000 万元 = 4 亿元 of "> 5": expected 2.5, 1.6
    assert money["actual_ytd"] == pytest.approx(4.0)
    assert money["completion_ratio"] == pytest.approx(1.6)
    assert money["status"] == "正常推进"
    group = s["m12_group_purchase_events"]  # none of 10 by June: expected 5, ratio 0
    assert (group["actual_ytd"], group["status"]) == (0, "严重滞后")
    assert s["m08_convenience_stores"]["status"] is None  # indicator: no target
    assert s["m08_convenience_stores"]["actual_ytd"] == 5
    batches = s["m08_smoke_shops"]["source_batches"].split(",")
    assert len(batches) == 2  # May's and June's ledgers


def test_job_fairs_have_one_source_of_truth_and_a_reconciliation(engine) -> None:
    """2026: the employment feed says 5 fairs, the units' event ledger 6. The KPI counts
    the employment feed (its declared source); the difference is a warning in `cm status`
    and the report's footnote; equal figures, or a side without data, warn nothing."""
    from consumption_monitor.indicators.reconcile import load_checks, reconcile
    from consumption_monitor.indicators.report.notes import report_notes
    from consumption_monitor.pipeline.status import operations_status

    employment(engine, "2026-03", fairs=[100] * 5, relief_ytd=0, relief_month=0)
    assert reconcile(engine, "2026-03") == []  # no ledger this year: nothing to compare
    ledger(engine, "2026-02", events=[{"event_type": "招聘会"}] * 2)
    ledger(engine, "2026-03", events=[{"event_type": "招聘会"}] * 4 + [{"event_type": "汽车展销"}])
    assert snap(engine, "2026-03")["m01_job_fairs"]["actual_ytd"] == 5
    (diff,) = reconcile(engine, "2026-03")
    assert (diff.truth, diff.other, diff.check.kpi.id) == (5, 6, "m01_job_fairs")
    line = diff.line()
    assert "就业与失业保险月度监测" in line and "5 场" in line and "6 场" in line
    status = operations_status(engine, date(2026, 4, 20))  # last full month 2026-03
    assert line in status["warnings"]
    assert line in report_notes(engine, load_catalog(), "2026-03")
    ledger(engine, "2026-03", events=[{"event_type": "招聘会"}] * 3)
    assert reconcile(engine, "2026-03") == []
    assert [c.other.source for c in load_checks()] == ["mart_ledger_events_monthly"]


def test_a_strict_comparator_is_not_met_by_equality(engine) -> None:
    ledger(engine, "2025-12", events=[{"event_type": "消费促进活动", "sales_driven": 50000}])
    money = snap(engine, "2025-12")["m11_consumption_driven"]  # exactly 5 亿元, target "> 5"
    assert money["actual_ytd"] == pytest.approx(5.0)
    assert money["completion_ratio"] == pytest.approx(1.0)
    # not met, and December closes the year: 未完成 (in November it would be on track)
    assert money["status"] == "未完成"


def test_missing_data_and_milestones(engine) -> None:
    ledger(
        engine,
        "2025-03",
        milestones=[
            {
                "task": "火红年华景区创建4A级旅游景区",
                "status": "推进中",
                "status_date": "2025-03-20",
            },
            {"task": "实施中小学春秋假", "status": "未启动"},
        ],
    )
    ledger(
        engine,
        "2025-04",
        milestones=[
            {
                "task": "火红年华景区创建4A级旅游景区",
                "status": "已完成",
                "status_date": "2025-04-18",
            }
        ],
    )
    march, april = snap(engine, "2025-03"), snap(engine, "2025-04")
    assert march["m09_4a_scenic_area"]["status"] == "正常推进"
    assert april["m09_4a_scenic_area"]["status"] == "已完成"
    assert april["m09_4a_scenic_area"]["status_date"] == "2025-04-18"
    assert april["m17_spring_autumn_break"]["status"] == "进度滞后"  # last said 未启动 (March)
    assert april["m17_spring_autumn_break"]["data_period"] == "2025-03"
    assert april["m02_sutie_yam_application"]["status"] == "暂无数据"  # never reported
    assert april["m04_pediatrics_coverage"]["status"] == "暂无数据"  # no feed carries it
    assert april["m04_pediatrics_coverage"]["target_value"] == 100
    assert april["m19_complaints_on_time"]["status"] == "暂无数据"  # feed not loaded
    assert april["m19_complaints_on_time"]["source_batches"] == ""
    assert len(april) == len(load_catalog().kpis)  # every KPI of the catalog has a row


def _retail(engine, period: str, ytd: float, month: float, verdict: str = "passed") -> None:
    records = [
        {
            "region_code": "510403",
            "indicator_code": code,
            "value_month": month * share,
            "value_ytd": ytd * share,
            "yoy_month_pct": 5.1,
            "yoy_ytd_pct": 4.2,
            "unit": "万元",
        }
        for code, share in (("retail_total", 1.0), ("retail_above_quota", 0.4))
    ]
    rows(engine, "retail_district_totals", period, records, "retail_monthly")
    if verdict != "passed":
        b = schema.audit_load_batch
        with engine.begin() as conn:
            conn.execute(
                update(b)
                .where(b.c.feed == "retail_monthly", b.c.period == period, b.c.is_current)
                .values(verdict=verdict)
            )


def test_a_revised_period_adds_a_snapshot_and_keeps_history(engine) -> None:
    _retail(engine, "2025-03", ytd=30000, month=11000)
    first = snap(engine, "2025-03")["m19_retail_sales_total"]
    assert (first["actual_ytd"], first["yoy_ytd_pct"], first["yoy_basis"]) == (
        30000,
        4.2,
        "published",
    )
    again = compute_snapshot(engine, "2025-03")
    assert again["added"] == []  # unchanged: nothing new
    _retail(engine, "2025-03", ytd=30500, month=11500, verdict="warning")  # the revision
    revised = snap(engine, "2025-03")["m19_retail_sales_total"]
    assert revised["actual_ytd"] == 30500
    assert revised["validation_state"] == "warning"
    assert revised["previous_snapshot_id"] == first["snapshot_id"]
    assert revised["source_batches"] != first["source_batches"]
    _retail(engine, "2025-03", ytd=30000, month=11000)  # back to the first figures
    reverted = snap(engine, "2025-03")["m19_retail_sales_total"]
    assert reverted["actual_ytd"] == 30000
    assert reverted["snapshot_id"] not in (first["snapshot_id"], revised["snapshot_id"])
    with engine.connect() as conn:
        history = conn.execute(
            text(
                "select count(*) from mart_indicator_snapshot "
                "where kpi_id = 'm19_retail_sales_total' and period = '2025-03'"
            )
        ).scalar()
    assert history == 3


def test_computed_yoy_compares_the_same_months(engine) -> None:
    ledger(engine, "2024-05", openings=[{"opening_type": "24小时便利店"}] * 3)
    ledger(engine, "2024-06", openings=[{"opening_type": "24小时便利店"}] * 1)
    ledger(engine, "2024-09", openings=[{"opening_type": "24小时便利店"}] * 7)
    ledger(engine, "2025-06", openings=[{"opening_type": "24小时便利店"}] * 5)
    stores = snap(engine, "2025-06")["m08_convenience_stores"]
    assert (stores["actual_ytd"], stores["prior_ytd"]) == (5, 4)  # Jan-Jun 2024 only
    assert stores["yoy_ytd_pct"] == pytest.approx(25.0)
    assert stores["yoy_basis"] == "computed"


def test_affected_periods_run_to_the_end_of_next_year_within_loaded_data(engine) -> None:
    ledger(engine, "2025-02")
    ledger(engine, "2025-04")
    assert affected_periods(engine, ["2025-02"]) == ["2025-02", "2025-03", "2025-04"]
    assert affected_periods(engine, ["2024-11"])[0] == "2024-11"
    assert affected_periods(engine, ["2024-11"])[-1] == "2025-04"


def test_cm_snapshot_prints_every_kpi(engine, warehouse_url: str, capsys) -> None:
    employment(engine, "2025-01", fairs=[100], relief_ytd=0, relief_month=0)
    assert main(["snapshot", "--period", "2025-01", "--url", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert "公共就业招聘会场次" in out and "正常推进" in out and "严重滞后" in out
    assert main(["snapshot", "--period", "2025-01", "--url", warehouse_url, "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert len(data) == len(load_catalog().kpis)
    assert {r["status"] for r in data} >= {"正常推进", "严重滞后", "暂无数据"}
