"""Alerts outside Airflow: real pipeline runs against the sample feed server, a real local
HTTP server as the chat robot (checking DingTalk signatures) and a real SMTP server.

What is asserted is what operators receive: content, count (dedup, window), recovery,
late feeds, and the ``audit_alert`` record.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from consumption_monitor.alerts import service
from consumption_monitor.alerts.channels import (
    ChannelError,
    WebhookChannel,
    configured_channels,
    feishu_sign,
    payload,
    webhook_channel,
)
from consumption_monitor.alerts.lateness import due_date, late_periods
from consumption_monitor.alerts.message import Alert, Section
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.steps import BatchRejected, run_period
from consumption_monitor.warehouse.db import engine_for

FEED = "retail_monthly"
ROBOT_SECRET = "SEC-test-secret-not-real"


def _robot_texts(sink) -> list[str]:
    return [r["json"]["markdown"]["text"] for r in sink.requests]


def _alerts(url: str) -> list[dict]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text(
                "select kind, level, channel, status, period, signature, resolved_by, title "
                "from audit_alert order by sent_at"
            )
        ).mappings()
        return [dict(r) for r in rows]


def _printed_json(out: str) -> dict:
    """The JSON document a command printed, after whatever the servers logged."""
    return json.JSONDecoder().raw_decode(out[out.index("{\n") :])[0]


def _reject(feed_server, url: str, period: str) -> BatchRejected:
    feed_server.faults.add("drop_column", period=period, column="value_ytd")
    with pytest.raises(BatchRejected) as caught:
        run_period(FEED, period, url=url)
    return caught.value


def test_a_rejected_batch_alerts_once_then_recovers(
    feed_server, warehouse_url, alert_connections
) -> None:
    robot, smtp = alert_connections
    channels = configured_channels()
    assert [c.name for c in channels] == ["webhook:dingtalk", "email"]
    error = _reject(feed_server, warehouse_url, "2025-04")

    sent = service.on_task_failure(FEED, "2025-04", channels, error=error, url=warehouse_url)
    assert [(d.channel, d.outcome) for d in sent] == [
        ("webhook:dingtalk", "sent"),
        ("email", "sent"),
    ]
    assert len(robot.requests) == 1 and robot.requests[0]["answer"]["errcode"] == 0
    request = robot.requests[0]
    assert request["path"] == "/robot/send"
    assert request["query"]["access_token"] == "robot-token-not-real"
    assert {"timestamp", "sign"} <= set(request["query"])  # signed, and the robot accepted it
    body = request["json"]
    assert body["msgtype"] == "markdown"
    markdown = body["markdown"]["text"]
    assert body["markdown"]["title"] == "【严重】消费品市场月度监测 2025-04 数据校验未通过"
    for fragment in (
        "消费品市场月度监测（retail_monthly）",
        "2025-04",
        "批次已拒收",
        "**根本原因**",  # the cause once, its consequences folded (tests/test_root_causes.py)
        "字段缺失：value_ytd（above_quota、district_totals）；另有 8 项检查因此无法执行",
        "隔离行数**：0",
        "措施19：深入健全消费保障体系（责任单位：区总工会、",  # from the measure catalog
        "区统计局",
        "[校验报告](",
    ):
        assert fragment in markdown, fragment
    report = markdown.split("[校验报告](")[1].split(")")[0]
    assert report.endswith(".html") and "retail_monthly/2025-04/" in report

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == "【严重】消费品市场月度监测 2025-04 数据校验未通过"
    assert mail["X-Envelope-To"] == "ops@xiqu.example,stats@xiqu.example"
    html = mail.get_body(("html",)).get_content()
    assert "字段缺失：value_ytd（above_quota、district_totals）" in html and "措施19" in html

    # the same failure again (a rerun): nothing new within the window
    error = _reject(feed_server, warehouse_url, "2025-04")
    again = service.on_task_failure(FEED, "2025-04", channels, error=error, url=warehouse_url)
    assert {d.outcome for d in again} == {"suppressed"}
    assert len(robot.requests) == 1 and len(smtp.messages) == 1
    # a zero window (configurable) lets it through
    service.on_task_failure(
        FEED, "2025-04", channels, error=error, window=timedelta(0), url=warehouse_url
    )
    assert len(robot.requests) == 2 and len(smtp.messages) == 2

    # the source is fixed: the period loads, one recovery per channel closes both alerts
    feed_server.faults.clear()
    run_period(FEED, "2025-04", url=warehouse_url)
    recovered = service.on_load_success(FEED, "2025-04", channels, url=warehouse_url)
    assert [(d.kind, d.outcome) for d in recovered] == [("recovery", "sent")] * 2
    recovery = robot.requests[-1]["json"]["markdown"]
    assert recovery["title"] == "【恢复】消费品市场月度监测 2025-04 已恢复入库"
    assert recovery["text"].count("校验未通过/任务失败") == 2  # the two alerts it closes
    assert smtp.messages[-1]["Subject"] == "【恢复】消费品市场月度监测 2025-04 已恢复入库"
    rows = _alerts(warehouse_url)
    assert [(r["kind"], r["channel"]) for r in rows if r["kind"] == "failure"] == [
        ("failure", "webhook:dingtalk"),
        ("failure", "email"),
        ("failure", "webhook:dingtalk"),
        ("failure", "email"),
    ]
    assert all(r["resolved_by"] for r in rows if r["kind"] == "failure")
    # nothing open any more: a further success says nothing
    assert service.on_load_success(FEED, "2025-04", channels, url=warehouse_url) == []
    assert len(robot.requests) == 3 and len(smtp.messages) == 3


def test_a_batch_loaded_with_warnings_alerts_at_the_lower_level_once(
    feed_server, warehouse_url, alert_connections
) -> None:
    robot, smtp = alert_connections
    feed_server.faults.add("bad_rows", period="2025-03")
    out = run_period(FEED, "2025-03", url=warehouse_url)
    assert out["validation"]["verdict"] == "warning"
    channels = configured_channels()
    sent = service.on_load_success(FEED, "2025-03", channels, url=warehouse_url)
    assert [(d.kind, d.outcome) for d in sent] == [("warning", "sent")] * 2
    (markdown,) = _robot_texts(robot)
    assert markdown.startswith("### 【警告】消费品市场月度监测 2025-03 数据校验有警告")
    assert "隔离行数**：7" in markdown
    assert "510402" in markdown  # a sample value: the wrong region code
    assert "【警告】above_quota · 统一社会信用代码校验位正确" in markdown
    assert smtp.messages[0]["Subject"].startswith("【警告】")
    assert {r["level"] for r in _alerts(warehouse_url)} == {"warning"}
    # the same batch succeeds again (a rerun): no repeat, and no recovery of a live warning
    run_period(FEED, "2025-03", url=warehouse_url)
    again = service.on_load_success(FEED, "2025-03", channels, url=warehouse_url)
    assert {d.outcome for d in again} == {"suppressed"}
    assert len(robot.requests) == 1 and len(smtp.messages) == 1


def test_late_periods_alert_once_and_recover_when_loaded(
    feed_server, warehouse_url, alert_connections
) -> None:
    robot, smtp = alert_connections
    run_period(FEED, "2025-10", url=warehouse_url)
    channels = configured_channels()
    today = date(2025, 12, 20)
    sent = service.check_lateness(channels, today, feeds=[FEED], url=warehouse_url)
    late = sorted({(r["period"], r["kind"]) for r in _alerts(warehouse_url)})
    assert late == [("2025-08", "late"), ("2025-09", "late"), ("2025-11", "late")]
    assert len(sent) == 6 and {d.outcome for d in sent} == {"sent"}
    first = robot.requests[0]["json"]["markdown"]["text"]
    assert "数据逾期未入库" in first and "应到日期**：2025-09-15" in first
    assert any("应到日期**：2025-12-15" in t for t in _robot_texts(robot))
    # the next day's check says nothing new
    again = service.check_lateness(channels, today.replace(day=21), feeds=[FEED], url=warehouse_url)
    assert {d.outcome for d in again} == {"suppressed"}
    assert len(robot.requests) == 3 and len(smtp.messages) == 3
    # November arrives: its load closes its late alert
    run_period(FEED, "2025-11", url=warehouse_url)
    service.on_load_success(FEED, "2025-11", channels, url=warehouse_url)
    assert robot.requests[-1]["json"]["markdown"]["title"].endswith("2025-11 已恢复入库")
    assert "逾期未入库" in robot.requests[-1]["json"]["markdown"]["text"]
    open_periods = {
        r["period"] for r in _alerts(warehouse_url) if r["kind"] == "late" and not r["resolved_by"]
    }
    assert open_periods == {"2025-08", "2025-09"}


def test_a_callback_context_gives_the_period_and_the_run() -> None:
    """What the notifiers and tasks read from an Airflow context (``orchestration.context``,
    no Airflow import), before they call the alerts with plain arguments."""
    from types import SimpleNamespace

    from consumption_monitor.common.runs import RunContext
    from consumption_monitor.orchestration.context import (
        context_period,
        context_today,
        run_context,
    )

    # 1 March 06:00 in the bureau is still February in UTC: the bureau's month counts
    assert context_period({"data_interval_start": datetime(2025, 2, 28, 22, tzinfo=UTC)}) == (
        "2025-03"
    )
    assert context_period({"data_interval_start": datetime(2025, 4, 15, tzinfo=UTC)}) == "2025-04"
    end = datetime(2025, 12, 19, 16, tzinfo=UTC)  # midnight of the 20th in the bureau
    assert context_today({"data_interval_end": end}) == date(2025, 12, 20)

    ti = SimpleNamespace(
        dag_id=FEED, run_id="manual__1", task_id="validate", try_number=2, log_url="http://x/l"
    )
    assert run_context({"ti": ti}) == RunContext(FEED, "manual__1", "validate", 2, "http://x/l")

    class NoApiUrl:
        dag_id, run_id, task_id = FEED, "scheduled__2", "load"

        @property
        def log_url(self) -> str:
            raise RuntimeError("no api base_url")

    assert run_context({"ti": NoApiUrl()}) == RunContext(FEED, "scheduled__2", "load")
    assert run_context({}) == RunContext()


def test_due_dates_follow_the_working_day_calendar() -> None:
    retail, employment = load_feed("retail_monthly"), load_feed("employment_monthly")
    assert due_date(retail, "2025-09") == date(2025, 10, 15)
    assert due_date(retail, "2025-10") == date(2025, 11, 17)  # Saturday 15th → Monday
    assert due_date(retail, "2024-08") == date(2024, 9, 18)  # 中秋 15–17 September
    assert due_date(employment, "2024-01") == date(2024, 2, 18)  # 春节; Sunday 18th worked
    # January is published with February: never late on its own
    late = late_periods(retail, date(2025, 3, 20), set(), lookback_months=3)
    assert [p.period for p in late] == ["2024-12", "2025-02"]
    loaded = {"2024-11", "2024-12"}  # 2025-02 is due Monday 17 March (the 15th is a Saturday)
    assert late_periods(retail, date(2025, 3, 17), loaded) == []
    assert [p.period for p in late_periods(retail, date(2025, 3, 18), loaded)] == ["2025-02"]


def test_signed_dingtalk_requests_are_accepted_and_a_wrong_secret_is_refused(
    webhook_sink, caplog
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="consumption_monitor")
    alert = Alert("failure", "critical", FEED, "2025-04", "sig", "测试告警")
    base = f"http://127.0.0.1:{webhook_sink.port}/robot/send?access_token=t"
    WebhookChannel("dingtalk", base, ROBOT_SECRET).send(alert)
    assert webhook_sink.requests[-1]["answer"]["errcode"] == 0
    with pytest.raises(ChannelError) as refused:
        WebhookChannel("dingtalk", base, "SEC-wrong-secret").send(alert)
    assert webhook_sink.requests[-1]["answer"]["errcode"] == 310000
    assert "SEC-wrong" not in str(refused.value) and "access_token" not in str(refused.value)
    with pytest.raises(ChannelError):  # unsigned, where the robot wants a signature
        WebhookChannel("dingtalk", base).send(alert)
    assert "access_token" not in caplog.text and "SEC-" not in caplog.text  # no secret logged
    assert "127.0.0.1" in caplog.text  # the channel is named by its host


def test_failed_deliveries_are_recorded_and_retried(
    feed_server, warehouse_url, webhook_sink, monkeypatch
) -> None:
    error = _reject(feed_server, warehouse_url, "2025-05")
    port = webhook_sink.port
    bad = WebhookChannel("dingtalk", f"http://127.0.0.1:{port}/robot/send", "SEC-wrong")
    out = service.on_task_failure(FEED, "2025-05", [bad], error=error, url=warehouse_url)
    assert [d.outcome for d in out] == ["failed"]
    good = WebhookChannel("dingtalk", f"http://127.0.0.1:{port}/robot/send", ROBOT_SECRET)
    out = service.on_task_failure(FEED, "2025-05", [good], error=error, url=warehouse_url)
    assert [d.outcome for d in out] == ["sent"]  # a failed attempt does not count as sent
    assert [(r["status"]) for r in _alerts(warehouse_url)] == ["failed", "sent"]


@pytest.mark.parametrize("fmt", ["wecom", "feishu", "feishu-interactive"])
def test_other_robot_formats(fmt: str, webhook_sink, monkeypatch) -> None:
    fmt, _, msg_type = fmt.partition("-")
    extra = {"secret": "feishu-secret", "msg_type": msg_type or "post"} if fmt == "feishu" else {}
    conn = {
        "conn_type": fmt,
        "host": "127.0.0.1",
        "port": webhook_sink.port,
        "schema": "http",
        "password": "robot-token",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_CM_ALERT_WEBHOOK", json.dumps(conn))
    channel = webhook_channel()
    assert channel is not None and channel.fmt == fmt
    assert "robot-token" not in repr(channel)
    long_lines = tuple(f"第 {i} 项校验未通过：" + "样" * 80 for i in range(200))
    alert = Alert(
        "failure",
        "critical",
        FEED,
        "2025-04",
        "sig",
        "测试告警",
        sections=(Section("未通过的校验", long_lines),),
    )
    channel.send(alert)
    request = webhook_sink.requests[-1]
    if fmt == "wecom":
        assert request["path"] == "/cgi-bin/webhook/send"
        assert request["query"] == {"key": "robot-token"}
        content = request["json"]["markdown"]["content"]
        assert len(content.encode()) <= 4096 and "内容过长已截断" in content
    else:
        assert request["path"] == "/open-apis/bot/v2/hook/robot-token"
        body = request["json"]
        assert {"timestamp", "sign"} <= set(body)
        assert body["sign"] == feishu_sign("feishu-secret", int(body["timestamp"]))
        if msg_type == "interactive":
            card = body["card"]
            assert body["msg_type"] == "interactive" and card["header"]["template"] == "red"
            assert card["header"]["title"]["content"] == "【严重】测试告警"
            assert "第 199 项校验未通过" in card["elements"][0]["text"]["content"]
        else:
            post = body["content"]["post"]["zh_cn"]
            assert body["msg_type"] == "post"
            assert post["title"] == "【严重】测试告警" and len(post["content"]) == 201


def test_payload_formats_say_the_same_thing() -> None:
    alert = Alert(
        "warning", "warning", FEED, "2025-03", "s", "标题", facts=(("统计期", "2025-03"),)
    )
    assert payload("wecom", alert)["markdown"]["content"] == alert.markdown(max_bytes=4096)
    assert payload("dingtalk", alert)["markdown"]["title"] == "【警告】标题"
    assert "统计期：2025-03" in json.dumps(payload("feishu", alert), ensure_ascii=False)
    with pytest.raises(ChannelError):
        payload("slack", alert)


def test_status_shows_loads_lateness_and_open_alerts(
    feed_server, warehouse_url, alert_connections, capsys
) -> None:
    from consumption_monitor.cli import main

    run_period(FEED, "2025-10", url=warehouse_url)
    error = _reject(feed_server, warehouse_url, "2025-11")
    service.on_task_failure(FEED, "2025-11", configured_channels(), error=error, url=warehouse_url)
    assert main(["status", "--url", warehouse_url, "--today", "2025-12-20", "--json"]) == 0
    data = _printed_json(capsys.readouterr().out)
    retail = next(f for f in data["feeds"] if f["feed"] == FEED)
    assert retail["last_loaded"]["period"] == "2025-10"
    assert retail["last_loaded"]["verdict"] == "passed" and retail["last_loaded"]["rows_loaded"]
    assert retail["newest_batch"]["period"] == "2025-11"
    assert retail["newest_batch"]["status"] == "rejected"
    assert [x["period"] for x in retail["late"]] == ["2025-08", "2025-09", "2025-11"]
    assert [(a["period"], a["kind"], a["level"]) for a in retail["open_alerts"]] == [
        ("2025-11", "failure", "critical")
    ]
    ledgers = next(f for f in data["feeds"] if f["feed"] == "work_ledgers")
    assert ledgers["last_loaded"] is None and ledgers["open_alerts"] == []
    assert main(["status", "--url", warehouse_url, "--today", "2025-12-20"]) == 0
    shown = capsys.readouterr().out
    assert "消费品市场月度监测（retail_monthly）：最近入库 2025-10" in shown
    assert "逾期未入库：2025-08（应于 2025-09-15）" in shown
    assert "未解除告警 2025-11：【严重】消费品市场月度监测 2025-11 数据校验未通过" in shown


def test_alerts_preview_injects_a_bad_batch_and_shows_the_alert(
    sqlite_url, tmp_path, capsys, monkeypatch
) -> None:
    """The demo's path: no feed server of our own, no channel; the real warehouse untouched."""
    from consumption_monitor.cli import main

    monkeypatch.delenv("CM_FEED_BASE_URL", raising=False)
    args = ["alerts", "preview", "--feed", FEED, "--period", "2025-04", "--fault", "reject"]
    assert main([*args, "--json"]) == 0
    data = _printed_json(capsys.readouterr().out)
    assert data["alert"]["title"] == "【严重】消费品市场月度监测 2025-04 数据校验未通过"
    assert data["payloads"]["dingtalk"]["msgtype"] == "markdown"
    assert data["payloads"]["feishu"]["msg_type"] == "post"
    assert "字段缺失：value_ytd（above_quota、district_totals）" in data["text"]
    assert not (tmp_path / "data" / "warehouse.db").exists()  # only the scratch warehouse
    assert (
        main(["alerts", "preview", "--feed", FEED, "--period", "2025-04", "--fault", "bad_rows"])
        == 0
    )
    assert "【警告】消费品市场月度监测 2025-04 数据校验有警告" in capsys.readouterr().out


