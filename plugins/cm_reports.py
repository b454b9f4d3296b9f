"""Airflow UI page for the monthly report of the plan's measures (Airflow 3 plugin).

A FastAPI app mounted in the API server at ``/cm-reports`` serves the report pages
(``consumption_monitor.indicators.report.web``) and an external view puts them in the UI's Browse
menu, rendered in an iframe. The pages read the warehouse the DAGs write (the
``cm_warehouse`` connection or ``CM_WAREHOUSE_URL``). Every route requires Airflow's login
and the custom-view permission ``cm_reports`` (``orchestration/web_access.py``): Airflow
mounts plugin apps without authentication, so the app declares it itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from consumption_monitor.indicators.report.web import create_app
from consumption_monitor.orchestration.web_access import REPORTS_VIEW, requires_view

URL_PREFIX = "/cm-reports"


class ConsumptionMonitorReports(AirflowPlugin):
    name = "cm_reports"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {
            "app": create_app(dependencies=[requires_view(REPORTS_VIEW)]),
            "url_prefix": URL_PREFIX,
            "name": "监测月报",
        }
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "监测月报",
            "href": "cm-reports/",
            "destination": "nav",
            "category": "browse",
            "url_route": "cm-reports",
        }
    ]
