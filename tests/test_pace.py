"""Pace profiles and status rules at their boundaries (issue 15), on SQLite and PostgreSQL.

Every case is worked out by hand from measures.yaml's status section: linear, seasonal
(from the KPI's own snapshots of the previous year), schedule (planned months), level
(达标 / 未达标, 已完成 only in December), year_end (未到期 / 已完成 / 逾期), the small-target
rule (whole events expected vs what is missing against the months left), the ratio
thresholds (0.95 / 0.6), 与2月合并发布, the distinct units counted up to the period and the
like-for-like (可比口径) computed YoY.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from sqlalchemy import insert, text

from consumption_monitor.indicators.catalog import (
    CATALOG_FILE,
    STATUSES,
    Catalog,
    CatalogError,
    load_catalog,
    parse_catalog,
)
from consumption_monitor.indicators.plan_tasks import read_tasks
from consumption_monitor.indicators.snapshots import compute_snapshot, read_snapshot
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.migrate import upgrade
from tests.test_snapshots import batch, employment, ledger, rows, snap

RAW = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
TASKS = read_tasks()


@pytest.fixture
def engine(warehouse_url: str):
    upgrade(warehouse_url)
    return engine_for(warehouse_url)


def variant(kpi_id: str, **changes: Any) -> Catalog:
    """The catalog with one KPI's entries changed (to put a rule on a KPI with data)."""
    data, tasks = copy.deepcopy(RAW), copy.deepcopy(TASKS)
    for kpi in [*(k for m in data["measures"] for k in m["kpis"]), *tasks["tasks"]]:
        if kpi["id"] == kpi_id:
            kpi.update(changes)
    return parse_catalog(data, tasks)


def one(engine, period: str, kpi_id: str, catalog: Catalog | None = None) -> dict[str, Any]:
    compute_snapshot(engine, period, catalog=catalog)
    return {r["kpi_id"]: r for r in read_snapshot(engine, period)}[kpi_id]


def events(engine, period: str, kind: str, n: int, sales: float | None = None) -> None:
    item = {"event_type": kind} if sales is None else {"event_type": kind, "sales_driven": sales}
    ledger(engine, period, events=[item] * n)


# -- the catalog -------------------------------------------------------------------------


def test_every_target_has_a_pace_and_the_defaults_per_kind() -> None:
    catalog = load_catalog()
    paces = {k.id: k.pace.kind for k in catalog.kpis}
    assert paces["m08_smoke_shops"] == "linear"  # default of a cumulative target
    assert paces["m04_pediatrics_coverage"] == "level"  # default of a target in %
    assert paces["m19_complaints_on_time"] == "level"
    assert paces["m02_sutie_yam_application"] == "ledger"  # default of a milestone
    assert paces["m19_retail_sales_total"] == "none"  # indicators
    assert paces["m01_jobs_offered"] == "seasonal"
    assert paces["m09_sports_ip"] == paces["m09_checkin_scenes"] == "year_end"
    major = catalog.kpi("m09_major_events").pace
    assert (major.kind, major.months) == ("schedule", (3, 6))
    assert major.shares == (0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1)
    for kpi in catalog.kpis:
        if kpi.kind == "target":
            assert kpi.pace.kind in ("linear", "seasonal", "schedule", "level", "year_end")
    small = {k.id for k in catalog.kpis if catalog.status.is_small(k)}
    # counts <= 5 with a cumulative pace; not 5 万元 / 5 亿元, not year_end deliverables
    assert small == {"m01_job_fairs", "m09_major_events", "m13_car_shows", "m14_launch_events"}
    assert "与2月合并发布" in STATUSES and "逾期" in STATUSES


