"""Airflow notifiers for feed alerts, attached as task-level callbacks.

Light on purpose: DAG files build these at parse time, so only ``airflow.sdk`` and
``orchestration.context`` (which turns the callback's context into a period and a
``RunContext``) are imported here; the warehouse, the message composer and the HTTP/SMTP
clients are imported when a callback fires. Each notifier is one channel
(``WebhookNotifier``, ``EmailNotifier``) and works on two events:

- ``event="failure"`` (``on_failure_callback``): the task failed for good;
- ``event="load_success"`` (the load task's ``on_success_callback``): recovery messages and
  the warning-level alert of a batch loaded with warnings.

They are plain callables too: ``WebhookNotifier("retail_monthly")(context)``.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseNotifier

from consumption_monitor.orchestration.context import context_period, run_context

log = logging.getLogger(__name__)

EVENTS = ("failure", "load_success")


class FeedAlertNotifier(BaseNotifier):
    """Alerts about one feed on one channel; subclasses say which channel."""

    template_fields = ()
    default_conn_id = ""

    def __init__(
        self,
        feed: str,
        *,
        event: str = "failure",
        conn_id: str | None = None,
        window_hours: float | None = None,
        warehouse_url: str | None = None,
    ) -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        self.feed = feed
        self.event = event
        self.conn_id = conn_id or self.default_conn_id
        self.window_hours = window_hours
        self.warehouse_url = warehouse_url

    def channel(self) -> Any:
        """The configured channel, or None when its connection does not exist."""
        raise NotImplementedError

    def notify(self, context: Any) -> None:
        from consumption_monitor.alerts import service

        channel = self.channel()
        if channel is None:
            log.info("connection %s not configured: no %s alert sent", self.conn_id, self.event)
            return
        period, run = context_period(context), run_context(context)
        window = None if self.window_hours is None else service.dedup_window(self.window_hours)
        options = {"run": run, "window": window, "url": self.warehouse_url}
        if self.event == "failure":
            error = context.get("exception")
            deliveries = service.on_task_failure(
                self.feed, period, [channel], error=error, **options
            )
        else:
            deliveries = service.on_load_success(self.feed, period, [channel], **options)
        for delivery in deliveries:
            log.info("alert %s on %s: %s", delivery.kind, delivery.channel, delivery.outcome)


class WebhookNotifier(FeedAlertNotifier):
    """Group-chat robot (WeCom, DingTalk, Feishu) from the ``cm_alert_webhook`` connection."""

    default_conn_id = "cm_alert_webhook"

    def channel(self) -> Any:
        from consumption_monitor.alerts.channels import webhook_channel

        return webhook_channel(self.conn_id)


class EmailNotifier(FeedAlertNotifier):
    """E-mail through the ``cm_alert_smtp`` SMTP connection."""

    default_conn_id = "cm_alert_smtp"

    def channel(self) -> Any:
        from consumption_monitor.alerts.channels import email_channel

        return email_channel(self.conn_id)


def feed_notifiers(feed: str, event: str) -> list[FeedAlertNotifier]:
    """Every channel's notifier for ``feed``: what the DAG builder attaches."""
    return [WebhookNotifier(feed, event=event), EmailNotifier(feed, event=event)]
