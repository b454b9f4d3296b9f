"""The Celery topology's configuration: where its state lives and its airflow.cfg options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cm_devtools.demo.airflow_home import ADMIN_USER, SIMPLE_AUTH_MANAGER
from cm_devtools.demo.common import Layout

WORKERS = 2
WORKER_CONCURRENCY = 2
PARALLELISM = WORKERS * WORKER_CONCURRENCY
CELERY_CONFIG = "consumption_monitor.orchestration.celery_config.CELERY_CONFIG"


@dataclass(frozen=True)
class StateLayout(Layout):
    """The demo's layout with its state (Airflow home, data, logs) under ``state``.

    DAGs and plugins still come from the repository; the warehouse URL is given (PostgreSQL
    in the Celery topology) instead of the embedded SQLite file.
    """

    state: Path = field(default=Path("."))
    warehouse: str = ""

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def data(self) -> Path:
        return self.state / "data"

    @property
    def warehouse_url(self) -> str:
        return self.warehouse or f"sqlite:///{self.warehouse_path}"


def celery_settings(
    layout: Layout,
    *,
    port_api: int,
    metadata_url: str,
    broker_url: str,
    result_backend: str,
    key_prefix: str,
) -> dict[str, dict[str, str]]:
    """airflow.cfg options of the Celery topology (the compose file sets the same ones)."""
    return {
        "core": {
            "dags_folder": str(layout.dags),
            "plugins_folder": str(layout.plugins),
            "load_examples": "False",
            "executor": "CeleryExecutor",
            "parallelism": str(PARALLELISM),
            "auth_manager": SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(layout.password_file),
            "execution_api_server_url": f"http://127.0.0.1:{port_api}/execution/",
        },
        # psycopg 3 serves the async engine too (Airflow would default to asyncpg).
        "database": {"sql_alchemy_conn": metadata_url, "sql_alchemy_conn_async": metadata_url},
        "logging": {"base_log_folder": str(layout.task_logs)},
        "api": {"host": "127.0.0.1", "port": str(port_api), "workers": "1"},
        "celery": {
            "broker_url": broker_url,
            "result_backend": result_backend,
            "worker_concurrency": str(WORKER_CONCURRENCY),
            "celery_config_options": CELERY_CONFIG,
        },
        # Kombu's Redis transport prefixes every key: two topologies can share one Redis DB.
        "celery_broker_transport_options": {
            "global_keyprefix": key_prefix,
            "visibility_timeout": "21600",
        },
        "scheduler": {
            # Only the backfills run: unpausing a DAG must not add its latest scheduled
            # period (catchup=False still creates that one run), or the warehouse would hold
            # a period the comparison build does not.
            "use_job_schedule": "False",
            "task_instance_heartbeat_timeout": "60",
            "orphaned_tasks_check_interval": "30",
        },
        # The DAG files do not change while a test or benchmark runs: parse them once, not
        # every 30 s on cores the tasks need.
        "dag_processor": {"parsing_processes": "1", "min_file_process_interval": "600"},
    }