@pytest.mark.parametrize(
    ("pace", "message"),
    [
        ("weekly", "pace is one of"),
        ({"kind": "schedule", "months": [13]}, "months are 1..12"),
        ({"kind": "schedule", "shares": [0.5] * 12}, "ending at 1"),
        ({"kind": "year_end", "due": 0}, "due in month"),
        ({"kind": "seasonal", "years": 1, "min_years": 2}, "min_years"),
        ("ledger", "takes a pace among"),  # a target cannot follow a ledger
    ],
)
def test_a_bad_pace_fails_at_load(pace: Any, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        variant("m08_smoke_shops", pace=pace)


@pytest.mark.parametrize(
    ("kpi_id", "panel", "message"),
    [
        ("m13_car_retail", "Uscc;", "not a column name"),
        ("m08_smoke_shops", "uscc", "panel serves a computed YoY"),  # a target, no YoY
    ],
)
def test_a_bad_panel_fails_at_load(kpi_id: str, panel: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        variant(kpi_id, panel=panel)


def test_status_labels_and_default_paces_are_checked() -> None:
    data = copy.deepcopy(RAW)
    data["status"]["labels"].remove("逾期")
    with pytest.raises(CatalogError, match="labels"):
        parse_catalog(data)
    data = copy.deepcopy(RAW)
    data["status"]["default_pace"].pop("milestone")
    with pytest.raises(CatalogError, match="default_pace"):
        parse_catalog(data)


# -- linear: the ratio thresholds (not a small target: 亿元) ----------------------------


@pytest.mark.parametrize(
    ("driven", "status"),
    [
        (23750, "正常推进"),  # 2.375 亿 of 2.5 expected by June: ratio 0.95 exactly
        (23740, "进度滞后"),  # 0.9496: under 0.95 (the ratio is rounded to 4 places)
        (15000, "进度滞后"),  # 1.5 of 2.5: ratio 0.6 exactly
        (14990, "严重滞后"),  # 0.5996: under 0.6
        (50001, "已完成"),  # "> 5 亿元" met
    ],
)
def test_linear_ratio_thresholds(engine, driven: float, status: str) -> None:
    events(engine, "2025-06", "消费促进活动", 1, sales=driven)
    money = one(engine, "2025-06", "m11_consumption_driven")
    assert money["expected_to_date"] == pytest.approx(2.5)  # no history: linear
    assert money["pace"] == "seasonal" and "按线性" in money["pace_basis"]
    assert money["status"] == status


# -- the small-target rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "held", "status"),
    [
        ([1], 0, "正常推进"),  # 5 x 1/12 = 0.42: no whole event due yet, not 严重滞后
        ([4], 1, "正常推进"),  # 1.67 expected: 1 whole event, 1 held
        ([5], 1, "进度滞后"),  # 2.08: 2 due, 1 held; 4 missing <= 7 months left
        ([8], 1, "进度滞后"),  # 4 missing = 4 months left
        ([9], 1, "严重滞后"),  # 4 missing > 3 months left
        ([12], 4, "未完成"),  # 1 missing, the year is over
        ([12], 5, "已完成"),
    ],
)
def test_small_targets_count_what_is_missing_against_the_months_left(
    engine, months: list[int], held: int, status: str
) -> None:
    period = f"2025-{months[0]:02d}"
    events(engine, period, "汽车展销", held)
    cars = one(engine, period, "m13_car_shows")  # 5 场 a year, linear
    assert cars["expected_to_date"] == pytest.approx(5 * months[0] / 12, rel=1e-4)
    assert cars["status"] == status


def test_a_whole_event_due_exactly_at_the_month(engine) -> None:
    """3 a year: exactly 1.0 expected by April (no rounding to 0.999 on either database)."""
    events(engine, "2025-04", "首发首秀首展", 1)
    assert one(engine, "2025-04", "m14_launch_events")["status"] == "正常推进"
    events(engine, "2025-04", "首发首秀首展", 0)
    launch = one(engine, "2025-04", "m14_launch_events")
    assert (launch["expected_to_date"], launch["status"]) == (1, "进度滞后")


# -- schedule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "held", "expected", "status"),
    [
        (2, 0, 0, "正常推进"),  # nothing planned before March
        (3, 0, 1, "进度滞后"),  # 三角梅 (March) not held: 2 missing <= 9 months left
        (6, 1, 2, "进度滞后"),  # 凤凰花季 (June) not held yet
        (7, 2, 2, "已完成"),
        (12, 1, 2, "未完成"),  # 1 missing, the year is over
    ],
)
def test_schedule_expects_the_planned_events(
    engine, month: int, held: int, expected: float, status: str
) -> None:
    period = f"2025-{month:02d}"
    events(engine, period, "大型文旅活动", held)
    major = one(engine, period, "m09_major_events")
    assert (major["pace"], major["expected_to_date"], major["status"]) == (
        "schedule",
        expected,
        status,
    )
    assert "3月、6月" in major["pace_basis"]


# -- year_end ----------------------------------------------------------------------------


def test_year_end_deliverables(engine) -> None:
    ledger(engine, "2025-11")
    ip = one(engine, "2025-11", "m09_sports_ip")
    assert (ip["status"], ip["expected_to_date"], ip["pace"]) == ("未到期", 0, "year_end")
    ledger(engine, "2025-12", openings=[{"opening_type": "打卡消费场景"}])
    december = snap(engine, "2025-12")
    ip = december["m09_sports_ip"]
    assert (ip["status"], ip["expected_to_date"]) == ("逾期", 1)
    assert december["m09_checkin_scenes"]["status"] == "逾期"  # 1 of 2 by December
    ledger(engine, "2025-05", openings=[{"opening_type": "运动IP"}])
    assert one(engine, "2025-05", "m09_sports_ip")["status"] == "已完成"


