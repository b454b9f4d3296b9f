"""A scratch PostgreSQL database per benchmark: created on the local server, dropped after,
so a benchmark never touches a warehouse someone uses (``CM_TEST_PG_ADMIN_URL`` as in the
tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

ADMIN_URL = os.environ.get("CM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin(sql: str) -> None:
    """Run ``sql`` on the server's admin database (autocommit: CREATE/DROP DATABASE)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def db_url(name: str, driver: str = "postgresql+psycopg") -> str:
    """The URL of database ``name`` on the admin URL's server (SQLAlchemy by default;
    ``driver="postgresql"`` for psycopg and psql)."""
    return f"{driver}://{ADMIN_URL.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database named ``<prefix>_<pid>_<random>``, dropped on exit unless
    ``keep`` (to look into it afterwards; drop it by hand)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin(f'create database "{name}"')
    try:
        yield name
    finally:
        if keep:
            print(f"kept database {name}", flush=True)
        else:
            admin(f'drop database if exists "{name}" with (force)')
