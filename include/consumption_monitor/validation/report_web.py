"""The validation report pages served inside the Airflow API server (plugin
``plugins/cm_validation_reports.py``): ``/`` lists every validation run's report, newest
first; ``/validation/<feed>/<period>/<run>.html`` serves one (only files under the reports
folder). Only FastAPI is imported here; the plugin adds Airflow's login."""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from consumption_monitor.common.style import style_element
from consumption_monitor.validation.reports import list_reports, reports_dir


def create_app(dependencies: list[Any] | None = None) -> FastAPI:
    """The pages; ``dependencies`` guard every route (``orchestration.web_access``)."""
    app = FastAPI(
        title="消费监测校验报告", docs_url=None, redoc_url=None, dependencies=dependencies or []
    )

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(r['feed'])}</td><td>{html.escape(r['period'])}</td>"
            f"<td><a href='{html.escape(r['path'])}'>{html.escape(r['run_id'])}</a></td></tr>"
            for r in list_reports()
        )
        return (
            "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>校验报告"
            f"</title>{style_element()}</head><body><h1>校验报告</h1><table><tr><th>数据源</th>"
            "<th>统计期</th>"
            f"<th>校验运行</th></tr>{rows or '<tr><td colspan=3>暂无</td></tr>'}</table>"
            "</body></html>"
        )

    @app.get("/validation/{feed}/{period}/{name}")
    def report(feed: str, period: str, name: str) -> FileResponse:
        root = reports_dir().resolve()
        path = (root / feed / period / name).resolve()
        if root not in path.parents or path.suffix != ".html" or not path.is_file():
            raise HTTPException(status_code=404, detail="no such report")
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return app
