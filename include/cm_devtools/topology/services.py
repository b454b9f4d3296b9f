"""The local PostgreSQL server and Redis database a topology uses (``CM_TEST_PG_ADMIN_URL``,
``CM_TEST_REDIS_URL``): databases created and dropped per topology, broker keys by prefix."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"


@dataclass(frozen=True)
class Services:
    """The local PostgreSQL server (admin URL) and the Redis database the topology uses."""

    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    redis_url: str = DEFAULT_REDIS_URL

    @classmethod
    def from_env(cls) -> Services:
        return cls(
            pg_admin_url=os.environ.get("CM_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL),
            redis_url=os.environ.get("CM_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        )

    def unreachable(self) -> str | None:
        """Why PostgreSQL or Redis cannot be used, or None when both answer."""
        import psycopg
        import redis

        try:
            with psycopg.connect(self.pg_admin_url, connect_timeout=5) as conn:
                conn.execute("select 1")
        except Exception as exc:
            return f"PostgreSQL not reachable at {self.pg_admin_url}: {exc}"
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5)
            client.ping()
            client.close()
        except Exception as exc:
            return f"Redis not reachable at {self.redis_url}: {exc}"
        return None

    def db_url(self, name: str, driver: str = "postgresql+psycopg") -> str:
        base = self.pg_admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"{driver}://{base}/{name}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'create database "{name}"')

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def drop_redis_keys(self, prefix: str) -> int:
        """Delete the broker keys of one topology (its ``global_keyprefix``), nothing else."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            return int(client.delete(*keys)) if keys else 0
        finally:
            client.close()
