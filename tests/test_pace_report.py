"""The report and workbook show the pace kind and expected value, label a computed YoY
可比口径计算 (the marker the footnote promises), say whether a trend is 当月 or 累计, and
print counts whole with their unit (issue 15), on SQLite and PostgreSQL."""

from __future__ import annotations

from io import BytesIO

import pytest
from openpyxl import load_workbook

from consumption_monitor.indicators.report import render_report
from consumption_monitor.indicators.snapshots import compute_snapshot
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.migrate import upgrade
from tests.test_pace import _tradein
from tests.test_snapshots import ledger, rows


@pytest.fixture
def engine(warehouse_url: str):
    upgrade(warehouse_url)
    return engine_for(warehouse_url)


def _rows(wb, sheet: str) -> dict[str, dict]:
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    return {r[1].value: dict(zip(header, r, strict=True)) for r in ws.iter_rows(2)}


def test_pace_yoy_label_trend_basis_and_counts(engine) -> None:
    _tradein(engine, "2024-03", {"A": 10000, "B": 5000})
    compute_snapshot(engine, "2024-03")
    _tradein(engine, "2025-03", {"A": 12000, "C": 100000})
    ledger(engine, "2025-06", events=[{"event_type": "汽车展销"}] * 2)
    _tradein(engine, "2025-06", {"A": 1000})
    for period in ("2025-03", "2025-06"):
        compute_snapshot(engine, period)
    page, xlsx = render_report(engine, "2025-06")
    wb = load_workbook(BytesIO(xlsx))

    cars = _rows(wb, "四、推动商品消费更新提升行动")["汽车展销活动场次"]
    assert cars["本年累计/进度"].value == 2
    assert cars["本年累计/进度"].number_format == '#,##0 "场"'  # 2 场, a number
    assert cars["按进度应完成"].value == pytest.approx(2.5)
    assert cars["按进度应完成"].number_format == '#,##0.0 "场"'
    assert (cars["目标"].value, cars["进度方式"].value) == (">= 5 场", "线性")
    assert cars["状态"].value == "正常推进"  # small target: 2 whole events due, 2 held
    row = page[page.index('data-kpi="m13_car_shows"') :]
    row = row[: row.index("</tr>")]
    assert ">2 场<" in row and "线性 · 2.5 场" in row and "5.00" not in row

    sales = _rows(wb, "四、推动商品消费更新提升行动")["消费品以旧换新销售额"]
    assert sales["同比口径"].value == "可比口径计算"
    row = page[page.index('data-kpi="m12_tradein_sales"') :]
    row = row[: row.index("</tr>")]
    assert "※" in row and "可比口径计算" in row  # the marker the footnote explains
    assert "标注 ※ 可比口径计算" in page

    trend = [r for r in wb["趋势"].iter_rows(2, values_only=True) if r[0] == "m12_tradein_sales"]
    assert [r[2] for r in trend] == ["2024-03", "2025-03", "2025-06"]
    assert {r[4] for r in trend} == {"当月"}  # one basis, said
    assert "m12_tradein_sales" in page and "以旧换新销售额趋势（当月）" in page
    assert wb["趋势"]["E1"].value == "口径"


def test_a_year_to_date_only_trend_says_so(engine) -> None:
    """Online retail is published year to date only: its trend is 累计, never mixed."""
    for period, ytd in (("2025-02", 1500.0), ("2025-03", 2300.0)):
        record = {
            "region_code": "510403",
            "online_retail_ytd": ytd,
            "online_retail_yoy_ytd_pct": 9.5,
        }
        rows(engine, "ecommerce_district_online", period, [record], "ecommerce_monthly")
        compute_snapshot(engine, period)
    page, xlsx = render_report(engine, "2025-03")
    trend = [
        r
        for r in load_workbook(BytesIO(xlsx))["趋势"].iter_rows(2, values_only=True)
        if r[0] == "m19_online_retail"
    ]
    assert [(r[2], r[3], r[4]) for r in trend] == [
        ("2025-02", 1500, "累计"),
        ("2025-03", 2300, "累计"),
    ]
    assert "网上零售额趋势（累计）" in page
    row = page[page.index('data-kpi="m19_online_retail"') :]
    assert "可比口径计算" not in row[: row.index("</tr>")]  # a published rate
