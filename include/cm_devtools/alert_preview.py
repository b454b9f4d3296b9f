"""``cm alerts preview``: run a period with an injected fault and show the alert it causes.

For demos and for checking a message before a robot is configured: the sample feed server
runs in-process with the fault, the period runs into a scratch warehouse under
``<CM_DATA_DIR>/alert-preview/`` (so the real warehouse never receives the bad batch), and
the alert is printed as each channel would receive it. ``--send`` also delivers it on the
configured channels. Without ``--fault`` the alert is composed from what the warehouse
already recorded for the period.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consumption_monitor.alerts.channels import FORMATS, configured_channels, payload
from consumption_monitor.alerts.message import Alert
from consumption_monitor.common import config

FAULT_ALIASES = {
    "reject": "drop_column:column=value_ytd",  # a missing column: the batch is rejected
    "bad_rows": "bad_rows",  # defective rows: quarantined, the batch loads with warnings
    "feed_down": "http_500:times=-1",  # the source keeps failing: the extract gives up
}


@contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_with_fault(
    feed: str, period: str, fault: str, url: str | None
) -> tuple[Alert | None, str]:
    from cm_devtools.sample_server import FeedServer
    from cm_devtools.sample_server.faults import FaultRule
    from consumption_monitor.alerts import service
    from consumption_monitor.feeds.errors import FeedError
    from consumption_monitor.feeds.spec import load_feed
    from consumption_monitor.pipeline.steps import BatchRejected, run_period

    if load_feed(feed).source_kind != "http":
        raise SystemExit(f"{feed} is a file feed: --fault applies to HTTP feeds only")
    rule = FaultRule.parse_spec(FAULT_ALIASES.get(fault, fault))
    workdir = config.data_dir() / "alert-preview" / f"{feed}-{period}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    warehouse = url or f"sqlite:///{workdir / 'warehouse.db'}"
    with (
        FeedServer() as server,
        _environ(
            CM_FEED_BASE_URL=server.url,
            CM_FEED_TOKEN=None,
            CM_DATA_DIR=str(workdir),
            CM_ARCHIVE_DIR=None,
        ),
    ):
        server.faults.add(
            rule.kind, path=rule.path, period=rule.period or period, times=rule.times, **rule.params
        )
        engine = service.warehouse_engine(warehouse)
        try:
            run_period(feed, period, url=warehouse)
        except (BatchRejected, FeedError) as exc:
            return service.failure_alert(engine, feed, period, error=exc), warehouse
        alert, _ = service.warning_alert(engine, feed, period)
        return alert, warehouse


def preview(
    feed: str,
    period: str,
    *,
    fault: str | None = None,
    url: str | None = None,
    send: bool = False,
) -> dict[str, Any]:
    from consumption_monitor.alerts import service

    if fault:
        alert, warehouse = _run_with_fault(feed, period, fault, url)
    else:
        warehouse = config.warehouse_url(url)
        engine = service.warehouse_engine(warehouse)
        alert = service.failure_alert(engine, feed, period)
        if alert is None:
            alert, _ = service.warning_alert(engine, feed, period)
    out: dict[str, Any] = {"feed": feed, "period": period, "fault": fault, "alert": None}
    if alert is None:
        return out
    out["alert"] = alert.to_dict()
    out["text"] = alert.text()
    out["payloads"] = {fmt: payload(fmt, alert) for fmt in FORMATS}
    if send:
        deliveries = service.deliver(
            service.warehouse_engine(warehouse),
            alert,
            configured_channels(),
            window=service.dedup_window(),
        )
        out["deliveries"] = [d.__dict__ for d in deliveries]
    return out


def render(data: dict[str, Any]) -> str:
    if data["alert"] is None:
        return f"{data['feed']} {data['period']}：没有需要告警的内容"
    lines = ["将发送的告警：", "", data["text"]]
    for d in data.get("deliveries", []):
        lines.append(f"\n已发送 → {d['channel']}：{d['outcome']}")
    return "\n".join(lines)
