"""Sent alerts in the warehouse (``audit_alert``): deduplication and recovery state.

An alert is *open* from when it is sent until a recovery message for its (feed, period) and
channel resolves it. One alert per (feed, period, signature, channel) within the dedup
window; a late-feed alert (``window=None``) is sent once until the period loads.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from consumption_monitor.alerts.message import Alert
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.loader import lock_period, now

ALERTING_KINDS = ("failure", "warning", "late")


def already_sent(
    conn: Connection, alert: Alert, channel: str, window: timedelta | None, at: datetime
) -> bool:
    """An open alert with the same key was sent within ``window`` (ever, when None)."""
    a = schema.audit_alert
    stmt = select(a.c.alert_id).where(
        a.c.feed == alert.feed,
        a.c.period == alert.period,
        a.c.signature == alert.signature,
        a.c.channel == channel,
        a.c.status == "sent",
        a.c.resolved_at.is_(None),
    )
    if window is not None:
        stmt = stmt.where(a.c.sent_at >= at - window)
    return conn.execute(stmt.limit(1)).first() is not None


def open_alerts(
    conn: Connection, feed: str, period: str, channel: str, *, except_signature: str | None = None
) -> list[dict[str, Any]]:
    """Alerts of (feed, period) on ``channel`` that no recovery has closed, oldest first."""
    a = schema.audit_alert
    stmt = (
        select(a.c.alert_id, a.c.kind, a.c.title, a.c.signature, a.c.sent_at)
        .where(
            a.c.feed == feed,
            a.c.period == period,
            a.c.channel == channel,
            a.c.status == "sent",
            a.c.kind.in_(ALERTING_KINDS),
            a.c.resolved_at.is_(None),
        )
        .order_by(a.c.sent_at)
    )
    if except_signature is not None:
        stmt = stmt.where(a.c.signature != except_signature)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def record(
    conn: Connection,
    alert: Alert,
    channel: str,
    body: str,
    *,
    status: str = "sent",
    error: str | None = None,
    at: datetime | None = None,
) -> str:
    alert_id = uuid.uuid4().hex
    conn.execute(
        insert(schema.audit_alert).values(
            alert_id=alert_id,
            feed=alert.feed,
            period=alert.period,
            kind=alert.kind,
            level=alert.level,
            signature=alert.signature,
            channel=channel,
            status=status,
            title=alert.heading,
            body=body,
            batch_id=alert.batch_id,
            dag_id=alert.dag_id,
            dag_run_id=alert.dag_run_id,
            task_id=alert.task_id,
            error=error,
            sent_at=at or now(),
        )
    )
    return alert_id


def resolve(conn: Connection, alert_ids: list[str], by: str, at: datetime | None = None) -> None:
    if alert_ids:
        a = schema.audit_alert
        conn.execute(
            update(a)
            .where(a.c.alert_id.in_(alert_ids))
            .values(resolved_at=at or now(), resolved_by=by)
        )


def serialise(conn: Connection, feed: str, period: str) -> None:
    """Hold the (feed, period) lock so that two tasks do not both decide to send."""
    lock_period(conn, feed, period)
