"""The operator console (``/cm-console/``): the data of a warehouse loaded by the real
pipeline (passed, warning, rejected, late, not yet due, no data, January merged), its page
served by the plugin's app, and that page in headless Chromium (no console error, the
matrix cells), with a screenshot written to ``docs/screenshots/console.png`` when
``CM_WRITE_SCREENSHOTS=1``."""

from __future__ import annotations

import base64
import json
import os
import shutil
from datetime import date

import pytest
from chromium import Chromium, console_errors, is_free
from conftest import REPO

from consumption_monitor.alerts import service
from consumption_monitor.alerts.channels import configured_channels
from consumption_monitor.pipeline.console import console_data, matrix_periods
from consumption_monitor.pipeline.console_page import SHORT_LABELS, render_console
from consumption_monitor.pipeline.steps import BatchRejected, run_period
from consumption_monitor.warehouse.db import engine_for

TODAY = date(2025, 5, 20)
DEVTOOLS_PORT = 8114  # this work's port range is 8111-8119
SCREENSHOT = REPO / "docs" / "screenshots" / "console.png"
FEED = "retail_monthly"
EXPECTED = {  # (feed, period) -> state on TODAY
    (FEED, "2025-01"): "与2月合并发布",
    (FEED, "2025-02"): "已入库（通过）",
    (FEED, "2025-03"): "已入库（有警告）",
    (FEED, "2025-04"): "拒收",
    (FEED, "2024-12"): "无数据",  # older than the lateness window
    ("complaints_12315", "2025-04"): "已入库（通过）",
    ("complaints_12315", "2025-03"): "逾期",
    ("ecommerce_monthly", "2025-04"): "未到期",  # due 2025-05-20: not yet late
    ("ecommerce_monthly", "2025-01"): "与2月合并发布",
    ("employment_monthly", "2025-04"): "逾期",  # due 2025-05-12
}


def _load(feed_server, url: str, with_alert: bool) -> None:
    run_period(FEED, "2025-02", url=url)
    feed_server.faults.add("bad_rows", period="2025-03")
    run_period(FEED, "2025-03", url=url)
    feed_server.faults.clear()
    feed_server.faults.add("drop_column", period="2025-04", column="value_ytd")
    with pytest.raises(BatchRejected) as caught:
        run_period(FEED, "2025-04", url=url)
    feed_server.faults.clear()
    if with_alert:
        channels = configured_channels()
        service.on_task_failure(FEED, "2025-04", channels, error=caught.value, url=url)
    run_period("complaints_12315", "2025-04", url=url)


def _cells(data: dict) -> dict[tuple[str, str], dict]:
    return {(row["feed"], c["period"]): c for row in data["matrix"] for c in row["cells"]}


def test_console_data_from_real_loads(feed_server, warehouse_url: str) -> None:
    _load(feed_server, warehouse_url, with_alert=False)
    data = console_data(engine_for(warehouse_url), TODAY)
    assert data["periods"] == matrix_periods(TODAY) and len(data["periods"]) == 13
    assert data["periods"][0] == "2024-04" and data["periods"][-1] == "2025-04"
    cells = _cells(data)
    assert {key: cells[key]["state"] for key in EXPECTED} == EXPECTED
    warned = cells[(FEED, "2025-03")]
    assert warned["quarantined"] == 7
    assert warned["report"].startswith("/cm-validation/validation/retail_monthly/2025-03/")
    assert cells[(FEED, "2025-04")]["report"]  # the rejected run's report
    assert cells[(FEED, "2025-02")]["dag_run"] is None  # loaded outside Airflow
    assert data["quarantine"] == [
        {"feed": FEED, "title": "消费品市场月度监测", "period": "2025-03", "rows": 7}
    ]
    assert data["measures"]["period"] == "2025-04"
    assert data["measures"]["report"] == "/cm-reports/2025-04.html"
    assert [m["number"] for m in data["measures"]["measures"]] == list(range(1, 20))
    due = {c["feed"]: (c["period"], c["due"]) for c in data["calendar"]}
    assert due["ecommerce_monthly"] == ("2025-04", "2025-05-20")
    json.dumps(data)  # plain data
    assert data["warnings"] == [] and "id='warnings'" not in render_console(data)
    # late 2026: deadlines reach past the holiday calendar's last year (issue 15)
    later = console_data(engine_for(warehouse_url), date(2026, 11, 30))
    assert any("工作日历仅覆盖至 2026-12-31" in w for w in later["warnings"])
    assert "<ul id='warnings'" in render_console(later)


def test_dag_run_link_from_the_audit(feed_server, sqlite_url: str) -> None:
    from consumption_monitor.common.runs import RunContext

    run = RunContext(dag_id="retail_monthly", dag_run_id="scheduled__2025-03-15T00:00:00+00:00")
    run_period(FEED, "2025-02", url=sqlite_url, run=run)
    cell = _cells(console_data(engine_for(sqlite_url), TODAY))[(FEED, "2025-02")]
    assert cell["dag_run"] == (
        "/dags/retail_monthly/runs/scheduled__2025-03-15T00%3A00%3A00%2B00%3A00"
    )
    assert "/dags/retail_monthly/runs/scheduled__2025-03-15T00%3A00%3A00%2B00%3A00" in (
        render_console(console_data(engine_for(sqlite_url), TODAY))
    )


