"""Alerts through Airflow: ``dag.test()`` runs of the feed DAGs against the sample feed server
with faults, the task-level notifier callbacks firing as in production, a real local HTTP
server as the DingTalk robot and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pendulum
import pytest
from conftest import DAGS, airflow_env
from sqlalchemy import text

from consumption_monitor.alerts.lateness import late_periods
from consumption_monitor.common.periods import BUREAU_TIMEZONE as TIMEZONE
from consumption_monitor.feeds.spec import list_feeds, load_feed
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse.db import engine_for

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def airflow_warehouse(airflow_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    airflow_env(monkeypatch, airflow_home)
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    monkeypatch.setenv("CM_WAREHOUSE_URL", url)
    monkeypatch.setenv("CM_ALERT_DEDUP_HOURS", "24")
    return url


def _dag(file: str, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / file)).get_dag(dag_id)


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _alerts(url: str) -> list[tuple]:
    with engine_for(url).connect() as conn:
        return conn.execute(
            text("select kind, channel, period, resolved_by from audit_alert order by sent_at")
        ).fetchall()


def test_a_rejected_batch_alerts_once_across_runs_and_recovers(
    feed_server, airflow_warehouse, alert_connections
) -> None:
    robot, smtp = alert_connections
    dag = _dag("retail_monthly.py", "retail_monthly")
    logical = pendulum.datetime(2025, 4, 15, 6, tz=TIMEZONE)  # loads March
    feed_server.faults.add("drop_column", period="2025-03", column="value_ytd")

    run = dag.test(logical_date=logical)
    states = _states(run)
    assert states["validate"] == "failed" and states["load"] == "upstream_failed", states
    assert len(robot.requests) == 1 and len(smtp.messages) == 1
    markdown = robot.requests[0]["json"]["markdown"]["text"]
    assert {"timestamp", "sign"} <= set(robot.requests[0]["query"])
    assert robot.requests[0]["answer"]["errcode"] == 0  # the robot checked the signature
    for fragment in (
        "【严重】消费品市场月度监测 2025-03 数据校验未通过",
        f"retail_monthly / {run.run_id}",
        "validate（第 1 次尝试）",  # a rejected batch fails at once: no retries
        "根本原因**\n1. 字段缺失：value_ytd（above_quota、district_totals）；另有 8 项",
        "措施19",
        "[任务日志](",
        f"/dags/retail_monthly/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}",
        "[校验报告](",
    ):
        assert fragment in markdown, fragment
    assert smtp.messages[0]["Subject"] == "【严重】消费品市场月度监测 2025-03 数据校验未通过"

    second = dag.test(logical_date=logical, run_after=pendulum.now("UTC"))
    assert _states(second)["validate"] == "failed"
    assert len(robot.requests) == 1 and len(smtp.messages) == 1  # the same failure: deduped

    feed_server.faults.clear()
    third = dag.test(logical_date=logical, run_after=pendulum.now("UTC"))
    assert set(_states(third).values()) == {"success"}
    assert len(robot.requests) == 2 and len(smtp.messages) == 2
    assert robot.requests[1]["json"]["markdown"]["title"] == (
        "【恢复】消费品市场月度监测 2025-03 已恢复入库"
    )
    assert smtp.messages[1]["Subject"] == "【恢复】消费品市场月度监测 2025-03 已恢复入库"
    rows = _alerts(airflow_warehouse)
    assert [(k, c) for k, c, _, _ in rows] == [
        ("failure", "webhook:dingtalk"),
        ("failure", "email"),
        ("recovery", "webhook:dingtalk"),
        ("recovery", "email"),
    ]
    assert all(r[3] for r in rows[:2])  # both failure alerts resolved


def test_a_retry_that_succeeds_sends_nothing(
    feed_server, airflow_warehouse, alert_connections
) -> None:
    """Five 500s exhaust the extract's own retries: its first try fails, the second loads."""
    from consumption_monitor.orchestration.feed_dag import build_feed_dag

    robot, smtp = alert_connections
    dag = build_feed_dag(
        "retail_monthly",
        default_args={"retry_delay": timedelta(0), "retry_exponential_backoff": False},
    )
    feed_server.faults.add("http_500", path="district-totals", times=5)
    run = dag.test(logical_date=pendulum.datetime(2025, 6, 15, 6, tz=TIMEZONE))
    extract = next(ti for ti in run.get_task_instances() if ti.task_id == "extract")
    assert str(run.state) == "success" and extract.try_number == 2
    assert robot.requests == [] and smtp.messages == []
    assert _alerts(airflow_warehouse) == []


