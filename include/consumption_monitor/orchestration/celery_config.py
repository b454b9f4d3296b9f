"""Celery configuration of the production topology (``[celery] celery_config_options``).

Why: Great Expectations takes 10-17 s to import and every validate task needs it. A Celery
worker started with ``CM_CELERY_PRELOAD=1`` imports it (and the other heavy third-party
libraries) here, once, before its prefork pool forks: pool processes and the task processes
Airflow's supervisor forks from them inherit the modules. Everything else (the scheduler,
which imports this module too) gets Airflow's default configuration unchanged. Project code
is never preloaded, so tasks always run the code on disk.
"""

from __future__ import annotations

import importlib
import os

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOAD_ENV = "CM_CELERY_PRELOAD"
PRELOAD_MODULES = (
    "airflow.sdk.execution_time.task_runner",  # what every task process runs first
    "great_expectations",
    "pandas",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "alembic",
    "requests",
    "openpyxl",
    "yaml",
)

if os.environ.get(PRELOAD_ENV) == "1":
    for _name in PRELOAD_MODULES:
        importlib.import_module(_name)

CELERY_CONFIG = DEFAULT_CELERY_CONFIG
