"""The operator console served inside the Airflow API server (plugin
``plugins/cm_console.py``): ``/`` renders the console from the warehouse the DAGs write (the
``cm_warehouse`` connection or ``CM_WAREHOUSE_URL``), ``/console.json`` gives the same data;
``?today=YYYY-MM-DD`` shows the console as of another day (default: today in the bureau).
Only FastAPI is imported at module level; the warehouse loads on the first request. The
plugin adds Airflow's login (``orchestration.web_access``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse


def _data(today: date | None) -> dict[str, Any]:
    from consumption_monitor.common import config
    from consumption_monitor.pipeline.console import console_data
    from consumption_monitor.warehouse.db import engine_for

    return console_data(engine_for(config.warehouse_url(None)), today)


def create_app(dependencies: list[Any] | None = None) -> FastAPI:
    """The console; ``dependencies`` guard every route."""
    app = FastAPI(
        title="消费监测总览", docs_url=None, redoc_url=None, dependencies=dependencies or []
    )

    @app.get("/", response_class=HTMLResponse)
    def console(today: date | None = None) -> str:
        from consumption_monitor.pipeline.console_page import render_console

        return render_console(_data(today))

    @app.get("/console.json")
    def console_json(today: date | None = None) -> dict[str, Any]:
        return _data(today)

    return app
