"""The report pages served inside the Airflow API server (plugin ``plugins/cm_reports.py``).

``/`` lists the periods that have snapshots; ``/<period>.html`` renders that period's
report from the warehouse's latest snapshot and ``/<period>.xlsx`` downloads the workbook.
Links are relative, so the pages work under any prefix and behind a proxy. Only FastAPI is
imported at module level; the warehouse and the renderers load on the first request.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from consumption_monitor.common.periods import PERIOD_RE
from consumption_monitor.common.style import style_element

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _engine():
    from consumption_monitor.common import config
    from consumption_monitor.warehouse.db import engine_for

    return engine_for(config.warehouse_url(None))


def _periods() -> list[str]:
    from sqlalchemy import text

    sql = text(
        "select distinct period from mart_indicator_snapshot_latest "
        "where actual_ytd is not null or milestone_status is not null order by period desc"
    )
    with _engine().connect() as conn:
        return list(conn.execute(sql).scalars())


def _period(period: str) -> str:
    if not PERIOD_RE.match(period):
        raise HTTPException(status_code=404, detail="统计期应为 YYYY-MM")
    return period


def create_app(dependencies: list[Any] | None = None) -> FastAPI:
    """The report pages; ``dependencies`` guard every route (the plugin passes Airflow's
    login and view permission: ``orchestration.web_access``)."""
    app = FastAPI(title="西区提振消费专项行动监测月报", dependencies=dependencies or [])

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        items = "".join(
            f'<li><a href="{p}.html">{p} 月报</a> · <a href="{p}.xlsx">Excel</a></li>'
            for p in map(html.escape, _periods())
        )
        return (
            '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>监测月报</title>{style_element()}</head><body>"
            "<h1>西区提振消费专项行动监测月报</h1>"
            f"<ul>{items or '<li>暂无快照：先运行 cm snapshot 或快照 DAG</li>'}</ul></body></html>"
        )

    @app.get("/{period}.html", response_class=HTMLResponse)
    def report_html(period: str) -> str:
        from consumption_monitor.indicators.report import render_report

        return render_report(_engine(), _period(period))[0]

    @app.get("/{period}.xlsx")
    def report_xlsx(period: str) -> Response:
        from consumption_monitor.indicators.report import render_report

        body = render_report(_engine(), _period(period))[1]
        headers = {"Content-Disposition": f'attachment; filename="report-{period}.xlsx"'}
        return Response(content=body, media_type=XLSX_TYPE, headers=headers)

    return app