def test_the_plugin_app_and_registration(feed_server, sqlite_url: str, monkeypatch) -> None:
    import importlib.util

    from fastapi.testclient import TestClient

    from consumption_monitor.pipeline.console_web import create_app

    monkeypatch.setenv("CM_WAREHOUSE_URL", sqlite_url)
    run_period("complaints_12315", "2025-04", url=sqlite_url)
    client = TestClient(create_app())
    page = client.get("/", params={"today": TODAY.isoformat()})
    assert page.status_code == 200 and "<h1>监测总览</h1>" in page.text
    assert "<script" not in page.text and "http://" not in page.text
    assert "Noto Sans CJK SC" in page.text
    assert client.get("/console.json", params={"today": "2025-05-20"}).json()["as_of"] == (
        "2025-05-20"
    )
    assert client.get("/", params={"today": "2025-13-01"}).status_code == 422
    spec = importlib.util.spec_from_file_location("cm_console", REPO / "plugins" / "cm_console.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.ConsumptionMonitorConsole
    assert plugin.fastapi_apps[0]["url_prefix"] == "/cm-console"
    view = plugin.external_views[0]
    assert view["name"] == "监测总览" and view["category"] == "browse"


def test_shared_stylesheet_on_every_page(feed_server, sqlite_url: str, tmp_path) -> None:
    from consumption_monitor.common.style import STYLESHEET
    from consumption_monitor.indicators.report import render_report
    from consumption_monitor.validation.reports import list_reports, reports_dir

    run_period(FEED, "2025-02", url=sqlite_url)
    report = render_report(engine_for(sqlite_url), "2025-02")[0]
    validation = reports_dir() / list_reports()[0]["path"].removeprefix("validation/")
    console = render_console(console_data(engine_for(sqlite_url), TODAY))
    for page in (report, validation.read_text(encoding="utf-8"), console):
        assert STYLESHEET in page
    assert "@media print" in STYLESHEET and '"Source Han Sans SC"' in STYLESHEET


@pytest.mark.slow
def test_the_console_in_headless_chromium(
    feed_server, sqlite_url: str, alert_connections, tmp_path, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from consumption_monitor.pipeline.console_web import create_app

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    assert is_free(DEVTOOLS_PORT), f"port {DEVTOOLS_PORT} is taken"
    monkeypatch.setenv("CM_WAREHOUSE_URL", sqlite_url)
    _load(feed_server, sqlite_url, with_alert=True)
    answer = TestClient(create_app()).get("/", params={"today": TODAY.isoformat()})
    assert answer.status_code == 200
    page = tmp_path / "console.html"
    page.write_text(answer.text, encoding="utf-8")
    with Chromium(binary, tmp_path / "profile", DEVTOOLS_PORT) as browser:
        browser.send("Runtime.enable")
        browser.send("Log.enable")
        browser.send("Page.enable")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.send("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        result = browser.send(
            "Runtime.evaluate",
            returnByValue=True,
            expression="""JSON.stringify({
                cells: [...document.querySelectorAll('#matrix td[data-state]')].map(
                    td => [td.dataset.feed, td.dataset.period, td.dataset.state,
                           td.querySelector('.chip').innerText,
                           getComputedStyle(td.querySelector('.chip')).backgroundColor]),
                rows: document.querySelectorAll('#matrix tbody tr').length,
                alerts: document.querySelectorAll('#alerts tbody tr').length,
                measures: document.querySelectorAll('#measures [data-measure]').length,
                calendar: document.querySelectorAll('#calendar tbody tr').length,
                font: getComputedStyle(document.body).fontFamily,
                title: document.title
            })""",
        )
        errors = console_errors(browser.events)
        height = browser.send(
            "Runtime.evaluate",
            returnByValue=True,
            expression="document.documentElement.scrollHeight",
        )["result"]["value"]
        shot = browser.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": min(height, 2400), "scale": 1},
        )
    assert errors == []
    found = json.loads(result["result"]["value"])
    cells = {(f, p): (state, text, colour) for f, p, state, text, colour in found["cells"]}
    for key, state in EXPECTED.items():
        assert cells[key][:2] == (state, SHORT_LABELS[state]), key
    assert cells[(FEED, "2025-02")][2] != cells[(FEED, "2025-04")][2]  # coloured by state
    assert found["rows"] == 6 and len(found["cells"]) == 6 * 13
    assert found["alerts"] >= 1 and found["measures"] == 19 and found["calendar"] == 6
    assert "Noto Sans CJK SC" in found["font"] and "监测总览" in found["title"]
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    if os.environ.get("CM_WRITE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)