def test_a_batch_loaded_with_warnings_alerts_at_the_lower_level(
    feed_server, airflow_warehouse, alert_connections
) -> None:
    robot, smtp = alert_connections
    dag = _dag("retail_monthly.py", "retail_monthly")
    feed_server.faults.add("bad_rows", period="2025-07")
    run = dag.test(logical_date=pendulum.datetime(2025, 8, 15, 6, tz=TIMEZONE))
    assert set(_states(run).values()) == {"success"}
    assert len(robot.requests) == 1 and len(smtp.messages) == 1
    title = robot.requests[0]["json"]["markdown"]["title"]
    assert title == "【警告】消费品市场月度监测 2025-07 数据校验有警告"
    assert "load（第 1 次尝试）" in robot.requests[0]["json"]["markdown"]["text"]
    assert [(k, c) for k, c, _, _ in _alerts(airflow_warehouse)] == [
        ("warning", "webhook:dingtalk"),
        ("warning", "email"),
    ]


def test_the_lateness_dag_alerts_once_per_feed_and_period(
    feed_server, airflow_warehouse, alert_connections
) -> None:
    robot, smtp = alert_connections
    run_period("retail_monthly", "2025-10", url=airflow_warehouse)
    dag = _dag("feed_lateness.py", "feed_lateness")
    run = dag.test(logical_date=pendulum.datetime(2025, 12, 19, 9, 30, tz=TIMEZONE))
    assert str(run.state) == "success"
    today = run.data_interval_end.astimezone(ZoneInfo(TIMEZONE)).date()
    expected = {
        (feed, late.period)
        for feed in list_feeds()
        for late in late_periods(
            load_feed(feed), today, {"2025-10"} if feed == "retail_monthly" else set()
        )
    }
    assert ("retail_monthly", "2025-11") in expected
    assert ("retail_monthly", "2025-10") not in expected
    titles = [r["json"]["markdown"]["title"] for r in robot.requests]
    assert len(titles) == len(expected) == len(smtp.messages)
    assert all("数据逾期未入库" in t for t in titles)
    assert {(r[2]) for r in _alerts(airflow_warehouse)} == {p for _, p in expected}

    again = dag.test(logical_date=pendulum.datetime(2025, 12, 20, 9, 30, tz=TIMEZONE))
    assert str(again.state) == "success"
    assert len(robot.requests) == len(expected)  # once per (feed, period)


def test_a_catch_up_alerts_per_failed_period_and_recovers_later(
    feed_server, airflow_warehouse, alert_connections
) -> None:
    """feed_catchup alerts like the period's own run: the rejected period with its checks,
    once; a later catch-up that loads it sends the recovery."""
    robot, smtp = alert_connections
    dag = _dag("feed_catchup.py", "feed_catchup")
    conf = {"feeds": ["retail_monthly"], "from": "2025-02", "to": "2025-04"}
    feed_server.faults.add("drop_column", period="2025-03", column="value_ytd")

    run = dag.test(run_conf=conf)
    assert str(run.state) == "failed"
    assert len(robot.requests) == 1 and len(smtp.messages) == 1
    markdown = robot.requests[0]["json"]["markdown"]["text"]
    for fragment in ("【严重】消费品市场月度监测 2025-03 数据校验未通过", "feed_catchup", "措施19"):
        assert fragment in markdown, fragment

    feed_server.faults.clear()
    again = dag.test(run_conf=conf, run_after=pendulum.now("UTC"))
    assert str(again.state) == "success"
    assert len(robot.requests) == 2
    assert "【恢复】" in robot.requests[1]["json"]["markdown"]["text"]
    kinds = [(kind, period) for kind, _, period, _ in _alerts(airflow_warehouse)]
    assert kinds.count(("recovery", "2025-03")) == 2  # one per channel
