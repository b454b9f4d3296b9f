"""Airflow's REST API v2 as the demo uses it: the client, health polling, DAG parsing.

SQLite has one writer and the scheduler writes all the time: requests Airflow refuses
because of the lock are retried (``AirflowApi.call``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cm_devtools.demo.common import DAG_ID, DemoError
from cm_devtools.demo.console import Console
from cm_devtools.demo.processes import Started, wait_for


class ApiError(DemoError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AirflowApi:
    """Just enough of Airflow's REST API v2 for the demo, authenticated with a JWT.

    SQLite allows one writer at a time and the scheduler writes constantly, so a write can be
    refused with "database is locked" (HTTP 503, or 500/409 mentioning the lock). Those calls
    are retried; Airflow rolls each refused request back completely.
    """

    LOCK_RETRIES = 8

    def __init__(self, base_url: str, username: str, password: str) -> None:
        import requests  # local: keeps `cm --help` and the pure helpers light

        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = requests.Session()
        self._token: str | None = None

    def _login(self) -> None:
        resp = self._http.post(
            f"{self.base_url}/auth/token",
            json={"username": self._username, "password": self._password},
            timeout=30,
        )
        if resp.status_code >= 400:
            raise DemoError(f"Airflow 登录失败 ({resp.status_code}): {resp.text[:200]}")
        self._token = resp.json()["access_token"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON body of a successful call; re-logs in on 401, retries database-lock refusals."""
        relogged = False
        for attempt in range(1, self.LOCK_RETRIES + 1):
            if self._token is None:
                self._login()
            resp = self._http.request(
                method,
                f"{self.base_url}/api/v2{path}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=60,
                **kwargs,
            )
            if resp.status_code == 401 and not relogged:
                self._token, relogged = None, True
                continue
            if is_lock_refusal(resp.status_code, resp.text) and attempt < self.LOCK_RETRIES:
                time.sleep(min(0.5 * attempt, 3.0))
                continue
            if resp.status_code >= 300:
                raise ApiError(resp.status_code, f"{method} {path}: {resp.text[:300]}")
            return resp.json() if resp.content else None
        raise ApiError(503, f"{method} {path}: database stayed locked")

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", f"/dags/{dag_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call(
            "PATCH",
            f"/dags/{dag_id}",
            params={"update_mask": "is_paused"},
            json={"is_paused": paused},
        )

    def active_backfill(self, dag_id: str) -> dict[str, Any] | None:
        data = self.call("GET", "/backfills", params={"dag_id": dag_id, "limit": 100})
        active = [b for b in data["backfills"] if not b.get("completed_at")]
        return active[-1] if active else None

    def dry_run(self, body: Mapping[str, Any]) -> list[str]:
        data = self.call("POST", "/backfills/dry_run", json=dict(body))
        return [b["logical_date"] for b in data["backfills"] if b.get("logical_date")]

    def create_backfill(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/backfills", json=dict(body))

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task of one run and queue the run again (the UI's "Clear run")."""
        self.call(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "only_failed": False,
                "reset_dag_runs": True,
                "note": "make demo: rerun",
            },
        )

    def dag_runs(
        self, dag_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Runs whose logical date lies in ``start`` … ``end``; without them every run of the
        DAG, manual runs (no logical date) included."""
        window = (
            {
                "logical_date_gte": start.isoformat(),
                "logical_date_lte": end.isoformat(),
                "order_by": "logical_date",
            }
            if start is not None and end is not None
            else {"order_by": "id"}
        )
        runs: list[dict[str, Any]] = []
        while True:
            data = self.call(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={**window, "limit": 100, "offset": len(runs)},
            )
            runs.extend(data["dag_runs"])
            if not data["dag_runs"] or len(runs) >= data["total_entries"]:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(data["task_instances"])


def is_lock_refusal(status: int, body: str) -> bool:
    """Whether Airflow refused a request because SQLite's write lock was busy.

    Airflow answers 503 when it recognises the lock error; elsewhere it hides the cause
    behind a generic 500 "Database error" (the transaction is rolled back either way).
    """
    text = body.lower()
    return (
        status == 503
        or (status == 409 and "locked" in text)
        or (status == 500 and ("locked" in text or "database error" in text))
    )


def http_json(url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """GET ``url`` as JSON; None on any connection problem (used for health polling)."""
    import requests

    try:
        resp = requests.get(url, timeout=timeout)
        if resp.status_code != 200:
            return None
        data = resp.json()
    except (requests.RequestException, ValueError):
        return None
    return data if isinstance(data, dict) else None


def airflow_ready(health: Mapping[str, Any] | None) -> bool:
    """Metadata DB, scheduler and DAG processor healthy (the triggerer is not needed here)."""
    if not health:
        return False
    parts = ("metadatabase", "scheduler", "dag_processor")
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


def parsed_since(value: str | None, since: datetime) -> bool:
    """Whether an API timestamp (ISO 8601, may be None) is at or after ``since``."""
    if not value:
        return False
    return datetime.fromisoformat(value) >= since


def wait_for_dag(
    api: AirflowApi,
    airflow: Started,
    dag_id: str = DAG_ID,
    *,
    timeout_s: float,
    console: Console | None = None,
) -> None:
    """Wait until *this* Airflow parsed the DAG; fail at once on a fresh import error.

    A DAG serialised by an earlier demo is not enough: the file may have changed (or broken)
    since, and runs would then use the old version.
    """
    since = datetime.fromtimestamp(airflow.record.started_at - 1, UTC)

    def parsed() -> bool:
        dag = api.dag(dag_id)
        if dag is not None and parsed_since(dag.get("last_parsed_time"), since):
            return True
        ours = {f"{dag_id}.py"}
        if dag is not None and dag.get("fileloc"):
            ours.add(Path(dag["fileloc"]).name)
        for error in api.import_errors():
            name = Path(error.get("filename") or "").name
            if name in ours and parsed_since(error.get("timestamp"), since):
                raise DemoError(
                    f"DAG 文件导入失败 {error.get('filename')}:\n"
                    f"{(error.get('stack_trace') or '')[-1500:]}"
                )
        return False

    wait_for(
        parsed,
        what=f"DAG {dag_id}",
        timeout_s=timeout_s,
        started=airflow,
        interval_s=2,
        console=console,
    )
