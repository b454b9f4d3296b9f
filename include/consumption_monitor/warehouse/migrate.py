"""Bring a warehouse to the current schema: Alembic migrations for tables, the reference
tables from ``reference/`` files (reloaded when a file changed), then the analyst views from
``sql/`` (dropped and recreated, as dbt does for views).

Concurrent callers (several tasks starting at once) are serialised: PostgreSQL by an
advisory lock, SQLite by its write lock.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, delete, insert, inspect, select, text

from consumption_monitor.common import config
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for, is_postgres
from consumption_monitor.warehouse.reference import refresh_reference

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


def _view_hashes(files: list[Path]) -> dict[str, str]:
    return {view_name(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def refresh_views(
    conn: Connection, directory: Path | None = None, *, force: bool = False
) -> list[str]:
    """Recreate the views from ``sql/<layer>/<name>.sql`` (each a bare select) when any
    file changed, a view is missing or ``force``; returns the views recreated (or [])."""
    files = view_files(directory)
    wanted = _view_hashes(files)
    state = schema.audit_schema_views
    built = dict(conn.execute(select(state.c.name, state.c.sha256)).fetchall())
    present = set(inspect(conn).get_view_names())
    if not force and built == wanted and set(wanted) <= present:
        return []
    for name in [*reversed(list(wanted)), *(set(built) - set(wanted))]:
        conn.execute(text(f"drop view if exists {name}"))
    for path in files:
        body = path.read_text(encoding="utf-8").strip().rstrip(";")
        conn.execute(text(f"create view {view_name(path)} as\n{body}"))
    conn.execute(delete(state))
    at = datetime.now(UTC)
    conn.execute(
        insert(state), [{"name": n, "sha256": h, "created_at": at} for n, h in wanted.items()]
    )
    return list(wanted)


def upgrade(url: str | None = None, *, engine: Engine | None = None) -> str | None:
    """Migrate to head, reload changed reference tables and refresh the views; returns the
    revision reached."""
    engine = engine or engine_for(config.warehouse_url(url))
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        cfg.attributes["connection"] = conn
        migrated = current_revision(conn) != head_revision()
        if migrated:
            command.upgrade(cfg, "head")
        refresh_reference(conn, force=migrated)
        if refresh_views(conn, force=migrated) and is_postgres(engine):
            from consumption_monitor.warehouse.roles import grant_analyst, role_exists

            if role_exists(conn):  # recreated views lost their grants
                grant_analyst(conn)
        revision = current_revision(conn)
    log.info("warehouse %s at revision %s", engine.url.render_as_string(), revision)
    return revision


@cache
def ensure_schema(url: str) -> str | None:
    """``upgrade`` once per process and warehouse: tasks call it before their first write."""
    return upgrade(url)
