"""The read-only PostgreSQL role for analysts: ``cm_analyst``.

It may read the marts layer (every ``mart_`` view, the immutable snapshot table) and the
reference tables, and nothing else: no raw payloads, staging or core rows, audit tables,
quarantined rows (raw values as received) or anything derived from personal data. Views
are read with their owner's rights, so granting the views alone is enough. ``cm migrate``
recreates views, which drops their grants; ``upgrade`` calls ``grant_analyst`` again when
the role exists. The password, if any, comes from ``CM_ANALYST_PASSWORD`` (never code).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from consumption_monitor.warehouse.db import is_postgres

ANALYST_ROLE = "cm_analyst"
READABLE_PREFIXES = ("mart_", "ref_")


def readable_relations(conn: Connection) -> list[str]:
    """The tables and views the analyst role may read."""
    insp = inspect(conn)
    names = insp.get_table_names() + insp.get_view_names()
    return sorted(n for n in names if n.startswith(READABLE_PREFIXES))


def role_exists(conn: Connection, role: str = ANALYST_ROLE) -> bool:
    found = conn.execute(text("select 1 from pg_roles where rolname = :r"), {"r": role})
    return found.first() is not None


def grant_analyst(conn: Connection, role: str = ANALYST_ROLE) -> list[str]:
    """Reset the role's rights in this database to: read marts, snapshots and references."""
    conn.execute(text(f'revoke all on all tables in schema public from "{role}"'))
    conn.execute(text(f'grant usage on schema public to "{role}"'))
    granted = readable_relations(conn)
    for name in granted:
        conn.execute(text(f'grant select on "{name}" to "{role}"'))
    return granted


def ensure_analyst_role(engine: Engine, role: str = ANALYST_ROLE) -> dict[str, Any]:
    """Create the role (LOGIN, read-only) if missing and grant it in this warehouse."""
    if not is_postgres(engine):
        raise SystemExit("只读分析角色仅适用于 PostgreSQL 仓库（SQLite 文件请以只读方式打开）")
    password = os.environ.get("CM_ANALYST_PASSWORD")
    with engine.begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(5104030006)"))
        if not role_exists(conn, role):
            conn.execute(
                text(f'create role "{role}" login nosuperuser nocreatedb nocreaterole noinherit')
            )
        if password:
            conn.execute(text(f'alter role "{role}" password ' + _literal(conn, password)))
        database = conn.execute(text("select current_database()")).scalar()
        conn.execute(text(f'grant connect on database "{database}" to "{role}"'))
        granted = grant_analyst(conn, role)
    return {"role": role, "database": database, "granted": granted}


def _literal(conn: Connection, value: str) -> str:
    """A quoted SQL literal (ALTER ROLE takes no bind parameters)."""
    quoted = conn.execute(text("select quote_literal(:v)"), {"v": value}).scalar()
    return str(quoted)