def test_a_milestone_with_a_year_end_pace(engine) -> None:
    catalog = variant("m17_paid_leave", pace={"kind": "year_end", "due": 12})
    task = "带薪年假执行情况纳入工会监督"
    ledger(engine, "2025-03", milestones=[{"task": task, "status": "推进中"}])
    assert one(engine, "2025-11", "m17_paid_leave", catalog)["status"] == "未到期"
    assert one(engine, "2025-12", "m17_paid_leave", catalog)["status"] == "逾期"
    ledger(engine, "2025-12", milestones=[{"task": task, "status": "已完成"}])
    assert one(engine, "2025-12", "m17_paid_leave", catalog)["status"] == "已完成"
    # the default (ledger) pace maps the ledger status
    assert one(engine, "2025-11", "m17_paid_leave")["status"] == "正常推进"


# -- level -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "jobs", "comparator", "status"),
    [
        (3, 800, ">=", "达标"),  # met in March: 达标, never 已完成 before the year is over
        (3, 799, ">=", "未达标"),
        (12, 800, ">=", "已完成"),  # December's data meet it
        (12, 799, ">=", "未达标"),
        (6, 800, ">", "未达标"),  # "> 800" is not met by 800
        (6, 801, ">", "达标"),
    ],
)
def test_level_holds_all_year(engine, month: int, jobs: int, comparator: str, status: str) -> None:
    catalog = variant(
        "m01_jobs_offered", pace="level", target={"value": 800, "comparator": comparator}
    )
    period = f"2025-{month:02d}"
    employment(engine, period, fairs=[jobs], relief_ytd=0, relief_month=0)
    offered = one(engine, period, "m01_jobs_offered", catalog)
    assert (offered["expected_to_date"], offered["pace"]) == (800, "level")
    assert offered["status"] == status


# -- seasonal ----------------------------------------------------------------------------


def test_seasonal_pace_from_the_kpis_own_previous_year(engine) -> None:
    for month in range(1, 13):  # 2024: 400 jobs offered in March, 400 in September
        fairs = [400] if month in (3, 9) else []
        employment(engine, f"2024-{month:02d}", fairs=fairs, relief_ytd=month, relief_month=1)
        compute_snapshot(engine, f"2024-{month:02d}")
    employment(engine, "2025-02", fairs=[], relief_ytd=0, relief_month=0)
    february = one(engine, "2025-02", "m01_jobs_offered")
    assert february["expected_to_date"] == 0  # nothing offered by February last year
    assert february["status"] == "正常推进"  # linear would say 严重滞后 (0 of 133)
    assert february["pace_basis"] == "按2024年同期累计平均占比"
    employment(engine, "2025-03", fairs=[300], relief_ytd=0, relief_month=0)
    march = one(engine, "2025-03", "m01_jobs_offered")
    assert march["expected_to_date"] == pytest.approx(400)  # half of 800 by March
    assert (march["completion_ratio"], march["status"]) == (pytest.approx(0.75), "进度滞后")
    relief = one(engine, "2025-03", "m01_work_relief_jobs")  # 2024 grew evenly: 3/12
    assert relief["expected_to_date"] == pytest.approx(5)


def test_seasonal_pace_is_linear_without_a_complete_year(engine) -> None:
    employment(engine, "2024-11", fairs=[800], relief_ytd=1, relief_month=1)
    compute_snapshot(engine, "2024-11")  # no December 2024: not a complete year
    employment(engine, "2025-03", fairs=[], relief_ytd=0, relief_month=0)
    march = one(engine, "2025-03", "m01_jobs_offered")
    assert march["expected_to_date"] == pytest.approx(200)
    assert march["pace_basis"] == "历史不足（需1个完整年度），按线性"


# -- no data, complete snapshots, counts up to the period ---------------------------------


def test_every_kpi_has_a_row_and_january_says_published_with_february(engine) -> None:
    employment(engine, "2025-01", fairs=[100], relief_ytd=0, relief_month=0)
    compute_snapshot(engine, "2025-01", feeds=["employment_monthly"])  # one feed only
    with engine.connect() as conn:
        latest = {
            r.kpi_id: r.status
            for r in conn.execute(
                text("select kpi_id, status from mart_indicator_snapshot_latest where period = :p"),
                {"p": "2025-01"},
            )
        }
    assert set(latest) == {k.id for k in load_catalog().kpis}  # every KPI, 暂无数据 included
    assert latest["m19_retail_sales_total"] == "与2月合并发布"  # retail: "1-2月"
    assert latest["m15_live_sales"] == "与2月合并发布"  # online retail likewise
    assert latest["m04_pediatrics_coverage"] == "暂无数据"  # no feed carries it
    assert latest["m19_complaints_on_time"] == "暂无数据"  # published monthly, not loaded
    assert latest["m02_sutie_yam_application"] == "暂无数据"
    assert snap(engine, "2025-02")["m19_retail_sales_total"]["status"] == "暂无数据"


