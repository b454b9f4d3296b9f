"""Airflow UI plugin: the operator console (Browse → 监测总览).

A FastAPI app mounted at ``/cm-console`` (``consumption_monitor.pipeline.console_web``):
per feed and period the load state of the last 13 periods with links to the validation
reports and the Airflow runs, the open alerts, quarantined rows, the 19 measures' statuses
and the release calendar. Every route requires Airflow's login and the custom-view
permission ``cm_console`` (``orchestration/web_access.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from consumption_monitor.orchestration.web_access import CONSOLE_VIEW, requires_view
from consumption_monitor.pipeline.console_web import create_app

URL_PREFIX = "/cm-console"


class ConsumptionMonitorConsole(AirflowPlugin):
    name = "cm_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {
            "app": create_app(dependencies=[requires_view(CONSOLE_VIEW)]),
            "url_prefix": URL_PREFIX,
            "name": "监测总览",
        }
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "监测总览",
            "href": "cm-console/",
            "destination": "nav",
            "category": "browse",
            "url_route": "cm-console",
        }
    ]
