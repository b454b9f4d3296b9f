"""Airflow UI plugin: the validation reports, listed and served by the API server.

A FastAPI app mounted at ``/cm-validation`` (index of every validation run's report, newest
first, and the report pages themselves) and a "校验报告" entry in the UI's navigation. The
pages are written by the validate step (``validation/reports.py``); alerts link to them.
"""

from __future__ import annotations

import html
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from consumption_monitor.validation.reports import URL_PREFIX, list_reports, reports_dir

app = FastAPI(title="消费监测校验报告", docs_url=None, redoc_url=None)


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r['feed'])}</td><td>{html.escape(r['period'])}</td>"
        f"<td><a href='{html.escape(r['path'])}'>{html.escape(r['run_id'])}</a></td></tr>"
        for r in list_reports()
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>校验报告</title>"
        "</head><body><h1>校验报告</h1><table><tr><th>数据源</th><th>统计期</th><th>校验运行</th>"
        f"</tr>{rows or '<tr><td colspan=3>暂无</td></tr>'}</table></body></html>"
    )


@app.get("/validation/{feed}/{period}/{name}")
def report(feed: str, period: str, name: str) -> FileResponse:
    root = reports_dir().resolve()
    path = (root / feed / period / name).resolve()
    if root not in path.parents or path.suffix != ".html" or not path.is_file():
        raise HTTPException(status_code=404, detail="no such report")
    return FileResponse(path, media_type="text/html; charset=utf-8")


class ConsumptionMonitorValidationReports(AirflowPlugin):
    name = "cm_validation_reports"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "校验报告"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "校验报告",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "cm-validation",
            "category": "browse",
        }
    ]
