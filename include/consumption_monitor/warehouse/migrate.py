"""Bring a warehouse to the current schema: Alembic migrations for tables, then the
analyst views from ``sql/`` (dropped and recreated, as dbt does for views).

Concurrent callers (several tasks starting at once) are serialised: PostgreSQL by an
advisory lock, SQLite by its write lock.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from consumption_monitor import config
from consumption_monitor.warehouse.db import engine_for, is_postgres

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VIEW_LAYERS = ("staging", "core", "marts")  # creation order under sql/
_LOCK_ID = 5104030001


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", config.warehouse_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def view_files(directory: Path | None = None) -> list[Path]:
    root = directory or config.sql_dir()
    files: list[Path] = []
    for layer in VIEW_LAYERS:
        files.extend(sorted((root / layer).glob("*.sql")))
    return files


def view_name(path: Path) -> str:
    return path.stem


def refresh_views(conn: Connection, directory: Path | None = None) -> list[str]:
    """Drop and recreate every view from ``sql/<layer>/<name>.sql`` (a bare select)."""
    files = view_files(directory)
    for path in reversed(files):
        conn.execute(text(f"drop view if exists {view_name(path)}"))
    for path in files:
        body = path.read_text(encoding="utf-8").strip().rstrip(";")
        conn.execute(text(f"create view {view_name(path)} as\n{body}"))
    return [view_name(p) for p in files]


def upgrade(url: str | None = None, *, engine: Engine | None = None) -> str | None:
    """Migrate to head and refresh the views; returns the revision reached."""
    engine = engine or engine_for(config.warehouse_url(url))
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        cfg.attributes["connection"] = conn
        if current_revision(conn) != head_revision():
            command.upgrade(cfg, "head")
        refresh_views(conn)
        revision = current_revision(conn)
    log.info("warehouse %s at revision %s", engine.url.render_as_string(), revision)
    return revision
