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

from cm_devtools.sample_server import FeedServer

AS_OF = datetime.date(2025, 12, 20)  # the sample feed publishes 2024-02 .. 2025-11
TOKEN = "test-token-not-a-secret"
PII_KEY = "test-pii-key-not-a-secret-0123456789"
PG_ADMIN_URL = os.environ.get(
    "CM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def postgres_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("CM_REQUIRE_POSTGRES"))


REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with a migrated SQLite metadata database, shared by the session."""
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return home


def airflow_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))


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


# --- alert sinks: a real SMTP server and a real HTTP server standing in for chat robots ---


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookSink:
    """A local HTTP server answering like WeCom/DingTalk/Feishu robots and recording every
    request. With a ``secret`` it checks DingTalk signatures as the real robot does and
    refuses a request whose signature does not match."""

    def __init__(self, secret: str | None = None) -> None:
        import json as _json
        import threading
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.secret = secret
        self.requests: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                split = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(split.query))
                record = {"path": split.path, "query": query, "json": _json.loads(raw or b"{}")}
                answer = sink.answer(record)
                sink.requests.append({**record, "answer": answer})
                body = _json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, record: dict) -> dict:
        if record["path"].startswith("/open-apis/"):
            return {"code": 0, "msg": "success"}
        if self.secret and record["path"] == "/robot/send":
            from consumption_monitor.alerts.channels import dingtalk_sign

            ts, sign = record["query"].get("timestamp"), record["query"].get("sign")
            if not ts or sign != dingtalk_sign(self.secret, int(ts)):
                return {"errcode": 310000, "errmsg": "sign not match"}
        return {"errcode": 0, "errmsg": "ok"}

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """aiosmtpd on an ephemeral port; ``messages`` are parsed ``email.message`` objects."""

    def __init__(self) -> None:
        self.messages: list = []
        self.port = free_port()

    def __enter__(self) -> SmtpSink:
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
                sink.messages.append(message)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


ROBOT_SECRET = "SEC-test-secret-not-real"
ROBOT_TOKEN = "robot-token-not-real"


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    with WebhookSink(secret=ROBOT_SECRET) as sink:
        yield sink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def alert_connections(
    monkeypatch: pytest.MonkeyPatch,
    webhook_sink: WebhookSink,
    smtp_sink: SmtpSink,
    airflow_home: Path,
) -> tuple[WebhookSink, SmtpSink]:
    """Airflow connections (environment style) to a signed DingTalk robot and SMTP.

    Reading a connection imports Airflow, which fixes its home for the process: point it
    at the session's Airflow home first, as the DAG tests do."""
    import json as _json

    airflow_env(monkeypatch, airflow_home)
    robot = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": webhook_sink.port,
        "schema": "http",
        "password": ROBOT_TOKEN,
        "extra": {"format": "dingtalk", "secret": ROBOT_SECRET},
    }
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_sink.port,
        "extra": {
            "from_email": "cm-alerts@xiqu.example",
            "to": "ops@xiqu.example,stats@xiqu.example",
            "disable_ssl": True,
            "disable_tls": True,
            "retry_limit": 0,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_CM_ALERT_WEBHOOK", _json.dumps(robot))
    monkeypatch.setenv("AIRFLOW_CONN_CM_ALERT_SMTP", _json.dumps(smtp))
    return webhook_sink, smtp_sink


# --- the bad-input gallery: no clear personal data anywhere after any case ---------------


def files_with_identifiers(root: Path) -> list[str]:
    """Files under ``root`` holding a real ID number or mobile number (check character and
    birth date verified; workbooks and other zips read part by part)."""
    from consumption_monitor.feeds.pii_scan import file_holds_identifiers

    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return [
        str(p.relative_to(root)) for p in files if file_holds_identifiers(p.read_bytes(), 2**34)
    ]


@pytest.fixture(autouse=True)
def _gallery_leaves_no_clear_personal_data(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[None]:
    """After every case of the bad-input gallery, nothing the platform wrote under the data
    folder holds a clear identifier (the senders' own files in the drop folder aside)."""
    yield
    if not request.module.__name__.startswith("test_bad_input"):
        return
    data = tmp_path / "data"
    written = [
        hit
        for hit in files_with_identifiers(data)
        if not (hit.startswith("incoming/") and "/_" not in hit.removeprefix("incoming/"))
    ]
    assert written == [], f"clear personal data written: {written}"