def test_validation_reports_are_written_listed_and_served(feed_server, sqlite_url) -> None:
    import importlib.util

    from conftest import REPO
    from fastapi.testclient import TestClient

    from consumption_monitor.validation.report_web import create_app

    feed_server.faults.add("bad_rows", period="2025-03")
    out = run_period(FEED, "2025-03", url=sqlite_url)
    page = out["validation"]["report"]
    assert page.endswith(f"{out['validation']['validation_run_id']}.html")
    spec = importlib.util.spec_from_file_location(
        "cm_validation_reports", REPO / "plugins" / "cm_validation_reports.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    assert plugin.ConsumptionMonitorValidationReports.external_views[0]["href"] == "/cm-validation/"
    assert TestClient(plugin.app).get("/").status_code == 401  # Airflow's login first
    client = TestClient(create_app())  # the pages themselves (login: test_plugin_access.py)
    index = client.get("/")
    assert index.status_code == 200 and out["validation"]["validation_run_id"] in index.text
    link = f"validation/{FEED}/2025-03/{out['validation']['validation_run_id']}.html"
    shown = client.get(f"/{link}")
    assert shown.status_code == 200
    for fragment in (
        "消费品市场月度监测 2025-03 校验报告",
        "有警告（已入库）",
        "510402",
        "隔离行（7）",
    ):
        assert fragment in shown.text, fragment
    assert (
        client.get("/validation/retail_monthly/2025-03/..%2F..%2Fwarehouse.db").status_code == 404
    )


def test_a_rejected_revision_says_the_loaded_version_stays(feed_server, warehouse_url) -> None:
    first = run_period(FEED, "2025-06", url=warehouse_url)
    error = _reject(feed_server, warehouse_url, "2025-06")
    engine = service.warehouse_engine(warehouse_url)
    alert = service.failure_alert(engine, FEED, "2025-06", error=error)
    assert alert is not None and alert.level == "critical"
    outcome = dict(alert.facts)["结论"]
    assert outcome == (
        f"校验未通过，批次已拒收；本期仍为此前入库的版本（批次 {first['batch']['batch_id']}）"
    )


@pytest.mark.postgres
def test_a_failure_still_alerts_when_the_warehouse_is_down(pg_server, alert_connections) -> None:
    """The warehouse is why the task failed: the operators hear of it all the same."""
    robot, smtp = alert_connections
    missing = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{missing}/cm_no_such_database"
    error = RuntimeError('connection failed: database "cm_no_such_database" does not exist')
    out = service.on_task_failure(FEED, "2025-07", configured_channels(), error=error, url=url)
    assert [(d.channel, d.outcome) for d in out] == [
        ("webhook:dingtalk", "sent"),
        ("email", "sent"),
    ]
    markdown = robot.requests[0]["json"]["markdown"]["text"]
    assert "消费品市场月度监测 2025-07 任务失败" in markdown
    assert "RuntimeError: connection failed" in markdown
    assert "措施19" in markdown
    assert len(smtp.messages) == 1
