"""Shared fixtures: a real feed server, a real SQLite file and a real PostgreSQL database.

PostgreSQL tests run against the server on 127.0.0.1:5432 (``CM_TEST_PG_ADMIN_URL``), in a
database created for the session and dropped after it. When ``CI`` or
``CM_REQUIRE_POSTGRES`` is set, an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from consumption_monitor.sample_server import FeedServer

AS_OF = datetime.date(2025, 12, 20)  # the sample feed publishes 2024-02 .. 2025-11
TOKEN = "test-token-not-a-secret"
PII_KEY = "test-pii-key-not-a-secret-0123456789"
PG_ADMIN_URL = os.environ.get(
    "CM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def postgres_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("CM_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def feed_server() -> Iterator[FeedServer]:
    with FeedServer(token=TOKEN, as_of=AS_OF) as server:
        yield server


@pytest.fixture(autouse=True)
def _feed_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the platform at the session's feed server and a per-test data dir."""
    monkeypatch.setenv("CM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CM_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("CM_PII_KEY", PII_KEY)
    if "feed_server" in request.fixturenames:
        server = request.getfixturevalue("feed_server")
        monkeypatch.setenv("CM_FEED_BASE_URL", server.url)
        monkeypatch.setenv("CM_FEED_TOKEN", TOKEN)
        server.faults.clear()
        server.request_log.clear()
        yield
        server.faults.clear()
    else:
        yield


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL server (skip, or fail under CI)."""
    try:
        with _pg_admin() as conn:
            conn.execute("select 1")
    except Exception as exc:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_URL


def _create_database(prefix: str) -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as conn:
        conn.execute(f'create database "{name}"')
    return name


def _drop_database(name: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; returns its SQLAlchemy URL."""
    name = _create_database("cm_test")
    try:
        yield pg_url(name)
    finally:
        from consumption_monitor.warehouse.db import engine_for

        engine_for.cache_clear()
        _drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """Each warehouse test runs on the embedded SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def new_warehouse_url(request: pytest.FixtureRequest, warehouse_url: str, tmp_path: Path):
    """A factory for more empty warehouses of the same kind (to compare two builds)."""
    created: list[str] = []

    def make() -> str:
        if warehouse_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / f'warehouse-{uuid.uuid4().hex[:6]}.db'}"
        name = _create_database("cm_test")
        created.append(name)
        return pg_url(name)

    yield make
    from consumption_monitor.warehouse.db import engine_for

    engine_for.cache_clear()
    for name in created:
        _drop_database(name)
