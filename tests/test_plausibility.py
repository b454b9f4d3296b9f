"""Plausibility rules (核实性审核, validation/plausibility.py) on constructed histories.

Each rule is made to fire on a history built for it in a real warehouse (SQLite and
PostgreSQL) and stays silent on normal data; an entity without history is reported as
无历史数据，未检查 and never counted as passed.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import insert

from consumption_monitor.common.periods import Period
from consumption_monitor.feeds.frames import ROW
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.validation.plausibility import UNCHECKED, check_stream, load_rules
from consumption_monitor.validation.runner import Outcome, ValidationReport
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.migrate import upgrade

RETAIL = load_feed("retail_monthly")
TOTALS, ABOVE = RETAIL.stream("district_totals"), RETAIL.stream("above_quota")
LEDGERS = load_feed("work_ledgers")
EVENTS, PRODUCTS = LEDGERS.stream("events"), LEDGERS.stream("product_sales")
PERIOD = "2025-06"


@pytest.fixture
def engine(warehouse_url: str):
    upgrade(warehouse_url)
    return engine_for(warehouse_url)


def _periods(months: int) -> list[str]:
    return [str(Period.parse(PERIOD).shift(-k)) for k in range(months, 0, -1)]


def _insert(engine, stream, rows: list[dict]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(schema.core(stream)), [{"batch_id": "h" * 20, **r} for r in rows])


def _total(period: str, month: float, ytd: float, yoy_m=5.0, yoy_y=5.0, code="retail_total"):
    return {
        "period": period,
        "region_code": "510403",
        "indicator_code": code,
        "indicator_name": "社会消费品零售总额",
        "value_month": month,
        "value_ytd": ytd,
        "yoy_month_pct": yoy_m,
        "yoy_ytd_pct": yoy_y,
        "unit": "万元",
    }


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame[ROW] = range(len(frame))
    return frame


def _by_type(outcomes: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in outcomes:
        out.setdefault(o["expectation_type"], []).append(o)
    return out


def _totals_history(engine) -> None:
    rows = []
    for i, period in enumerate(_periods(13)):
        month = 30000 + 100 * i
        rows.append(_total(period, month, month * int(period[5:])))
    _insert(engine, TOTALS, rows)


def test_every_shipped_rules_file_fits_its_stream() -> None:
    for feed in ("retail_monthly", "ecommerce_monthly", "employment_monthly", "work_ledgers"):
        for stream in load_feed(feed).streams:
            load_rules(stream)  # raises RulesError on an unknown rule or column


def test_district_total_in_yuan_is_a_critical_unit_slip(engine) -> None:
    _totals_history(engine)
    normal = _frame([_total(PERIOD, 31500.0, 189000.0, 5.0, 5.0)])
    found = _by_type(check_stream(engine, TOTALS, PERIOD, normal))
    assert all(o["success"] for o in found["plausibility_unit_slip"])
    assert all(o["success"] for o in found["plausibility_growth_bands"])
    assert all(o["success"] for o in found["plausibility_published_yoy"])

    slipped = _frame([_total(PERIOD, 315000000.0, 189000.0, 5.0, 5.0)])  # 元, 10,000×
    (slip,) = _by_type(check_stream(engine, TOTALS, PERIOD, slipped))["plausibility_unit_slip"]
    assert slip["severity"] == "critical" and not slip["success"]
    assert slip["unexpected_rows"] == [0]
    message = slip["sample"][0]
    assert "疑似计量单位错误（元/万元）" in message and "社会消费品零售总额" in message
    assert "315,000,000.00" in message and "30,650.00" in message  # value and reference named


def test_district_bands_and_published_yoy_fire(engine) -> None:
    _totals_history(engine)
    # a month 3.5x the same month a year earlier, and a published YoY far from the levels
    jumped = _frame([_total(PERIOD, 105000.0, 400000.0, 5.0, 60.0)])
    found = _by_type(check_stream(engine, TOTALS, PERIOD, jumped))
    (bands,) = found["plausibility_growth_bands"]
    assert not bands["success"] and bands["severity"] == "warning"
    assert any("同比变动超出范围" in m for m in bands["sample"])
    assert any("环比变动超出范围" in m for m in bands["sample"])
    month_yoy, ytd_yoy = found["plausibility_published_yoy"]
    assert any("公布同比与水平值不符" in m for m in month_yoy["sample"])  # 5% vs ~240%
    assert any("同比增速超出范围" in m for m in ytd_yoy["sample"])  # |60%| > 50%


def _enterprise(period: str, uscc: str, ytd: float, month: float | None = None) -> dict:
    return {
        "period": period,
        "region_code": "510403",
        "uscc": uscc,
        "enterprise_name": f"企业{uscc[-4:]}",
        "industry_code": "52",
        "category_code": "G01",
        "value_month": month if month is not None else ytd / int(period[5:]),
        "value_ytd": ytd,
        "unit": "万元",
    }


def _usccs(n: int) -> list[str]:
    return [f"91510403MA{i:08d}" for i in range(n)]


def test_enterprise_fifty_times_too_large_is_an_hb_outlier(engine) -> None:
    previous = str(Period.parse(PERIOD).shift(-1))
    sizes = {u: 200 + 37 * i for i, u in enumerate(_usccs(20))}
    _insert(engine, ABOVE, [_enterprise(previous, u, 5 * s) for u, s in sizes.items()])
    growth = {u: 1.19 + 0.002 * i for i, u in enumerate(sizes)}  # six months over five
    normal = _frame([_enterprise(PERIOD, u, 5 * s * growth[u]) for u, s in sizes.items()])
    (hb,) = _by_type(check_stream(engine, ABOVE, PERIOD, normal))["plausibility_hb_edit"]
    assert hb["success"] and hb["element_count"] == 20

    odd = _usccs(20)[7]
    rows = [
        _enterprise(PERIOD, u, 5 * s + (50 if u == odd else 1) * s, (50 if u == odd else 1) * s)
        for u, s in sizes.items()
    ]
    (hb,) = _by_type(check_stream(engine, ABOVE, PERIOD, _frame(rows)))["plausibility_hb_edit"]
    assert not hb["success"] and hb["severity"] == "warning"
    (finding,) = hb["kwargs"]["findings"]
    assert finding["entity"] == f"{odd}|G01" and finding["rows"] == [7]
    assert "HB 检验" in finding["message"] and f"企业{odd[-4:]}" in finding["message"]


def test_entity_without_history_is_reported_unchecked_never_passed(engine) -> None:
    _totals_history(engine)
    rows = [_total(PERIOD, 31500.0, 189000.0), _total(PERIOD, 900.0, 5400.0, code="new_thing")]
    found = _by_type(check_stream(engine, TOTALS, PERIOD, _frame(rows)))
    unchecked = found[UNCHECKED]
    assert unchecked and all(o["severity"] == "info" and not o["success"] for o in unchecked)
    assert all(o["description"].endswith("无历史数据，未检查") for o in unchecked)
    assert any("new_thing" in s for o in unchecked for s in o["sample"])
    (slip,) = found["plausibility_unit_slip"]
    assert slip["element_count"] == 2  # the known indicator's two values; the new one not
    report = ValidationReport("f", PERIOD, "b", [Outcome(**o) for o in unchecked], {}, {})
    assert report.verdict == "passed"  # reported, yet neither a warning nor a pass of a check


def _event(period: str, unit: str, amount: float, row_no: int = 5) -> dict:
    return {
        "period": period,
        "unit": unit,
        "row_no": row_no,
        "event_type": "消费促进活动",
        "event_name": "活动",
        "event_date": f"{period}-10",
        "sales_driven": amount,
    }


def _product(period: str, unit: str, amount: float, row_no: int = 5) -> dict:
    return {
        "period": period,
        "unit": unit,
        "row_no": row_no,
        "product": "文创",
        "sales_month": amount,
    }


def test_ledger_amounts_in_yuan_are_quarantined_not_rejected(engine) -> None:
    hist = [_event(p, "区商务局", 20.0 + i, 5 + i) for i, p in enumerate(_periods(6))]
    hist += [_product(p, "区文广旅局", 2.5) for p in _periods(6)]
    _insert(engine, EVENTS, hist[:6])
    _insert(engine, PRODUCTS, hist[6:])
    events = _frame([_event(PERIOD, "区商务局", 25.0), _event(PERIOD, "区商务局", 250000.0, 6)])
    found = _by_type(check_stream(engine, EVENTS, PERIOD, events))
    (slip,) = found["plausibility_unit_slip"]
    assert slip["unexpected_rows"] == [1] and slip["severity"] == "critical"
    assert slip["success"]  # mostly: 0 — the row is quarantined, the other units load
    cap, floor = found["plausibility_bounds"]
    assert cap["unexpected_rows"] == [1] and floor["success"]

    products = _frame(
        [_product(PERIOD, "区文广旅局", 25000.0), _product(PERIOD, "区文广旅局", 0.001, 6)]
    )
    found = _by_type(check_stream(engine, PRODUCTS, PERIOD, products))
    (slip,) = found["plausibility_unit_slip"]
    assert slip["unexpected_rows"] == [0, 1]  # 10,000× and 1/2,500 of the history
    cap, floor = found["plausibility_bounds"]
    assert cap["unexpected_rows"] == [0]
    assert floor["unexpected_rows"] == [1] and floor["severity"] == "warning"
    assert "低于合理下限" in floor["sample"][0]


def test_normal_ledgers_are_silent(engine) -> None:
    _insert(engine, EVENTS, [_event(p, "区商务局", 20.0, 5) for p in _periods(6)])
    found = check_stream(engine, EVENTS, PERIOD, _frame([_event(PERIOD, "区商务局", 35.0)]))
    assert all(o["success"] for o in found)


def test_one_enterprise_in_yuan_is_quarantined_many_reject(engine) -> None:
    previous = str(Period.parse(PERIOD).shift(-1))
    usccs = _usccs(20)
    _insert(engine, ABOVE, [_enterprise(previous, u, 1000.0, 200.0) for u in usccs])
    one = [
        _enterprise(PERIOD, u, 1200.0 * (10000 if i == 3 else 1), 200.0)
        for i, u in enumerate(usccs)
    ]
    (slip,) = _by_type(check_stream(engine, ABOVE, PERIOD, _frame(one)))["plausibility_unit_slip"]
    assert slip["success"] and slip["unexpected_rows"] == [3]  # quarantined (mostly: 0.9)
    many = [
        _enterprise(PERIOD, u, 1200.0 * (10000 if i < 3 else 1), 200.0) for i, u in enumerate(usccs)
    ]
    (slip,) = _by_type(check_stream(engine, ABOVE, PERIOD, _frame(many)))["plausibility_unit_slip"]
    assert not slip["success"] and slip["unexpected_rows"] == [0, 1, 2]  # 15 % > 10 %: reject


def test_ledger_sales_typed_in_yuan_are_held_back_through_the_pipeline(warehouse_url) -> None:
    """The clerk's error of issue 14 end to end: 文创 sales typed in 元 in a ledger
    workbook used to load and turn the measure to 已完成; now the rows are quarantined,
    the workbook's period loads and the KPI stays where the real sales put it."""
    from sqlalchemy import text

    from cm_devtools.ledger_samples import file_name, ledger_file, sample_rows
    from consumption_monitor.feeds.sources.file_drop import drop_dir
    from consumption_monitor.pipeline.steps import run_period

    unit, stream = "区文广旅局", "product_sales"
    folder = drop_dir(LEDGERS)
    folder.mkdir(parents=True, exist_ok=True)
    for period in ("2024-01", "2024-02", "2024-03", "2024-04"):
        rows = sample_rows(stream, unit, period)
        if period == "2024-04":
            rows = [{**r, "sales_month": round(r["sales_month"] * 10000, 2)} for r in rows]
        path = folder / file_name(stream, unit, period)
        path.write_bytes(ledger_file(stream, unit, period, rows))
        result = run_period("work_ledgers", period, url=warehouse_url)
    assert result["validation"]["verdict"] != "rejected"
    assert result["validation"]["quarantined"][stream] == len(rows)
    with engine_for(warehouse_url).connect() as conn:
        status, ytd = conn.execute(
            text(
                "select status, actual_ytd from mart_indicator_snapshot_latest "
                "where kpi_id = 'm10_cultural_product_sales' and period = '2024-04'"
            )
        ).one()
        reasons = (
            conn.execute(
                text("select failed_expectations from audit_quarantine where period = '2024-04'")
            )
            .scalars()
            .all()
        )
    assert status != "已完成" and float(ytd) < 5
    assert all("plausibility_unit_slip" in r for r in reasons)