def _tradein(engine, period: str, sales: dict[str, float]) -> None:
    batch(engine, "tradein_transactions", period)
    table = schema.metadata.tables["core_tradein_monthly"]
    with engine.begin() as conn:
        conn.execute(table.delete().where(table.c.period == period))
        for uscc, amount in sales.items():
            conn.execute(
                insert(table).values(
                    period=period,
                    category_group="家电",
                    category="冰箱",
                    uscc=uscc,
                    items=1,
                    sales_yuan=amount,
                    subsidy_yuan=amount / 10,
                )
            )


def test_enterprises_are_counted_up_to_the_period_only(engine) -> None:
    _tradein(engine, "2025-03", {"A": 1000, "B": 2000})
    _tradein(engine, "2025-05", {"A": 1000, "C": 500})
    march = one(engine, "2025-03", "m12_tradein_enterprises")
    assert march["actual_ytd"] == 2  # C, first seen in May, is not counted in March
    assert one(engine, "2025-05", "m12_tradein_enterprises")["actual_ytd"] == 3


def test_computed_yoy_is_like_for_like_over_the_units_in_both_years(engine) -> None:
    _tradein(engine, "2024-03", {"A": 10000, "B": 5000})
    _tradein(engine, "2025-03", {"A": 12000, "C": 100000})  # B left, C is new
    sales = one(engine, "2025-03", "m12_tradein_sales")
    assert sales["actual_ytd"] == pytest.approx(11.2)  # all units: 112000 yuan = 11.2 万元
    assert (sales["comparable_ytd"], sales["prior_ytd"]) == (pytest.approx(1.2), 1)  # A only
    assert (sales["yoy_ytd_pct"], sales["yoy_basis"]) == (pytest.approx(20.0), "computed")


def _dealers(engine, period: str, ytd: dict[str, float]) -> None:
    records = [
        {"uscc": uscc, "category_code": "G14", "value_ytd": v, "value_month": v / 12}
        for uscc, v in ytd.items()
    ]
    rows(engine, "retail_above_quota", period, records, "retail_monthly")


def test_car_retail_yoy_over_the_dealers_present_in_both_years(engine) -> None:
    """The issue's case: one dealer left the above-quota list; the year totals fall, the
    dealers present in both years grew."""
    _dealers(engine, "2024-12", {"D1": 1000, "D2": 800, "D3": 400})
    _dealers(engine, "2025-12", {"D1": 1150, "D2": 930})  # D3 left
    cars = one(engine, "2025-12", "m13_car_retail")
    assert cars["actual_ytd"] == 2080 and cars["prior_ytd"] == 1800
    assert cars["comparable_ytd"] == 2080
    assert cars["yoy_ytd_pct"] == pytest.approx(15.56)  # year totals would say -5.45
    with engine.connect() as conn:
        lost = conn.execute(
            text("select count(*) from mart_retail_by_enterprise where period = '2025-12'")
        ).scalar()
    assert lost == 2


# -- counts and the year's end ------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "held", "status"),
    [
        (1, 0, "正常推进"),  # 10 家 a year: 0.83 expected, not one whole store yet
        (2, 0, "严重滞后"),  # 1.67 expected: one whole store due, none opened
        (2, 1, "进度滞后"),  # ratio 0.6
        (2, 2, "正常推进"),
    ],
)
def test_a_count_target_is_not_behind_before_one_whole_event_is_due(
    engine, month: int, held: int, status: str
) -> None:
    period = f"2025-{month:02d}"
    ledger(
        engine,
        period,
        openings=[{"opening_type": "区域首店"}] * held + [{"opening_type": "运动IP"}],
    )
    stores = one(engine, period, "m14_first_stores")
    assert stores["expected_to_date"] == pytest.approx(10 * month / 12, rel=1e-4)
    assert stores["status"] == status


@pytest.mark.parametrize(
    ("kpi_id", "kind", "month", "held", "status"),
    [
        ("m14_first_stores", "区域首店", 11, 9, "正常推进"),  # 9 of 9.17 expected
        ("m14_first_stores", "区域首店", 12, 9, "未完成"),  # the year is over, 9 of 10
        ("m14_first_stores", "区域首店", 12, 10, "已完成"),
    ],
)
def test_a_cumulative_target_missed_in_december_is_not_completed(
    engine, kpi_id: str, kind: str, month: int, held: int, status: str
) -> None:
    period = f"2025-{month:02d}"
    ledger(engine, period, openings=[{"opening_type": kind}] * held)
    assert one(engine, period, kpi_id)["status"] == status


def test_a_small_target_missed_in_december_is_not_completed(engine) -> None:
    events(engine, "2025-12", "汽车展销", 4)  # 5 场 a year, small target
    assert one(engine, "2025-12", "m13_car_shows")["status"] == "未完成"
