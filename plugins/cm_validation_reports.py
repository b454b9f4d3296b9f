"""Airflow UI plugin: the validation reports, listed and served by the API server.

A FastAPI app mounted at ``/cm-validation`` (``consumption_monitor.validation.report_web``:
the index of every validation run's report, newest first, and the report pages) and a
"校验报告" entry in the UI's navigation. The pages are written by the validate step
(``validation/reports.py``); alerts link to them. Every route requires Airflow's login and
the custom-view permission ``cm_validation`` (``orchestration/web_access.py``): the reports
list quarantined rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from consumption_monitor.orchestration.web_access import VALIDATION_VIEW, requires_view
from consumption_monitor.validation.report_web import create_app
from consumption_monitor.validation.reports import URL_PREFIX

app = create_app(dependencies=[requires_view(VALIDATION_VIEW)])


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
