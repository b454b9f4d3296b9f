"""A running Celery topology: its processes started, waited for, stopped and cleaned up."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cm_devtools.demo.airflow_home import (
    ADMIN_USER,
    ensure_admin_password,
    merge_airflow_cfg,
    process_env,
    write_private,
)
from cm_devtools.demo.common import REPO_DIR, DemoError, Layout
from cm_devtools.demo.console import Console
from cm_devtools.demo.data import feed_command, migrate_warehouse
from cm_devtools.demo.processes import (
    Started,
    port_free,
    port_holder,
    spawn,
    stop_all,
    tail,
    wait_for,
)
from cm_devtools.demo.rest import AirflowApi, airflow_ready, http_json
from cm_devtools.topology.services import Services
from cm_devtools.topology.settings import (
    WORKER_CONCURRENCY,
    WORKERS,
    StateLayout,
    celery_settings,
)


@dataclass
class Topology:
    """A running Celery topology: its processes, API client and resources to clean up."""

    layout: StateLayout
    services: Services
    port_api: int
    port_feed: int
    metadata_db: str
    warehouse_db: str
    key_prefix: str
    token: str = ""
    password: str = ""
    started: dict[str, Started] = field(default_factory=dict)
    api: AirflowApi | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port_api}"

    @property
    def warehouse_url(self) -> str:
        return self.layout.warehouse_url

    @property
    def feed_url(self) -> str:
        return f"http://127.0.0.1:{self.port_feed}"

    def env(self, *, preload: bool = False) -> dict[str, str]:
        env = process_env(self.layout, port_feed=self.port_feed, token=self.token)
        if preload:
            env["CM_CELERY_PRELOAD"] = "1"
        return env

    def check_alive(self) -> None:
        """Fail with the log tail of any component that exited."""
        for name, proc in self.started.items():
            if proc.exited() is not None:
                raise DemoError(
                    f"{name} exited ({proc.exited()}), log {proc.log}:\n{tail(proc.log, 30)}"
                )


def new_topology(
    state: Path, *, port_api: int, port_feed: int, services: Services | None = None
) -> Topology:
    """Names (databases, Redis prefix) for a topology under ``state``; nothing started yet."""
    services = services or Services.from_env()
    tag = f"cm_celery_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    warehouse_db = f"{tag}_wh"
    layout = StateLayout(repo=REPO_DIR, state=state, warehouse=services.db_url(warehouse_db))
    return Topology(
        layout=layout,
        services=services,
        port_api=port_api,
        port_feed=port_feed,
        metadata_db=f"{tag}_af",
        warehouse_db=warehouse_db,
        key_prefix=f"{tag}:",
    )


def _airflow(layout: Layout, *args: str) -> list[str]:
    return [str(layout.venv_bin / "airflow"), *args]


def start(topology: Topology, *, console: Console | None = None, timeout_s: float = 240) -> None:
    """Create the databases, migrate both, start every component and wait until healthy."""
    check_ports(topology)
    configure(topology)
    migrate_metadata(topology)
    spawn_components(topology)
    wait_until_ready(topology, console=console, timeout_s=timeout_s)


def check_ports(topology: Topology) -> None:
    """Fail before anything is created when the API or feed server port is taken."""
    for port in (topology.port_api, topology.port_feed):
        if not port_free(port):
            raise DemoError(f"port {port} is taken ({port_holder(port) or 'unknown'})")


def configure(topology: Topology) -> None:
    """Folders, both databases, airflow.cfg, the admin password, the feed token and the
    warehouse schema."""
    t, layout, services = topology, topology.layout, topology.services
    for path in (layout.airflow_home, layout.demo, layout.data / "archive", layout.task_logs):
        path.mkdir(parents=True, exist_ok=True)
    services.create_database(t.metadata_db)
    services.create_database(t.warehouse_db)
    metadata_url = services.db_url(t.metadata_db)
    write_private(
        layout.airflow_cfg,
        merge_airflow_cfg(
            None,
            celery_settings(
                layout,
                port_api=t.port_api,
                metadata_url=metadata_url,
                broker_url=services.redis_url,
                result_backend="db+" + metadata_url,
                key_prefix=t.key_prefix,
            ),
        ),
    )
    t.password = ensure_admin_password(layout.password_file)
    t.token = secrets.token_urlsafe(24)
    migrate_warehouse(t.warehouse_url)


def migrate_metadata(topology: Topology) -> None:
    """``airflow db migrate`` on the topology's metadata database."""
    migrated = subprocess.run(
        _airflow(topology.layout, "db", "migrate"),
        env=topology.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if migrated.returncode:
        raise DemoError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")


def spawn_components(topology: Topology) -> None:
    """The feed server, API server, scheduler, DAG processor and the Celery workers."""
    t, layout = topology, topology.layout
    env = t.env()
    t.started["feed-server"] = spawn(layout, "feed-server", feed_command(t.port_feed, t.token), env)
    for name, argv in (
        ("api-server", _airflow(layout, "api-server", "--port", str(t.port_api))),
        ("scheduler", _airflow(layout, "scheduler")),
        ("dag-processor", _airflow(layout, "dag-processor")),
    ):
        t.started[name] = spawn(layout, name, argv, env)
    worker_env = t.env(preload=True)
    for n in range(1, WORKERS + 1):
        name = f"worker-{n}"
        argv = _airflow(
            layout,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}-{t.key_prefix.rstrip(':')}@%h",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--skip-serve-logs",
        )
        t.started[name] = spawn(layout, name, argv, worker_env)


