"""Engines for the warehouse, with the settings each database needs for safe concurrency."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from consumption_monitor.common import config


def _sqlite_setup(engine: Engine) -> None:
    """WAL so analysts can read while a task writes; BEGIN IMMEDIATE so that two writers
    queue on the lock instead of deadlocking when a read transaction upgrades to a write."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    resolved = config.warehouse_url(url)
    if resolved.startswith("sqlite"):
        path = resolved.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, connect_args={"timeout": 60})
        _sqlite_setup(engine)
        return engine
    return create_engine(resolved, pool_pre_ping=True)


@cache
def engine_for(url: str | None = None) -> Engine:
    """One engine per URL and process (engines hold pools; tasks reuse them)."""
    return make_engine(url)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
