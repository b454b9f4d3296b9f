"""Decide, send and record: what the notifiers, the lateness DAG and the CLI call.

Plain arguments only (feed, period, the error, a ``common.runs.RunContext``): reading an
Airflow context is ``orchestration.context``'s job, so alerts never import orchestration.

- ``on_task_failure``: a task failed for good (Airflow calls ``on_failure_callback`` only
  when no retry is left, and a rejected batch fails without retrying), so a retry that later
  succeeds never alerts. A rejected batch alerts with its failed expectations; any other
  failure with its error.
- ``on_load_success``: the period loaded. Open alerts of (feed, period) are closed with one
  recovery message; a batch that loaded with warnings or quarantined rows alerts at the
  lower level.
- ``check_lateness``: periods past due and not loaded alert once each.

Every decision is taken under the (feed, period) lock and recorded in ``audit_alert``, per
channel, so two channels, two tasks or two runs never send the same alert twice within the
dedup window.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from consumption_monitor.alerts import compose, store
from consumption_monitor.alerts.channels import Channel, ChannelError
from consumption_monitor.alerts.lateness import DEFAULT_LOOKBACK_MONTHS, late_periods
from consumption_monitor.alerts.measures import measures_for_feed
from consumption_monitor.alerts.message import Alert
from consumption_monitor.common import config
from consumption_monitor.common.runs import RunContext
from consumption_monitor.feeds.spec import list_feeds, load_feed
from consumption_monitor.validation.reports import report_url
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.loader import now
from consumption_monitor.warehouse.migrate import ensure_schema

log = logging.getLogger(__name__)

DEFAULT_WINDOW_HOURS = 24.0


def dedup_window(hours: float | None = None) -> timedelta:
    """The dedup window: argument, ``CM_ALERT_DEDUP_HOURS``, or a day."""
    if hours is None:
        hours = float(os.environ.get("CM_ALERT_DEDUP_HOURS") or DEFAULT_WINDOW_HOURS)
    return timedelta(hours=hours)


@dataclass(frozen=True)
class Delivery:
    channel: str
    kind: str
    outcome: str  # sent | suppressed | failed
    alert_id: str | None = None
    error: str | None = None


def warehouse_engine(url: str | None) -> Engine:
    resolved = config.warehouse_url(url)
    ensure_schema(resolved)
    return engine_for(resolved)


def deliver(
    engine: Engine, alert: Alert, channels: Sequence[Channel], *, window: timedelta | None
) -> list[Delivery]:
    """Send ``alert`` on every channel that has not sent it within ``window``."""
    if not channels:
        log.warning("no alert channel configured; the alert would say:\n%s", alert.text())
    out = []
    for channel in channels:
        with engine.begin() as conn:
            store.serialise(conn, alert.feed, alert.period)
            at = now()
            if store.already_sent(conn, alert, channel.name, window, at):
                log.info("alert suppressed (sent within the window) on %s", channel.name)
                out.append(Delivery(channel.name, alert.kind, "suppressed"))
                continue
            body = channel.render(alert)
            try:
                channel.send(alert)
            except ChannelError as exc:
                log.error("alert not delivered: %s", exc)
                store.record(conn, alert, channel.name, body, status="failed", error=str(exc))
                out.append(Delivery(channel.name, alert.kind, "failed", error=str(exc)))
                continue
            alert_id = store.record(conn, alert, channel.name, body, at=at)
            out.append(Delivery(channel.name, alert.kind, "sent", alert_id))
    return out


def deliver_recovery(
    engine: Engine,
    feed: str,
    period: str,
    channels: Sequence[Channel],
    *,
    keep_signature: str | None = None,
    facts: compose.ValidationFacts | None = None,
    run: RunContext | None = None,
) -> list[Delivery]:
    """Close the open alerts of (feed, period) with one recovery message per channel.

    ``keep_signature``: an alert that still holds (the warning of the batch just loaded).
    """
    spec = load_feed(feed)
    link = report_url(feed, period, facts.run_id) if facts else None
    out = []
    for channel in channels:
        with engine.begin() as conn:
            store.serialise(conn, feed, period)
            opened = store.open_alerts(
                conn, feed, period, channel.name, except_signature=keep_signature
            )
            if not opened:
                continue
            alert = compose.recovery_alert(
                spec, period, opened, facts=facts, run=run, report_url=link
            )
            body = channel.render(alert)
            try:
                channel.send(alert)
            except ChannelError as exc:  # alerts stay open: the next success retries
                log.error("recovery not delivered: %s", exc)
                store.record(conn, alert, channel.name, body, status="failed", error=str(exc))
                out.append(Delivery(channel.name, "recovery", "failed", error=str(exc)))
                continue
            alert_id = store.record(conn, alert, channel.name, body)
            store.resolve(conn, [a["alert_id"] for a in opened], alert_id)
            out.append(Delivery(channel.name, "recovery", "sent", alert_id))
    return out


def failure_alert(
    engine: Engine,
    feed: str,
    period: str,
    *,
    error: BaseException | str | None = None,
    run: RunContext | None = None,
    any_task: bool = False,
) -> Alert | None:
    """The alert for a failed run: the rejected batch's checks, or else the error.

    In a feed DAG only the validate task rejects a batch; ``any_task`` is for a task that
    runs every step itself (feed_catchup)."""
    run = run or RunContext()
    spec, measures = load_feed(feed), measures_for_feed(feed)
    with engine.connect() as conn:
        facts = compose.validation_facts(conn, feed, period, dag_run_id=run.dag_run_id)
    validating = any_task or run.task_id in (None, "validate")
    if facts is not None and facts.verdict == "rejected" and validating:
        link = report_url(feed, period, facts.run_id)
        return compose.validation_alert(spec, period, facts, measures, run=run, report_url=link)
    if error is None:
        return None
    return compose.error_alert(spec, period, error, measures, run=run)


def warning_alert(
    engine: Engine, feed: str, period: str, *, run: RunContext | None = None
) -> tuple[Alert | None, compose.ValidationFacts | None]:
    """The lower-level alert of a batch that loaded with warnings or quarantined rows."""
    run = run or RunContext()
    with engine.connect() as conn:
        facts = compose.validation_facts(conn, feed, period, dag_run_id=run.dag_run_id)
    if facts is None or facts.verdict == "rejected":
        return None, facts
    alert = compose.validation_alert(
        load_feed(feed),
        period,
        facts,
        measures_for_feed(feed),
        run=run,
        report_url=report_url(feed, period, facts.run_id),
    )
    return alert, facts


def on_task_failure(
    feed: str,
    period: str,
    channels: Sequence[Channel],
    *,
    error: BaseException | str | None = None,
    run: RunContext | None = None,
    window: timedelta | None = None,
    url: str | None = None,
) -> list[Delivery]:
    """A task of ``run`` failed for good on ``period``: the rejected batch's checks, or
    else ``error``, on every channel that has not sent it within the window."""
    try:
        engine = warehouse_engine(url)
        alert = failure_alert(engine, feed, period, error=error, run=run)
    except SQLAlchemyError as exc:
        # The warehouse itself is down (often why the task failed): still tell the operators,
        # without dedup or record, rather than stay silent.
        log.error("warehouse unavailable (%s): alerting without dedup", type(exc).__name__)
        return send_unrecorded(feed, period, error or exc, channels, run=run)
    if alert is None:
        return []
    return deliver(engine, alert, channels, window=dedup_window() if window is None else window)


def send_unrecorded(
    feed: str,
    period: str,
    error: BaseException | str,
    channels: Sequence[Channel],
    *,
    run: RunContext | None = None,
) -> list[Delivery]:
    """The error alert, sent without the warehouse (no dedup, no ``audit_alert`` row)."""
    alert = compose.error_alert(load_feed(feed), period, error, measures_for_feed(feed), run=run)
    out = []
    for channel in channels:
        try:
            channel.send(alert)
        except ChannelError as exc:
            log.error("alert not delivered: %s", exc)
            out.append(Delivery(channel.name, alert.kind, "failed", error=str(exc)))
        else:
            out.append(Delivery(channel.name, alert.kind, "sent"))
    return out


def on_load_success(
    feed: str,
    period: str,
    channels: Sequence[Channel],
    *,
    run: RunContext | None = None,
    window: timedelta | None = None,
    url: str | None = None,
) -> list[Delivery]:
    """The load task of ``run`` loaded ``period``: recoveries, then the warning alert."""
    engine = warehouse_engine(url)
    return period_loaded(engine, feed, period, channels, run=run, window=window)


def period_loaded(
    engine: Engine,
    feed: str,
    period: str,
    channels: Sequence[Channel],
    *,
    run: RunContext | None = None,
    window: timedelta | None = None,
) -> list[Delivery]:
    """A period loaded: close its open alerts (recovery), then warn about its warnings."""
    alert, facts = warning_alert(engine, feed, period, run=run)
    out = deliver_recovery(
        engine,
        feed,
        period,
        channels,
        keep_signature=alert.signature if alert else None,
        facts=facts,
        run=run,
    )
    if alert is not None:
        out += deliver(engine, alert, channels, window=dedup_window() if window is None else window)
    return out


def on_catchup_outcomes(
    feed: str,
    outcomes: Sequence[Any],
    channels: Sequence[Channel],
    *,
    final: bool,
    run: RunContext | None = None,
    window: timedelta | None = None,
    url: str | None = None,
) -> list[Delivery]:
    """Alerts of a feed_catchup task, period by period, as the feed's own runs would send:
    a failed period alerts (a rejected batch with its checks) once the failure is final, a
    loaded one recovers and warns. ``outcomes`` are ``catchup.PeriodOutcome``s."""
    engine = warehouse_engine(url)
    window = dedup_window() if window is None else window
    out: list[Delivery] = []
    for outcome in outcomes:
        if outcome.outcome in ("loaded", "unchanged"):
            out += period_loaded(engine, feed, outcome.period, channels, run=run, window=window)
        elif outcome.outcome == "failed" and final:
            alert = failure_alert(
                engine, feed, outcome.period, error=outcome.message, run=run, any_task=True
            )
            if alert is not None:
                out += deliver(engine, alert, channels, window=window)
    return out


def loaded_periods(engine: Engine, feed: str) -> set[str]:
    b = schema.audit_load_batch
    with engine.connect() as conn:
        rows = conn.execute(select(b.c.period).where(b.c.feed == feed, b.c.is_current))
        return set(rows.scalars())


def check_lateness(
    channels: Sequence[Channel],
    today: date,
    *,
    feeds: Sequence[str] | None = None,
    lookback_months: int = DEFAULT_LOOKBACK_MONTHS,
    url: str | None = None,
) -> list[Delivery]:
    """Alert once per (feed, period) past due and not loaded."""
    engine = warehouse_engine(url)
    out = []
    for feed in feeds or list_feeds():
        spec = load_feed(feed)
        late = late_periods(
            spec, today, loaded_periods(engine, feed), lookback_months=lookback_months
        )
        for item in late:
            alert = compose.late_alert(spec, item.period, item.due, today, measures_for_feed(feed))
            out += deliver(engine, alert, channels, window=None)
    return out