def wait_until_ready(topology: Topology, *, console: Console | None, timeout_s: float) -> None:
    """The feed server answering, Airflow healthy (then ``topology.api`` is set) and every
    worker consuming; ``timeout_s`` counts from the feed server being up."""
    t = topology
    wait_for(
        lambda: (http_json(f"{t.feed_url}/health") or {}).get("status") == "ok",
        what="feed server",
        timeout_s=60,
        started=t.started["feed-server"],
        interval_s=0.5,
    )
    deadline = time.monotonic() + timeout_s

    def healthy() -> bool:
        t.check_alive()
        return airflow_ready(http_json(f"{t.api_url}/api/v2/monitor/health"))

    wait_for(healthy, what="Airflow (Celery)", timeout_s=timeout_s, interval_s=2, console=console)
    t.api = AirflowApi(t.api_url, ADMIN_USER, t.password)
    wait_for(
        lambda: t.check_alive() is None and workers_ready(t) >= WORKERS,
        what="Celery workers",
        timeout_s=max(30.0, deadline - time.monotonic()),
        interval_s=2,
        console=console,
    )


def workers_ready(topology: Topology) -> int:
    """How many workers logged Celery's "ready." line (connected to the broker, consuming)."""
    return sum(
        1
        for name, proc in topology.started.items()
        if name.startswith("worker-") and " ready." in tail(proc.log, 400)
    )


def stop(topology: Topology, *, drop: bool = True) -> None:
    """Stop every process, then drop the databases and the broker keys (best effort each).

    The demo's stop: SIGTERM to the process groups from the pid files and to everything
    carrying this topology's marker, SIGKILL after a grace period.
    """
    with contextlib.suppress(Exception):
        stop_all(topology.layout, grace_s=30, services=topology.started)
    for proc in topology.started.values():
        with contextlib.suppress(Exception):
            proc.proc.wait(timeout=10)
    if not drop:
        return
    from consumption_monitor.warehouse.db import engine_for

    engine_for.cache_clear()  # pooled connections of this process
    for name in (topology.metadata_db, topology.warehouse_db):
        with contextlib.suppress(Exception):
            topology.services.drop_database(name)
    with contextlib.suppress(Exception):
        topology.services.drop_redis_keys(topology.key_prefix)


@contextlib.contextmanager
def running(
    state: Path,
    *,
    port_api: int,
    port_feed: int,
    services: Services | None = None,
    console: Console | None = None,
) -> Iterator[Topology]:
    """Start a topology for the ``with`` block; stop it and drop its databases afterwards."""
    topology = new_topology(state, port_api=port_api, port_feed=port_feed, services=services)
    try:
        start(topology, console=console)
        yield topology
    finally:
        stop(topology)
