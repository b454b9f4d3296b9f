"""Where the platform's settings come from.

Order of precedence for every setting: an explicit argument, then the environment, then an
Airflow connection (only when running inside Airflow), then the embedded default. Secrets
(tokens, passwords) are never given defaults and never logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # common/config.py -> the package
REPO_DIR = PACKAGE_DIR.parents[1]  # include/consumption_monitor -> repo root

WAREHOUSE_CONN_ID = "cm_warehouse"
FEED_CONN_ID = "cm_feed"


def data_dir() -> Path:
    """Root for the embedded warehouse, raw archive and demo state (``CM_DATA_DIR``)."""
    return Path(os.environ.get("CM_DATA_DIR") or REPO_DIR / "data").resolve()


def archive_dir() -> Path:
    return Path(os.environ.get("CM_ARCHIVE_DIR") or data_dir() / "archive").resolve()


def incoming_dir() -> Path:
    """Root of the file drops (``CM_INCOMING_DIR``): ``<root>/<feed>/`` per file feed."""
    return Path(os.environ.get("CM_INCOMING_DIR") or data_dir() / "incoming").resolve()


def expectations_dir() -> Path:
    return Path(os.environ.get("CM_EXPECTATIONS_DIR") or REPO_DIR / "expectations").resolve()


def sql_dir() -> Path:
    return Path(os.environ.get("CM_SQL_DIR") or REPO_DIR / "sql").resolve()


def default_warehouse_url() -> str:
    return f"sqlite:///{data_dir() / 'warehouse.db'}"


def _airflow_connection(conn_id: str):
    """The Airflow connection ``conn_id`` when running under Airflow, else None.

    Looking a connection up outside Airflow would try to open its metadata database, so it
    is only attempted when AIRFLOW_HOME or an AIRFLOW_CONN_* variable says Airflow is set up.
    """
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if env_name not in os.environ and "AIRFLOW_HOME" not in os.environ:
        return None
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover - Airflow is part of requirements.txt
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        return None


def normalise_db_url(url: str) -> str:
    """Make Airflow-style ``postgres://`` URIs usable by SQLAlchemy with psycopg 3."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def warehouse_url(explicit: str | None = None) -> str:
    """The warehouse URL: argument, ``CM_WAREHOUSE_URL``, connection ``cm_warehouse``, SQLite."""
    if explicit:
        return normalise_db_url(explicit)
    if os.environ.get("CM_WAREHOUSE_URL"):
        return normalise_db_url(os.environ["CM_WAREHOUSE_URL"])
    conn = _airflow_connection(WAREHOUSE_CONN_ID)
    if conn is not None:
        return normalise_db_url(conn.get_uri())
    return default_warehouse_url()


@dataclass(frozen=True)
class FeedEndpoint:
    """Base URL and bearer token of a statistics feed API."""

    base_url: str
    token: str | None

    def __repr__(self) -> str:  # never print the token
        return f"FeedEndpoint(base_url={self.base_url!r}, token={'***' if self.token else None})"


def feed_endpoint(conn_id: str = FEED_CONN_ID) -> FeedEndpoint:
    """Feed API location: ``CM_FEED_BASE_URL``/``CM_FEED_TOKEN`` or an HTTP connection.

    In an Airflow HTTP connection the token is the password (or ``extra.token``).
    """
    if os.environ.get("CM_FEED_BASE_URL"):
        return FeedEndpoint(
            os.environ["CM_FEED_BASE_URL"].rstrip("/"), os.environ.get("CM_FEED_TOKEN")
        )
    conn = _airflow_connection(conn_id)
    if conn is not None:
        scheme = conn.schema or "http"
        port = f":{conn.port}" if conn.port else ""
        token = conn.password or (conn.extra_dejson or {}).get("token")
        return FeedEndpoint(f"{scheme}://{conn.host}{port}".rstrip("/"), token)
    return FeedEndpoint("http://127.0.0.1:8765", os.environ.get("CM_FEED_TOKEN"))
